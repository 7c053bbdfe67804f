"""The retraining loop's DAG run by Airflow itself: ``airflow dags test retrain_loop
<date>`` from Airflow's own virtual environment (``make airflow``), with a SQLite
metadata database made by ``airflow db migrate`` in a temporary ``AIRFLOW_HOME``.

Its tasks run the project's kedro (the project found from the DAG file's place in the
repository, the default) in the test environment, on a copy of the trained test data
with a registry of its own holding the session's test champion (a copy and a
registry per test, so neither test sees what the other's runs wrote):

- this week: no trigger fires (no traffic yet, a champion of today), ``decide`` takes
  ``wait`` and ``retrain`` is skipped; the registry is untouched;
- 100 days later (``retrain.now``): the champion's age fires ``model_age_days``,
  ``retrain`` trains and registers a challenger and compares it with the champion; the
  registry's aliases follow the comparison's verdict (a challenger retrained on the same
  data is the champion again, and is kept out).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from disease_pipeline.core.layers import DATA_LAYERS
from tests.conftest import PROJECT_ROOT, TEST_DATA_ROOT
from tests.deploy.airflow_project import isolated_conf, tracking_uri

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

AIRFLOW_VENV = PROJECT_ROOT / os.environ.get("AIRFLOW_VENV", ".venv-airflow")
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"
DAGS = PROJECT_ROOT / "deploy" / "airflow" / "dags"
DAG_ID = "retrain_loop"
MODEL = "disease_pipeline"
#: the keys of decision.json that retrain_check's result carries (loop_report)
REPORTED_DECISION = ("decision", "fired", "reason", "checked_at", "champion_version")


def register_test_champion(folder: Path) -> None:
    """The session's test champion (data/test's registry) registered as ``@champion`` of
    the folder's own registry, with its tags; its artifacts are read where they are."""
    session_store = f"sqlite:///{TEST_DATA_ROOT / 'mlflow.db'}"
    source = MlflowClient(tracking_uri=session_store, registry_uri=session_store)
    champion = source.get_model_version_by_alias(MODEL, "champion")
    store = tracking_uri(folder)
    target = MlflowClient(tracking_uri=store, registry_uri=store)
    target.create_registered_model(MODEL)
    version = target.create_model_version(
        MODEL,
        source=source.get_model_version_download_uri(MODEL, champion.version),
        tags=champion.tags,
    )
    target.set_registered_model_alias(MODEL, "champion", version.version)


@pytest.fixture
def loop_folder(trained_store, tmp_path) -> Iterator[Path]:
    """Data and registry of one test's loop runs: the trained test data, copied, and the
    test champion in a registry of its own (per test: a retrain registers a challenger
    and may move the aliases, which another test must not find, whatever the order)."""
    folder = tmp_path / "retrain_loop"
    for layer in DATA_LAYERS:
        shutil.copytree(TEST_DATA_ROOT / layer, folder / "data" / layer)
    register_test_champion(folder)
    yield folder
    shutil.rmtree(folder / "data", ignore_errors=True)  # ~150 MB of copied layers


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """A fresh ``AIRFLOW_HOME`` whose SQLite database ``airflow db migrate`` created (once
    per module: the migration takes a while; the tests' runs have their own dates)."""
    assert AIRFLOW.is_file(), f"no Airflow at {AIRFLOW}: run `make airflow` first"
    home = tmp_path_factory.mktemp("airflow")
    airflow(home, {}, "db", "migrate")
    return home


def airflow(home: Path, variables: dict[str, str], *arguments: str) -> str:
    """``airflow <arguments>`` with ``home`` and the DAG's Variables (as ``AIRFLOW_VAR_*``);
    its standard output."""
    env = os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env |= {f"AIRFLOW_VAR_{name.upper()}": value for name, value in variables.items()}
    done = subprocess.run(
        [str(AIRFLOW), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    (home / "airflow.log").open("a", encoding="utf-8").write(done.stdout + done.stderr)
    assert done.returncode == 0, (arguments, done.stdout[-4000:], done.stderr[-4000:])
    return done.stdout


def run_loop(home: Path, conf: Path, day: str) -> tuple[str, dict[str, str]]:
    """``airflow dags test retrain_loop <day>`` in the test environment of ``conf``; the
    run's id and the state of each of its tasks."""
    variables = {
        "disease_pipeline_env": "test",
        "disease_pipeline_conf_source": str(conf),
        "disease_pipeline_venv": sys.prefix,
    }
    airflow(home, variables, "dags", "test", DAG_ID, day)
    runs = last_json(airflow(home, {}, "dags", "list-runs", DAG_ID, "-o", "json"))
    (run,) = [r for r in runs if r["logical_date"].startswith(day)]
    assert run["state"] == "success", run
    states = airflow(home, {}, "tasks", "states-for-dag-run", DAG_ID, run["run_id"], "-o", "json")
    return run["run_id"], {task["task_id"]: task["state"] for task in last_json(states)}


def results(home: Path, run_id: str) -> dict[str, dict]:
    """The tasks' results (XCom ``return_value``) of a run, from Airflow's database."""
    query = "select task_id, value from xcom where dag_id = ? and run_id = ? and key = ?"
    with closing(sqlite3.connect(home / "airflow.db")) as db:
        rows = db.execute(query, (DAG_ID, run_id, "return_value")).fetchall()
    return {task: json.loads(value) for task, value in rows}


def last_json(output: str):
    """The JSON table of an ``airflow … -o json`` command (its warnings come first)."""
    return json.loads(output.strip().splitlines()[-1])


def aliases(folder: Path) -> dict[str, str]:
    store = tracking_uri(folder)
    model = MlflowClient(tracking_uri=store, registry_uri=store).get_registered_model(MODEL)
    return {alias: str(version) for alias, version in model.aliases.items()}


def read(folder: Path, name: str) -> dict:
    path = folder / "data" / "08_reporting" / name
    return json.loads(path.read_text(encoding="utf-8"))


def test_no_trigger_waits(loop_folder, airflow_home):
    conf = isolated_conf(loop_folder, "conf_this_week")
    started = datetime.now(UTC)
    run_id, states = run_loop(airflow_home, conf, "2026-12-07")
    assert states == {
        "monitor": "success",
        "retrain_check": "success",
        "decide": "success",
        "wait": "success",
        "retrain": "skipped",
    }
    summary = read(loop_folder, "monitoring/summary.json")  # written by this run's monitor
    assert datetime.fromisoformat(summary["window_end"]) >= started, summary["window_end"]
    decision = read(loop_folder, "retrain/decision.json")
    assert (decision["decision"], decision["fired"]) == ("wait", [])
    assert decision["monitoring"]["available"]
    assert decision["champion_version"] == "1"
    assert aliases(loop_folder) == {"champion": "1"}
    # the decision the branch followed is the one written, as loop_report printed it
    reported = results(airflow_home, run_id)
    assert set(reported) == {"retrain_check"}
    assert reported["retrain_check"] == {key: decision[key] for key in REPORTED_DECISION}


def test_an_old_champion_is_retrained_and_the_verdict_is_carried_out(loop_folder, airflow_home):
    conf = isolated_conf(loop_folder, "conf_100_days_later")
    later = (datetime.now(UTC) + timedelta(days=100)).isoformat()
    (conf / "test" / "parameters_retrain.yml").write_text(
        yaml.safe_dump({"retrain": {"now": later}}), encoding="utf-8"
    )
    run_id, states = run_loop(airflow_home, conf, "2026-12-14")
    assert states == {
        "monitor": "success",
        "retrain_check": "success",
        "decide": "success",
        "wait": "skipped",
        "retrain": "success",
    }
    decision = read(loop_folder, "retrain/decision.json")
    assert (decision["decision"], decision["fired"]) == ("retrain", ["model_age_days"])
    assert decision["triggers"]["model_age_days"]["value"] >= 99

    comparison = read(loop_folder, "retrain/comparison.json")
    verdict = comparison["verdict"]
    reported = results(airflow_home, run_id)
    assert reported["retrain_check"] == {key: decision[key] for key in REPORTED_DECISION}
    assert reported["retrain"] == {  # the retrain task's result: the comparison's verdict
        "promote": verdict["promote"],
        "reason": verdict["reason"],
        "n_compared": comparison["evaluation_set"]["n_compared"],
        "gate_approved": True,
    }
    store = tracking_uri(loop_folder)
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    challenger = client.get_model_version(MODEL, "2")  # registered by this run's retrain
    assert challenger.tags["feedback_version"] == "none"  # the retrain's tag: no feedback
    if verdict["promote"]:
        assert aliases(loop_folder) == {"champion": "2", "previous_champion": "1"}
        assert challenger.tags["promotion.by"] == "retrain-pipeline"
    else:
        assert aliases(loop_folder) == {"champion": "1", "challenger": "2"}
        assert challenger.tags["promotion.kept_out"] == verdict["reason"]
