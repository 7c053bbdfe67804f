"""Kedro project settings.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the defaults.
kedro-mlflow registers its hooks through its plugin entry point.
"""

from pathlib import Path

from kedro.config import OmegaConfigLoader

from disease_pipeline.hooks import (
    MlflowDataVersionHook,
    MlflowRunCleanupHook,
    ParameterSchemaHook,
)
from disease_pipeline.pipelines.anonymization.hooks import AnonymizationKeyHook
from disease_pipeline.pipelines.screen.hooks import SparkSessionHook

#: The project root (where ``pyproject.toml`` lives), for config values that must be
#: absolute whatever the working directory, e.g. ``sqlite:///${project_root:}/mlflow.db``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _project_root() -> str:
    return PROJECT_ROOT.as_posix()


CONFIG_LOADER_CLASS = OmegaConfigLoader
#: ``parameters`` merge softly: an environment's file (and ``kedro run --params``, which
#: Kedro merges into the environment's side) overrides the keys it names and keeps the
#: rest of ``base``. With Kedro's default (destructive), ``--params monitor.window_end=…``
#: replaced the whole ``monitor`` block in an environment without its own monitor file.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
    "custom_resolvers": {"project_root": _project_root},
}

#: Project hooks. ``ParameterSchemaHook`` refuses a run whose parameters (YAML and
#: ``--params``) do not match the schemas of ``disease_pipeline.params``, naming each
#: failing key path, before any node runs. ``AnonymizationKeyHook`` gives the
#: anonymisation pipeline its HMAC key (``anonymization_key`` dataset) and refuses a run
#: without a real key outside the ``local`` and ``test`` environments.
#: ``MlflowDataVersionHook`` tags every MLflow run with the data version;
#: ``MlflowRunCleanupHook`` closes the run kedro-mlflow leaves open.
#: ``SparkSessionHook`` starts the Spark session of ``screen_engine.spark`` (``--env
#: spark``) before the run, for the Parquet export's ``SparkParquetDataset``.
HOOKS = (
    ParameterSchemaHook(),
    AnonymizationKeyHook(),
    MlflowDataVersionHook(),
    MlflowRunCleanupHook(),
    SparkSessionHook(),
)
