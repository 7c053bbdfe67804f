"""``features``: warehouse → labels, registry cases, splits, fitted FeatureBuilder, matrices."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.features.nodes import (
    assemble_feature_tables,
    build_feature_matrix,
    build_labels,
    build_registry_cases,
    fit_feature_builder,
    mask_modalities,
)
from disease_pipeline.pipelines.features.splits import (
    assign_cv_folds,
    split_encounters,
    split_feature_matrix,
    split_report,
)

#: Warehouse tables read from the anonymization catalog (``prm_<table>``).
WAREHOUSE_TABLES = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def create_pipeline(**kwargs) -> Pipeline:
    """Labels and splits first, so the FeatureBuilder is fitted on the training period only."""
    nodes = [
        Node(
            assemble_feature_tables,
            inputs={table: f"prm_{table}" for table in WAREHOUSE_TABLES}
            | {"feedback": "prm_feedback_encounters"},
            outputs="prm_feature_tables",
            name="assemble_feature_tables",
        ),
        Node(
            build_labels,
            inputs=["prm_feature_tables", "params:features.registry_sources"],
            outputs="feat_labels",
            name="build_labels",
        ),
        Node(
            build_registry_cases,
            inputs=["prm_feature_tables", "params:features.registry_sources"],
            outputs="feat_registry_cases",
            name="build_registry_cases",
        ),
        Node(
            split_encounters,
            inputs=["feat_labels", "params:features.split"],
            outputs="feat_split_assignment",
            name="split_encounters",
        ),
        Node(
            fit_feature_builder,
            inputs=[
                "prm_feature_tables",
                "feat_split_assignment",
                "params:features.builder",
                "params:common_model.knowledge",
            ],
            outputs="feat_builder",
            name="fit_feature_builder",
        ),
        Node(
            mask_modalities,
            inputs=[
                "prm_feature_tables",
                "feat_split_assignment",
                "params:features.modality_masking",
            ],
            outputs="feat_masked_tables",
            name="mask_modalities",
        ),
        Node(
            build_feature_matrix,
            inputs={
                "builder": "feat_builder",
                "tables": "feat_masked_tables",
                "labels": "feat_labels",
                "chunk_size": "params:features.chunk_size",
                "parity_sample": "params:features.parity_sample",
                "seed": "params:features.seed",
            },
            outputs="feat_encounters",
            name="build_feature_matrix",
        ),
        Node(
            split_feature_matrix,
            inputs=["feat_encounters", "feat_split_assignment"],
            outputs=["model_input_train", "model_input_calibration", "model_input_test"],
            name="split_feature_matrix",
        ),
        Node(
            assign_cv_folds,
            inputs=["model_input_train", "params:features.split.cv_folds", "params:features.seed"],
            outputs="model_input_cv_folds",
            name="assign_cv_folds",
        ),
        Node(
            split_report,
            inputs={
                "train": "model_input_train",
                "calibration": "model_input_calibration",
                "test": "model_input_test",
                "assignment": "feat_split_assignment",
                "cv_folds": "model_input_cv_folds",
                "registry_cases": "feat_registry_cases",
                "builder": "feat_builder",
            },
            outputs="reporting_split_report",
            name="split_report",
        ),
    ]
    return Pipeline(nodes, tags="features")
