"""``disease-pipeline export-edge``: what the package folder holds and records."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import onnx
import pytest

from disease_pipeline.__main__ import main
from disease_pipeline.edge.package import PackageError, load_package
from disease_pipeline.edge_export.cli import EXPORT_COMMANDS, predictor_file

#: the boosters (the onnx engine's; the severity model's per threshold below) and the encoder
ONNX_FILES = {"common.onnx", "gate.onnx", "rare_encoder.onnx"}
NPZ_FILES = {"models.npz", "trees.npz", "ontology.npz", "knowledge.npz", "rare.npz"}


def severity_onnx_files(folder) -> set[str]:
    thresholds = json.loads((folder / "config.json").read_text())["models"]["severity"]
    return {t["onnx"] for t in thresholds["thresholds"] if "onnx" in t}


def test_the_package_holds_arrays_onnx_models_and_a_manifest(export_run, full_predictor):
    folder, printed = export_run
    manifest = json.loads((folder / "manifest.json").read_text())
    files = set(manifest["files"])
    severity = severity_onnx_files(folder)
    assert ONNX_FILES | severity | NPZ_FILES | {"config.json"} == files
    assert manifest["format_version"] == 2
    config = json.loads((folder / "config.json").read_text())
    thresholds = config["models"]["severity"]["thresholds"]
    boosters = len(full_predictor.severity_model.models) - sum(
        isinstance(m, float) for m in full_predictor.severity_model.models
    )
    assert sum("trees" in t for t in thresholds) == len(severity) == boosters > 0
    assert config["models"]["common"]["onnx"] == "common.onnx"
    with np.load(folder / "trees.npz", allow_pickle=False) as trees:
        for spec in [config["models"]["common"]["trees"], config["models"]["gate"]["trees"]]:
            assert len(trees[f"{spec['prefix']}_roots"]) == spec["n_trees"]
            assert len(trees[f"{spec['prefix']}_value"]) == spec["n_nodes"]
            assert trees[f"{spec['prefix']}_threshold"].dtype == np.float32
    rerank = config["rare"]["rerank"]
    assert rerank["n_trees"] == full_predictor.rare_model.components.reranker.num_boosted_rounds()
    with np.load(folder / "rare.npz", allow_pickle=False) as rare:
        assert len(rare[f"{rerank['prefix']}_roots"]) == rerank["n_trees"] > 0
        assert rare[f"{rerank['prefix']}_threshold"].dtype == np.float32
    assert {p.name for p in folder.iterdir()} == files | {"manifest.json"}
    for name, facts in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == facts["sha256"], name
        assert len(data) == facts["bytes"]
    assert manifest["model_version"] == "test/1" and manifest["data_version"] == "test-data"
    assert manifest["hpo_release"].startswith("hp/releases/")
    assert manifest["runtime_requires"] == ["numpy", "onnxruntime"]
    assert printed["bytes"] == sum(f["bytes"] for f in manifest["files"].values())


def test_the_models_are_valid_onnx_and_the_arrays_need_no_pickle(edge_package):
    for name in ONNX_FILES | severity_onnx_files(edge_package):
        onnx.checker.check_model(onnx.load(edge_package / name))
    for name in NPZ_FILES:
        with np.load(edge_package / name, allow_pickle=False) as data:
            assert data.files
    rare = np.load(edge_package / "rare.npz", allow_pickle=False)
    assert rare["lr_ratio_data"].dtype == np.float32  # the scorer's own values


def test_the_package_loads_and_checks_its_files(edge_package, tmp_path):
    package = load_package(edge_package)
    assert set(package.sessions) == ONNX_FILES | severity_onnx_files(edge_package)
    encoder = package.sessions["rare_encoder.onnx"]
    assert [i.name for i in encoder.get_inputs()] == ["present", "excluded", "extra"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in edge_package.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "rare.npz").unlink()
    with pytest.raises(PackageError, match="rare.npz: listed in the manifest but missing"):
        load_package(copy)
    (copy / "rare.npz").write_bytes((edge_package / "rare.npz").read_bytes())
    (copy / "gate.onnx").unlink()
    with pytest.raises(PackageError, match="gate.onnx: listed in the manifest but missing"):
        load_package(copy)


def test_the_command_is_dispatched_and_finds_the_pickle_of_a_model_folder(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sys, "argv", ["disease-pipeline", *EXPORT_COMMANDS, "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert "Write the edge package" in capsys.readouterr().out
    folder = tmp_path / "mlflow_model"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "artifacts" / "predictor.pkl").write_bytes(b"")
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n      predictor:\n"
        "        path: artifacts/predictor.pkl\n"
    )
    assert predictor_file(tmp_path) == folder / "artifacts" / "predictor.pkl"
