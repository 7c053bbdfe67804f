"""``kedro run --pipeline=bento_packaging``: the champion into the BentoML model store.

Meant to run right after ``packaging`` (which registers ``@champion`` in MLflow), so
``train`` ends with a model that ``bentoml serve`` and ``bentoml build`` find. It reads
the registry, not a Kedro dataset of ``packaging``: when ``train`` chains both, the node
name sorts after ``register_champion`` so Kedro's sequential runner runs it later.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import bento_import_spec


def create_pipeline(**kwargs) -> Pipeline:
    """One node; its output dataset (``models_bento``) does the import."""
    return Pipeline(
        [
            Node(
                bento_import_spec,
                ["reporting_gate_verdict", "params:bento_packaging"],
                "models_bento",
                name="stage_champion_in_bentoml",
            )
        ],
        tags="bento_packaging",
    )
