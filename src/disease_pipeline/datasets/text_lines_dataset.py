"""A raw text file read as numbered lines, tolerant of unreadable files and bad bytes.

Ingestion reads every line-oriented raw export (NDJSON, JSONL, CSV) through this
dataset so that one malformed line can be quarantined with its line number instead
of failing the whole load. A file that cannot be read at all is not an exception
either: ``load`` returns a :class:`TextLines` whose ``error`` says why, and the
pipeline quarantines the file and carries on with the other sources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, get_filepath_str, get_protocol_and_path


@dataclass(frozen=True)
class TextLines:
    """The lines of one text file; ``lines[i]`` is line ``i + 1`` (newline stripped).

    Attributes:
        path: the file as configured in the catalog.
        lines: decoded lines; a final empty line after the last newline is not kept.
        error: why the file could not be read (``lines`` is then empty), else None.
        undecodable: 1-based numbers of lines that are not valid UTF-8 (decoded with
            replacement characters in ``lines``).
    """

    path: str
    lines: list[str]
    error: str | None = None
    undecodable: frozenset[int] = field(default_factory=frozenset)


def decode_lines(data: bytes) -> tuple[list[str], frozenset[int]]:
    """Split ``data`` on newlines and decode each line as UTF-8 (``\\r\\n`` tolerated)."""
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    try:
        text_lines = data.decode("utf-8").split("\n")
        if text_lines and text_lines[-1] == "":
            text_lines.pop()
        return [line.removesuffix("\r") for line in text_lines], frozenset()
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    bad: set[int] = set()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            lines.append(raw.decode("utf-8").removesuffix("\r"))
        except UnicodeDecodeError:
            lines.append(raw.decode("utf-8", errors="replace").removesuffix("\r"))
            bad.add(number)
    return lines, frozenset(bad)


class TextLinesDataset(AbstractDataset[list[str], TextLines]):
    """Loads a text file as :class:`TextLines`; saves a list of lines.

    Example:
        ```yaml
        raw_fhir_bundle_lines:
          type: disease_pipeline.datasets.TextLinesDataset
          filepath: ${globals:data_root}/01_raw/fhir/bundles.ndjson
        ```
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath))
        fs_args = dict(fs_args or {})
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._configured = str(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._configured, "protocol": self._protocol}

    def load(self) -> TextLines:
        """Read the file; never raises for a missing or unreadable file (see ``error``)."""
        path = get_filepath_str(self._filepath, self._protocol)
        try:
            with self._fs.open(path, mode="rb") as handle:
                data = handle.read()
        except (OSError, ValueError) as exc:
            return TextLines(path=self._configured, lines=[], error=f"{type(exc).__name__}: {exc}")
        lines, undecodable = decode_lines(data)
        return TextLines(path=self._configured, lines=lines, undecodable=undecodable)

    def save(self, data: list[str]) -> None:
        """Write ``data`` as lines, each terminated by a newline."""
        path = get_filepath_str(self._filepath, self._protocol)
        with self._fs.open(path, mode="w", encoding="utf-8") as handle:
            handle.writelines(f"{line}\n" for line in data)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))
