"""``disease-pipeline-edge predict``: the table and JSON answers, and bad input named
by its field (exit status 2), a missing or altered package (exit status 3)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from disease_pipeline.edge.cli import EXIT_BAD_INPUT, EXIT_BAD_PACKAGE, main

GOOD = {
    "age": 54,
    "sex": "male",
    "encounter_date": "2025-02-03T10:00:00",
    "symptoms": [{"code": "HP:0002094"}, {"code": "HP:0001945", "severity": 2}],
    "vitals": [{"loinc": "8310-5", "value": 101.3, "unit": "[degF]"}],
    "labs": [{"loinc": "2345-7", "value": 6.1, "unit": "mmol/L"}],
    "comorbidities": ["e119"],
}


def run(capsys, tmp_path, record, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    status = main(["predict", str(path), *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_the_table_lists_the_differential_p_rare_and_severity(capsys, tmp_path, edge_package):
    status, out, _ = run(capsys, tmp_path, GOOD, "--package", str(edge_package), "--top-k", "5")
    assert status == 0
    assert "P(rare):" in out and "severity:" in out
    assert len([line for line in out.splitlines() if line[:4].strip().isdigit()]) >= 5


def test_json_answers_a_list_of_records(capsys, tmp_path, edge_package):
    status, out, _ = run(capsys, tmp_path, [GOOD, GOOD], "--package", str(edge_package), "--json")
    assert status == 0
    answers = json.loads(out)
    assert len(answers) == 2 and answers[0] == answers[1]
    assert abs(sum(e["probability"] for e in answers[0]["differential"]) - 1) < 0.5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labs": [{"loinc": "2345-7", "value": 6.1, "unit": "furlongs"}]}, "patient.labs[0].unit"),
        (
            {"labs": [{"loinc": "2345-7", "value": 600.0, "unit": "mmol/L"}]},
            "patient.labs[0].value",
        ),
        ({"labs": [{"loinc": "2345-7", "unit": "mmol/L"}]}, "patient.labs[0].value"),
        (
            {"vitals": [{"loinc": "2345-7", "value": 6.1, "unit": "mmol/L"}]},
            "patient.vitals[0].loinc",
        ),
        ({"symptoms": [{"code": "fever"}]}, "patient.symptoms[0].code"),
        ({"symptoms": [{"code": "999999999", "system": "SNOMEDCT"}]}, "patient.symptoms[0].code"),
        ({"symptoms": [{"code": "HP:0001945", "severity": 7}]}, "patient.symptoms[0].severity"),
        ({"age": "old"}, "patient.age"),
        ({"age": 140}, "patient.age"),
        ({"sex": "F"}, "patient.sex"),
        ({"encounter_date": "yesterday"}, "patient.encounter_date"),
        ({"comorbidities": ["diabetes"]}, "patient.comorbidities[0]"),
        ({"weight": 80}, "patient.weight"),
    ],
)
def test_bad_input_names_the_field(capsys, tmp_path, edge_package, change, field):
    status, out, err = run(capsys, tmp_path, GOOD | change, "--package", str(edge_package))
    assert status == EXIT_BAD_INPUT
    assert err.startswith(f"error: {field}: ")
    assert out == ""


def test_a_newer_hpo_term_is_ignored_with_a_note(capsys, tmp_path, edge_package):
    record = GOOD | {"symptoms": [*GOOD["symptoms"], {"code": "HP:9999999"}]}
    status, out, _ = run(capsys, tmp_path, record, "--package", str(edge_package))
    assert status == 0
    assert "HP:9999999 is not in the HPO release: ignored" in out


def test_a_present_term_of_the_newer_hpo_release_is_read_as_its_ancestor(
    capsys, tmp_path, edge_package
):
    """As the service: HP:0025836 (HPO 2025-11-24) is read as HP:0031393 when present."""
    newer = {"code": "HP:0025836"}
    record = GOOD | {"symptoms": [*GOOD["symptoms"], newer]}
    status, out, _ = run(capsys, tmp_path, record, "--package", str(edge_package))
    assert status == 0
    assert "HP:0025836 is not in the HPO release: read as its nearest ancestor HP:0031393" in out
    absent = GOOD | {"symptoms": [*GOOD["symptoms"], newer | {"present": False}]}
    status, out, _ = run(capsys, tmp_path, absent, "--package", str(edge_package))
    assert status == 0
    assert "HP:0025836 is not in the HPO release: ignored" in out


def test_not_json_is_bad_input(capsys, tmp_path, edge_package):
    path = tmp_path / "patient.json"
    path.write_text("{age: 3", encoding="utf-8")
    assert main(["predict", str(path), "--package", str(edge_package)]) == EXIT_BAD_INPUT
    assert "error: patient: not valid JSON" in capsys.readouterr().err


def test_the_onnx_engine_answers_as_the_exact_one(capsys, tmp_path, edge_package):
    """``--engine onnx``: the boosters in onnxruntime; the same ranking, probabilities
    within the float32 rounding of the tree sums."""
    answers = {}
    for engine in ("exact", "onnx"):
        args = ("--package", str(edge_package), "--json", "--engine", engine)
        status, out, _ = run(capsys, tmp_path, GOOD, *args)
        assert status == 0
        answers[engine] = json.loads(out)
    exact, onnx = answers["exact"], answers["onnx"]
    assert [e["code"] for e in onnx["differential"]] == [e["code"] for e in exact["differential"]]
    for got, ref in zip(onnx["differential"], exact["differential"], strict=True):
        assert got["probability"] == pytest.approx(ref["probability"], abs=1e-4)
    assert onnx["severity"]["level"] == exact["severity"]["level"]


@pytest.mark.parametrize("engine", ["exact", "onnx"])
@pytest.mark.parametrize("name", ["trees.npz", "gate.onnx", "common.onnx", "rare_encoder.onnx"])
def test_a_missing_or_altered_package_is_refused(capsys, tmp_path, edge_package, name, engine):
    """Every file is checked whichever engine reads it."""
    engine_args = ("--engine", engine)
    status, _, err = run(capsys, tmp_path, GOOD, "--package", str(tmp_path / "nowhere"))
    assert status == EXIT_BAD_PACKAGE and "no manifest.json" in err
    altered = tmp_path / "altered"
    shutil.copytree(edge_package, altered)
    (altered / name).write_bytes((altered / name).read_bytes() + b"\0")
    status, _, err = run(capsys, tmp_path, GOOD, "--package", str(altered), *engine_args)
    assert status == EXIT_BAD_PACKAGE and f"{name}: sha256 differs" in err
    (altered / name).unlink()
    status, _, err = run(capsys, tmp_path, GOOD, "--package", str(altered), *engine_args)
    assert status == EXIT_BAD_PACKAGE and f"{name}: listed in the manifest but missing" in err


def test_the_onnx_engine_refuses_a_package_without_onnx_boosters(capsys, tmp_path, edge_package):
    """A package whose configuration names no booster ONNX files (e.g. written by an
    exporter that left them out) answers with the exact engine only."""
    stripped = tmp_path / "stripped"
    shutil.copytree(edge_package, stripped)
    config = json.loads((stripped / "config.json").read_text())
    for model in config["models"].values():
        model.pop("onnx", None)
        for threshold in model.get("thresholds", []):
            threshold.pop("onnx", None)
    data = json.dumps(config).encode()
    (stripped / "config.json").write_bytes(data)
    manifest = json.loads((stripped / "manifest.json").read_text())
    manifest["files"]["config.json"] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    (stripped / "manifest.json").write_text(json.dumps(manifest))
    assert run(capsys, tmp_path, GOOD, "--package", str(stripped))[0] == 0
    status, _, err = run(capsys, tmp_path, GOOD, "--package", str(stripped), "--engine", "onnx")
    assert status == EXIT_BAD_PACKAGE and "no ONNX file for the booster" in err
