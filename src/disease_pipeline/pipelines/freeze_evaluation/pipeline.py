"""``kedro run --pipeline=freeze_evaluation``: the test split and its warehouse tables,
kept in ``model_input_frozen_evaluation`` (run after a ``train`` whose test split should
judge later challengers)."""

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.pipelines.features.pipeline import WAREHOUSE_TABLES
from disease_pipeline.pipelines.retrain.nodes import freeze_evaluation_set


def create_pipeline(**kwargs) -> Pipeline:
    """Warehouse tables → the test split's tables, frozen."""
    return Pipeline(
        [
            Node(
                assemble_feature_tables,
                inputs={table: f"prm_{table}" for table in WAREHOUSE_TABLES}
                | {"feedback": "prm_feedback_encounters"},
                outputs="prm_freeze_tables",
                name="assemble_freeze_tables",
            ),
            Node(
                freeze_evaluation_set,
                ["model_input_test", "prm_freeze_tables"],
                "model_input_frozen_evaluation",
                name="freeze_evaluation_set",
            ),
        ],
        tags="freeze_evaluation",
    )
