"""The committed Airflow DAG of the retraining loop (deploy/airflow/dags) is what
``kedro airflow create`` generates now from deploy/airflow/retrain_loop.j2, the project's
``retrain`` pipeline and conf/base/airflow.yml: a change to any of them that was not
regenerated fails here. (tests/deploy/test_airflow_dag.py runs the DAG in Airflow.)"""

from __future__ import annotations

from click.testing import CliRunner
from kedro.framework.startup import bootstrap_project
from kedro_airflow.plugin import commands

from tests.conftest import PROJECT_ROOT

DAGS = PROJECT_ROOT / "deploy" / "airflow" / "dags"
DAG_FILE = DAGS / "disease_pipeline_retrain_dag.py"
#: the command of the DAG's docstring and of docs/retraining.md
CREATE = [
    "airflow",
    "create",
    "--pipelines=retrain",
    "--jinja-file=deploy/airflow/retrain_loop.j2",
]


def test_the_committed_dag_is_what_kedro_airflow_generates_now(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # the template path is relative, as in the command
    metadata = bootstrap_project(PROJECT_ROOT)
    result = CliRunner().invoke(commands, [*CREATE, f"--target-dir={tmp_path}"], obj=metadata)
    assert result.exit_code == 0, result.output
    generated = tmp_path / DAG_FILE.name
    assert [p.name for p in DAGS.glob("*.py")] == [DAG_FILE.name]
    assert generated.read_text(encoding="utf-8") == DAG_FILE.read_text(encoding="utf-8"), (
        "deploy/airflow/dags is stale: run kedro "
        + " ".join(CREATE)
        + " --target-dir=deploy/airflow/dags"
    )
