"""Content fingerprints (SHA-256 and size) of raw input files: the data version.

Read-only. Files are keyed by a name that does not depend on where the data root
is: the file name for a listed file, ``<folder name>/<relative path>`` for files
found under a listed folder, so the same snapshot gets the same data version on
every machine.

Example:
    ```yaml
    raw_snapshot_files:
      type: disease_pipeline.datasets.file_fingerprint.FileFingerprintDataset
      paths:
        - ${globals:data_root}/01_raw/fhir/bundles.ndjson
        - ${globals:phenopackets_dir}
      pattern: "*.json"   # for folders only
    ```
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class FileFingerprintDataset(AbstractDataset[None, dict[str, dict[str, Any]]]):
    """``{name: {"sha256": ..., "size_bytes": ...}}`` for every listed file and folder."""

    def __init__(
        self,
        *,
        paths: list[str],
        pattern: str = "*",
        optional: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Configure what to fingerprint.

        Args:
            paths: Files, and folders searched recursively.
            pattern: Glob for the files of a folder (default every file).
            optional: Paths allowed to be missing (e.g. a registry folder that a
                deployment does not have); any other missing path is an error.
            metadata: Free-form metadata (kedro-viz layer).
        """
        if not paths:
            raise DatasetError("FileFingerprintDataset needs at least one path in 'paths'")
        self._paths = [str(p) for p in paths]
        self._pattern = pattern
        self._optional = {str(p) for p in optional or []}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"paths": self._paths, "pattern": self._pattern}

    def load(self) -> dict[str, dict[str, Any]]:
        """Hash every file; a missing non-optional path raises ``DatasetError``."""
        found: dict[str, dict[str, Any]] = {}
        for raw in self._paths:
            path = Path(raw)
            if path.is_file():
                files = {path.name: path}
            elif path.is_dir():
                files = {
                    f"{path.name}/{f.relative_to(path).as_posix()}": f
                    for f in sorted(path.rglob(self._pattern))
                    if f.is_file() and not f.name.startswith(".")
                }
            elif raw in self._optional:
                continue
            else:
                raise DatasetError(f"raw snapshot path {raw} does not exist")
            for name, file in files.items():
                if name in found:
                    raise DatasetError(f"two raw snapshot files share the name {name!r}")
                found[name] = {"sha256": sha256_file(file), "size_bytes": file.stat().st_size}
        return found

    def save(self, data: None) -> None:
        """Refuse: raw files are written by the hospital export (or the simulator)."""
        raise DatasetError("FileFingerprintDataset is read-only")

    def _exists(self) -> bool:
        return all(Path(p).exists() for p in self._paths if p not in self._optional)
