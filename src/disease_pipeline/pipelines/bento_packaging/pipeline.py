"""``kedro run --pipeline=bento_packaging``: the champion into the BentoML model store.

Meant to run right after ``packaging`` (which registers ``@champion`` in MLflow), so
``train`` ends with a model that ``bentoml serve`` and ``bentoml build`` find. It reads
the registry, not a Kedro dataset of ``packaging``, so nothing in the data flow orders
the two: Kedro's sequential runner runs the nodes that are ready together in the order
of their names, and the registered names (``bento_packaging.stage_champion_in_bentoml``,
``packaging.register_champion``) put this one first. It therefore also reads the gate's
rendered verdict (``reporting_gate_verdict_markdown``, written in the same step as
``register_champion`` runs): that puts it one step later, after the registration.
``tests/test_pipeline_registry.py`` checks the order in ``train``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import bento_import_spec


def create_pipeline(**kwargs) -> Pipeline:
    """One node; its output dataset (``models_bento``) does the import."""
    return Pipeline(
        [
            Node(
                bento_import_spec,
                [
                    "reporting_gate_verdict",
                    "params:bento_packaging",
                    "reporting_gate_verdict_markdown",
                ],
                "models_bento",
                name="stage_champion_in_bentoml",
            )
        ],
        tags="bento_packaging",
    )
