"""The test environment's configuration in a folder of its own, for runs of the
retraining loop that must leave ``data/test`` and its registry alone: ``data_root``,
the MLflow store and the artifact location move under that folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT


def isolated_conf(folder: Path, name: str = "conf", env: str = "test") -> Path:
    """``conf/base`` and ``conf/<env>`` copied to ``folder/<name>`` with the data under
    ``folder/data`` and the MLflow store ``folder/mlflow.db`` (artifacts in
    ``folder/mlruns``); the path to pass as ``--conf-source``."""
    conf = folder / name
    for part in ("base", env):
        shutil.copytree(PROJECT_ROOT / "conf" / part, conf / part)
    globals_file = conf / env / "globals.yml"
    values = yaml.safe_load(globals_file.read_text(encoding="utf-8"))
    globals_file.write_text(
        yaml.safe_dump(values | {"data_root": str(folder / "data")}), encoding="utf-8"
    )
    mlflow_file = conf / env / "mlflow.yml"
    document = yaml.safe_load(mlflow_file.read_text(encoding="utf-8"))
    document["server"]["mlflow_tracking_uri"] = tracking_uri(folder)
    experiment = document["tracking"]["experiment"]
    experiment["create_experiment_kwargs"]["artifact_location"] = str(folder / "mlruns")
    mlflow_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    return conf


def tracking_uri(folder: Path) -> str:
    """The MLflow store of an :func:`isolated_conf` folder."""
    return f"sqlite:///{folder / 'mlflow.db'}"
