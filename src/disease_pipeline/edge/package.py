"""Load an edge package folder: manifest, checksums, configuration, arrays, ONNX sessions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

#: the folder layout this runtime reads (``edge_export.writer.FORMAT_VERSION``)
FORMAT_VERSION = 2
#: the package folder used when none is given (relative to the working directory)
DEFAULT_PACKAGE = Path("data/06_models/edge")


class PackageError(RuntimeError):
    """The package folder is missing, incomplete, of another format or altered."""


class Sessions(Mapping[str, ort.InferenceSession]):
    """One onnxruntime session per ``.onnx`` file of the package, created on first use
    (the boosters' ONNX files are opened only by the ``onnx`` engine)."""

    def __init__(self, root: Path, names: list[str], threads: int) -> None:
        self._root, self._names, self._threads = root, names, threads
        self._open: dict[str, ort.InferenceSession] = {}

    def __getitem__(self, name: str) -> ort.InferenceSession:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._open:
            self._open[name] = _session(self._root / name, self._threads)
        return self._open[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class EdgePackage:
    """A loaded package: ``manifest``, ``config``, ``arrays`` (per ``.npz`` file, by the
    file's stem) and a single-threaded ONNX session per ``.onnx`` file (``sessions``,
    opened on first use)."""

    root: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    arrays: dict[str, dict[str, np.ndarray]]
    sessions: Mapping[str, ort.InferenceSession]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_package(root: Path | str, *, verify: bool = True, threads: int = 1) -> EdgePackage:
    """Read the package in ``root``; with ``verify``, every file's sha256 must match the
    manifest's.

    Raises:
        PackageError: naming the missing or altered file, or the unknown format.
    """
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise PackageError(f"{root}: no manifest.json (not an edge package: run export-edge)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PackageError(
            f"{manifest_path}: format {manifest.get('format_version')!r}, this runtime reads "
            f"{FORMAT_VERSION}"
        )
    files = manifest.get("files", {})
    for name, facts in files.items():
        path = root / name
        if not path.is_file():
            raise PackageError(f"{path}: listed in the manifest but missing")
        if verify and _sha256(path) != facts["sha256"]:
            raise PackageError(f"{path}: sha256 differs from the manifest (altered file)")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    arrays = {}
    for name in files:
        if name.endswith(".npz"):
            with np.load(root / name, allow_pickle=False) as data:
                arrays[name[: -len(".npz")]] = {key: data[key] for key in data.files}
    sessions = Sessions(root, [name for name in files if name.endswith(".onnx")], threads)
    return EdgePackage(root, manifest, config, arrays, sessions)
