"""A DiseasePredictor built for real on tiny synthetic warehouse tables: the features
team's FeatureBuilder, then the common_model, severity_model and calibration pipelines."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.pipelines.calibration import create_pipeline as calibration_pipeline
from disease_pipeline.pipelines.common_model import create_pipeline as common_pipeline
from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.pipelines.severity_model import create_pipeline as severity_pipeline
from disease_pipeline.predictor.features import FeatureBuilder
from tests.pipelines.common_model.synthetic import (
    REGISTRY_COLUMNS,
    load_parameters,
    param_entries,
    run_in_memory,
)
from tests.pipelines.features.synthetic import warehouse_tables

PRM = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def labelled_matrix(tables: dict, builder: FeatureBuilder) -> pd.DataFrame:
    """Feature rows with the label columns of docs/data_contracts.md."""
    primary = tables["diagnoses"][tables["diagnoses"]["role"] == "primary"]
    prefix = primary["system"].map({"ICD10": "", "OMIM": "OMIM:", "ORPHA": "ORPHA:"})
    labels = pd.DataFrame(
        {
            "encounter_id": primary["encounter_id"].astype(str),
            "label_disease": prefix + primary["code"].astype(str),
            "label_category": primary["category"],
            "label_severity": primary["severity"],
        }
    )
    encounters = tables["encounters"][["encounter_id", "patient_id", "start"]]
    features = builder.transform(tables).reset_index(names="encounter_id")
    return (
        encounters.merge(labels, on="encounter_id")
        .merge(features, on="encounter_id")
        .sort_values("start", ignore_index=True)
    )


@pytest.fixture(scope="session")
def predictor_tables() -> dict:
    """Warehouse-shaped tables of 260 synthetic patients (no registry cases)."""
    prm = warehouse_tables(n_patients=260, seed=5, registry=0)
    return assemble_feature_tables(**{name: prm[name] for name in PRM})


def build_predictor(tables: dict, knowledge: dict | None = None):
    """The assembled predictor: builder and models fitted on the first 70 % of encounters
    (by time), calibrated on the rest; ``knowledge`` adds the knowledge block and blend."""
    features = load_parameters("features")
    builder = FeatureBuilder(**features["builder"], knowledge=knowledge).fit(tables)
    predictor_tables = tables
    matrix = labelled_matrix(predictor_tables, builder)
    cut = int(len(matrix) * 0.7)
    data = (
        {
            "model_input_train": matrix.iloc[:cut],
            "model_input_calibration": matrix.iloc[cut:],
            "feat_builder": builder,
            "model_rare": None,
            "feat_registry_cases": pd.DataFrame(columns=REGISTRY_COLUMNS),
        }
        | param_entries("common_model", load_parameters("common_model"))
        | param_entries("severity_model", load_parameters("severity_model"))
        | param_entries("calibration", load_parameters("calibration"))
    )
    pipeline = common_pipeline() + severity_pipeline() + calibration_pipeline()
    return run_in_memory(pipeline, data)["model_predictor"]


@pytest.fixture(scope="session")
def predictor(predictor_tables):
    """The predictor without the knowledge block (see :func:`build_predictor`)."""
    return build_predictor(predictor_tables)


@pytest.fixture(scope="session")
def knowledge_predictor(predictor_tables):
    """The predictor with the catalogue knowledge scorer, its blend and can't-miss flags."""
    return build_predictor(predictor_tables, load_parameters("common_model")["knowledge"])
