"""``python -m disease_pipeline.loop_report``: the retraining loop's decision and the
comparison's verdict, read through the catalog of an environment (its ``data_root``,
here an isolated copy of the test configuration) and printed as one line of JSON.
(tests/deploy/test_airflow_dag.py reads them as the Airflow tasks' results.)"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from disease_pipeline.loop_report import main
from tests.conftest import PROJECT_ROOT
from tests.deploy.airflow_project import isolated_conf

DECISION = {
    "decision": "retrain",
    "fired": ["model_age_days"],
    "reason": "model_age_days 100 >= 90",
    "checked_at": "2027-03-01T00:00:00+00:00",
    "champion_version": "3",
    "triggers": {"model_age_days": {"value": 100, "threshold": 90, "fired": True}},
}
COMPARISON = {
    "gate": {"approved": True, "reason": "all criteria passed"},
    "evaluation_set": {"source": "frozen", "n_compared": 67},
    "figures": {"top3.difference": 0.0},
    "verdict": {"promote": False, "reason": "top3 not better", "checks": []},
}


def report(what: str, conf):
    """``loop_report what`` in the test environment of ``conf``, run from the project."""
    arguments = [what, "--env", "test", "--conf-source", str(conf)]
    return CliRunner().invoke(main, [*arguments, "--project-path", str(PROJECT_ROOT)])


def test_decision_and_verdict_are_the_last_line(tmp_path):
    conf = isolated_conf(tmp_path)
    folder = tmp_path / "data" / "08_reporting" / "retrain"
    folder.mkdir(parents=True)
    (folder / "decision.json").write_text(json.dumps(DECISION), encoding="utf-8")
    (folder / "comparison.json").write_text(json.dumps(COMPARISON), encoding="utf-8")

    done = report("decision", conf)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output.strip().splitlines()[-1]) == {
        key: DECISION[key]
        for key in ("decision", "fired", "reason", "checked_at", "champion_version")
    }
    done = report("comparison", conf)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output.strip().splitlines()[-1]) == {
        "promote": False,
        "reason": "top3 not better",
        "n_compared": 67,
        "gate_approved": True,
    }


def test_a_missing_decision_fails(tmp_path):
    done = report("decision", isolated_conf(tmp_path))
    assert done.exit_code != 0
    with pytest.raises(Exception, match="reporting_retrain_decision"):
        raise done.exception
