"""``kedro run --pipeline=bento_packaging``: the champion into the BentoML model store.

Runs after ``packaging``: it reads ``reporting_champion_registration`` (what the
registration of ``@champion`` in MLflow decided), so ``train`` ends with a model that
``bentoml serve`` and ``bentoml build`` find.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import bento_import_spec


def create_pipeline(**kwargs) -> Pipeline:
    """One node; its output dataset (``registry_bento_model``) does the import."""
    return Pipeline(
        [
            Node(
                bento_import_spec,
                ["reporting_champion_registration", "params:bento_packaging"],
                "registry_bento_model",
                name="stage_champion_in_bentoml",
            )
        ],
        tags="bento_packaging",
    )
