"""A real trained bundle for the edge tests, and its edge package.

The cheapest bundle with every component the edge runtime ports: the predictor that
tests/predictor builds for real on 260 synthetic patients (feature builder with the
knowledge block, common, gate and severity models, calibration, knowledge blend,
must-not-miss flags) with the rare-disease hybrid that tests/rare fits on the 60
bundled phenopackets (conf/test sizes, the encoder included). ~25 s.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from disease_pipeline.edge_export.cli import export_edge
from disease_pipeline.edge_export.patients import simulated_patients
from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.rare.cases import cases_from_frame
from disease_pipeline.rare.fit import RareModelParams, fit_rare_model, load_knowledge
from tests.pipelines.common_model.synthetic import load_parameters
from tests.pipelines.features.synthetic import warehouse_tables
from tests.predictor.conftest import PRM, build_predictor
from tests.rare.conftest import conf, sample_registry_frame

#: patients of the parity test (issue 18: 500 simulated patients)
N_PATIENTS = 500


@pytest.fixture(scope="session")
def full_predictor():
    """The trained ``DiseasePredictor`` with the rare hybrid (see module docstring)."""
    prm = warehouse_tables(n_patients=260, seed=5, registry=0)
    tables = assemble_feature_tables(**{name: prm[name] for name in PRM})
    predictor = build_predictor(tables, load_parameters("common_model")["knowledge"])
    base = load_knowledge()
    cases, _ = cases_from_frame(
        sample_registry_frame(), base.ontology, base.space, "registry",
        id_column="encounter_id", disease_column="label_disease",
    )  # fmt: skip
    params = RareModelParams.from_dict(conf("test", "parameters_rare_model.yml")["rare_model"])
    predictor.rare_model, _ = fit_rare_model(base, cases, [], params)
    return predictor


@pytest.fixture(scope="session")
def export_run(full_predictor, tmp_path_factory) -> tuple[Path, dict]:
    """``disease-pipeline export-edge --predictor <pickle>`` on :func:`full_predictor`
    (the predictor pickled as the calibration pipeline saves it): the package folder and
    what the command printed."""
    folder = tmp_path_factory.mktemp("edge")
    pickled = folder / "predictor.pkl"
    pickled.write_bytes(pickle.dumps(full_predictor))
    out = folder / "package"
    result = CliRunner().invoke(
        export_edge,
        ["--predictor", str(pickled), "--out", str(out), "--model-version", "test/1",
         "--data-version", "test-data"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


@pytest.fixture(scope="session")
def edge_package(export_run) -> Path:
    """The edge package folder of :func:`full_predictor`, written once per session."""
    return export_run[0]


@pytest.fixture(scope="session")
def patients() -> list[dict]:
    """Simulated patient records: common and rare presentations (see edge_export.patients)."""
    return simulated_patients(N_PATIENTS, seed=11)
