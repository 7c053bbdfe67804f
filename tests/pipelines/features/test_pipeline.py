"""The ``features`` pipeline, run node by node with Kedro's runner."""

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables, subset_tables
from disease_pipeline.pipelines.features.pipeline import create_pipeline
from disease_pipeline.predictor.features import FeatureBuilder
from tests.pipelines.common_model.synthetic import KeptDataset, load_parameters, param_entries
from tests.pipelines.features.conftest import PRM

OUTPUTS = (
    "feat_builder",
    "feat_encounters",
    "feat_registry_cases",
    "model_input_train",
    "model_input_calibration",
    "model_input_test",
    "model_input_cv_folds",
    "reporting_split_report",
)


@pytest.fixture(scope="module")
def outputs(warehouse, feature_params) -> dict:
    pipeline = create_pipeline()
    catalog = DataCatalog(
        {f"prm_{name}": MemoryDataset(frame) for name, frame in warehouse.items()}
        | {"prm_feedback_encounters": MemoryDataset({})}  # no clinician feedback yet
        | {name: KeptDataset() for name in OUTPUTS}
        | {name: MemoryDataset(v) for name, v in param_entries("features", feature_params).items()}
        | {
            "params:common_model.knowledge": MemoryDataset(
                load_parameters("common_model")["knowledge"]
            )
        }
    )
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def test_pipeline_reads_the_warehouse_names():
    assert create_pipeline().inputs() == {
        "prm_patients",
        "prm_encounters",
        "prm_symptoms",
        "prm_vitals",
        "prm_labs",
        "prm_diagnoses",
        "prm_feedback_encounters",
        "params:features.registry_sources",
        "params:features.split",
        "params:features.builder",
        "params:features.chunk_size",
        "params:features.parity_sample",
        "params:features.seed",
        "params:features.split.cv_folds",
        "params:features.modality_masking",
        "params:common_model.knowledge",
    }


def test_feature_matrix_follows_the_contract(outputs):
    builder: FeatureBuilder = outputs["feat_builder"]
    matrix = outputs["feat_encounters"]
    head = [
        "encounter_id",
        "patient_id",
        "start",
        "label_disease",
        "label_category",
        "label_severity",
    ]
    assert list(matrix.columns) == head + builder.feature_names
    assert (matrix[builder.feature_names].dtypes == "float64").all()
    assert matrix["encounter_id"].is_unique
    assert not (matrix["encounter_id"].isin(outputs["feat_registry_cases"]["encounter_id"])).any()


def test_knowledge_block_and_masked_training_rows(outputs):
    """The matrix carries the knowledge log posterior and the modality flags; some
    training rows were masked to symptoms only, while test rows keep what they had."""
    builder: FeatureBuilder = outputs["feat_builder"]
    assert "knowledge_I21" in builder.feature_names and "measured_labs" in builder.feature_names
    train = outputs["model_input_train"]
    assert ((train["measured_vitals"] == 0) & (train["measured_labs"] == 0)).any()
    assert train.filter(like="knowledge_").notna().all().all()


def test_splits_partition_the_matrix_by_patient_and_time(outputs):
    splits = [outputs[f"model_input_{s}"] for s in ("train", "calibration", "test")]
    ids = pd.concat([s["encounter_id"] for s in splits])
    assert ids.is_unique and set(ids) <= set(outputs["feat_encounters"]["encounter_id"])
    patients = [set(s["patient_id"]) for s in splits]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert splits[0]["start"].max() < splits[1]["start"].min()
    assert splits[1]["start"].max() < splits[2]["start"].min()
    folds = outputs["model_input_cv_folds"]
    assert set(folds["encounter_id"]) == set(splits[0]["encounter_id"])


def test_split_report_counts_what_was_written(outputs):
    report = outputs["reporting_split_report"]
    for name in ("train", "calibration", "test"):
        frame = outputs[f"model_input_{name}"]
        assert report["splits"][name]["encounters"] == len(frame)
        assert sum(report["splits"][name]["label_disease"].values()) == len(frame)
    assert report["feature_count"] == len(outputs["feat_builder"].feature_names)
    assert report["registry_cases"] == len(outputs["feat_registry_cases"])
    assert report["labelled_encounters"] == len(outputs["feat_encounters"])


@pytest.mark.slow
def test_features_on_the_simulated_warehouse(pipeline_runner, test_catalog):
    """simulate → ingestion → anonymization → features in the test environment."""
    for name in ("simulate", "ingestion", "anonymization", "features"):
        pipeline_runner(name)
    builder = test_catalog.load("feat_builder")
    matrix = test_catalog.load("feat_encounters")
    registry = test_catalog.load("feat_registry_cases")
    splits = [test_catalog.load(f"model_input_{s}") for s in ("train", "calibration", "test")]
    assert list(matrix.columns[6:]) == builder.feature_names
    assert matrix["label_category"].isin(["COMMON", "RARE"]).all()
    assert (
        matrix.loc[matrix["label_category"] == "RARE", "label_disease"]
        .str.match(r"^(OMIM|ORPHA):\d+$")
        .all()
    )
    assert len(registry) > 0 and registry["label_disease"].str.contains(":").all()
    assert not set(registry["encounter_id"]) & set(matrix["encounter_id"])
    patients = [set(s["patient_id"]) for s in splits]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert splits[0]["start"].max() < splits[1]["start"].min() <= splits[2]["start"].min()
    # the saved builder recomputes the stored features from the warehouse
    warehouse = {t: test_catalog.load(f"prm_{t}") for t in PRM}
    tables = assemble_feature_tables(**warehouse)
    sample = splits[2]["encounter_id"].head(20)
    recomputed = builder.transform(subset_tables(tables, sample))
    stored = matrix.set_index("encounter_id").loc[recomputed.index, builder.feature_names]
    pd.testing.assert_frame_equal(recomputed, stored, check_names=False)
