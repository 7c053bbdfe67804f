"""Project hooks that are not tied to one pipeline.

``ParameterSchemaHook`` validates the run's parameters (the YAML merged with ``kedro run
--params``) against the schemas of :mod:`disease_pipeline.params` before the run starts,
so a wrong type or a misspelt key fails at once, naming its key path.

``MlflowDataVersionHook`` tags every kedro-mlflow run with the data version written by
the anonymization pipeline (``reporting_data_version``), so each MLflow run says which
raw snapshot it was computed from.

``MlflowRunCleanupHook`` closes the MLflow run that kedro-mlflow 2.0.3 leaves on
mlflow's run stack: it re-enters the run before every node (``start_run(run_id,
nested=True)``, one stack entry each with mlflow 3) but ends it once. In the CLI the
process exits; in one Python process (tests, notebooks) the next Kedro session would
otherwise log into the previous, already finished run.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from disease_pipeline.params import validate_parameters

logger = logging.getLogger(__name__)

DATA_VERSION_DATASET = "reporting_data_version"


class ParameterSchemaHook:
    """Refuses a run whose parameters do not match their schemas, before any node runs.

    It runs first among the ``before_pipeline_run`` hooks (``tryfirst``), so a refused
    run has not started an MLflow run nor logged its parameters. Blocks without a
    schema (runtime-only keys such as ``screen_webhook_url``) are left alone.
    """

    def __init__(self) -> None:
        self._context: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Keep the context: its ``params`` are read when the run starts."""
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Validate ``context.params`` (the YAML and the run's ``--params``).

        Raises:
            disease_pipeline.params.ParameterSchemaError: naming every failing key path.
        """
        if self._context is not None:
            validate_parameters(self._context.params)


class MlflowDataVersionHook:
    """Sets the MLflow tag ``data_version`` on the active run.

    The version comes from ``reporting_data_version`` when a node of the run writes it,
    otherwise from its last saved copy, read once before the first node runs.
    """

    def __init__(self) -> None:
        self._tagged = False

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._tagged = False

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        if self._tagged or mlflow.active_run() is None:
            return
        self._tagged = True
        try:
            if DATA_VERSION_DATASET in catalog and catalog.exists(DATA_VERSION_DATASET):
                self._tag(catalog.load(DATA_VERSION_DATASET))
        except Exception as error:  # a missing version must never stop a run
            logger.warning("data_version tag not set: %s", error)

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        if DATA_VERSION_DATASET in outputs and mlflow.active_run() is not None:
            self._tag(outputs[DATA_VERSION_DATASET])

    @staticmethod
    def _tag(report: Any) -> None:
        if isinstance(report, dict) and report.get("data_version"):
            mlflow.set_tag("data_version", str(report["data_version"]))


class MlflowRunCleanupHook:
    """Pops every stack entry of the pipeline's MLflow run once the pipeline is over,
    unless that run was already active before the session (an orchestrator's run)."""

    def __init__(self) -> None:
        self._external_run = False
        self._run_id: str | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._external_run = mlflow.active_run() is not None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        active = mlflow.active_run()
        self._run_id = active.info.run_id if active is not None else None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._close()

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._external_run or self._run_id is None:
            return
        while (active := mlflow.active_run()) is not None and active.info.run_id == self._run_id:
            mlflow.end_run()
        self._run_id = None
