"""``kedro run --pipeline=rare_model``: cases → fitted hybrid, validation and latency."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    assemble_rare_cases,
    benchmark_rare_model,
    pretrain_rare_encoder,
    train_rare_model,
    validate_rare_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Assemble known cases, pre-train the encoder, fit the rare model from it, validate
    the same procedure on registry cases, time it."""
    return Pipeline(
        [
            Node(
                assemble_rare_cases,
                {
                    "registry_cases": "feat_registry_cases",
                    "train": "model_input_train",
                    "symptoms": "prm_symptoms",
                    "encounters": "prm_encounters",
                    "patients": "prm_patients",
                    "diagnoses": "prm_diagnoses",
                    "params": "params:rare_model",
                },
                "model_input_rare_cases",
                name="assemble_rare_cases",
            ),
            Node(
                pretrain_rare_encoder,
                ["model_input_rare_cases", "params:rare_model"],
                ["model_rare_encoder_pretrained", "reporting_rare_encoder_pretraining"],
                name="pretrain_rare_encoder",
            ),
            Node(
                train_rare_model,
                ["model_input_rare_cases", "model_rare_encoder_pretrained", "params:rare_model"],
                [
                    "model_rare",
                    "reporting_rare_model_training",
                    "reporting_rare_model_mlflow_metrics",
                ],
                name="train_rare_model",
            ),
            Node(
                validate_rare_model,
                [
                    "model_input_rare_cases",
                    "model_rare_encoder_pretrained",
                    "reporting_rare_encoder_pretraining",
                    "params:rare_model",
                ],
                [
                    "reporting_rare_model_validation",
                    "reporting_rare_model_validation_md",
                    "reporting_rare_model_validation_mlflow_metrics",
                ],
                name="validate_rare_model",
            ),
            Node(
                benchmark_rare_model,
                ["model_rare", "model_input_rare_cases", "params:rare_model"],
                "reporting_rare_model_latency",
                name="benchmark_rare_model",
            ),
        ]
    )
