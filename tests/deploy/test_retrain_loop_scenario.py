"""The retraining loop end to end (``scripts/retrain_loop_scenario.py``) on the test
champion, in a copy of its data root and registry: a later year with a new creatinine
assay simulated, served by a real ``bentoml serve``, 5 % of the answered encounters
confirmed through ``/feedback`` (admin, two concordant clinicians, one clinician alone),
monitored, checked, frozen and retrained through ``kedro run`` — in both directions:

- worse: the retrain is misconfigured three times — it learns from the first quarter of
  the patients (``features.split.fractions``, as a truncated export would leave it), its
  knowledge scorer ignores the reported findings (``common_model.knowledge.evidence_weight``
  0) and its common model goes without the catalogue's query-style rows
  (``common_model.query_rows.enabled``; with them the catalogue alone teaches it enough
  to beat the champion): the challenger still passes the test environment's lenient
  acceptance gate and is registered, but it is inferior on the frozen evaluation set and
  kept out, tagged with the reason; ``@champion`` stays;
- better: that weak model is then made champion by hand (``disease-pipeline promote``),
  and the next retrain, with the full training data and the same feedback, beats it on
  the frozen set and is promoted: ``@champion`` moves, the weak model becomes
  ``@previous_champion``, and the move is in the service's audit trail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from disease_pipeline.serving.audit import verify_chain
from disease_pipeline.serving.config import audit_key, load_config
from tests.conftest import PROJECT_ROOT
from tests.deploy.test_drift_scenario import ASSAY
from tests.serving.conftest import BENTOML_HOME

pytestmark = [pytest.mark.slow, pytest.mark.server]

#: the first quarter of the patients for training (the frozen test period stays out of
#: training and calibration), a knowledge scorer blind to the findings and no query rows
DEGRADED = (
    "features.split.fractions.train=0.25,features.split.fractions.calibration=0.15,"
    "features.split.fractions.test=0.6,common_model.knowledge.evidence_weight=0.0,"
    "common_model.query_rows.enabled=false"
)
PATIENTS = 600


def scenario(out, *arguments: str, summary: str = "summary.json") -> dict:
    command = [sys.executable, "scripts/retrain_loop_scenario.py", "--env", "test"]
    command += ["--out", str(out), "--bentoml-home", str(BENTOML_HOME), "--summary", summary]
    done = subprocess.run(
        [*command, *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return json.loads((out / summary).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def loop(trained_store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("retrain_loop") / "loop"
    worse = scenario(
        out,
        "--patients",
        str(PATIENTS),
        "--params",
        ASSAY,
        "--retrain-params",
        DEGRADED,
    )
    weak = worse["registry_after"]["aliases"]["challenger"]
    promoted = subprocess.run(
        [sys.executable, "-m", "disease_pipeline", "promote", "--version", weak]
        + ["--reason", "scenario: a weak champion", "--user", "scenario"]
        + ["--tracking-uri", f"sqlite:///{out / 'mlflow.db'}"]
        + ["--serving-config", str(out / "service" / "serving.yml")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    better = scenario(out, "--retrain-only", summary="better.json")
    return {"out": out, "worse": worse, "better": better, "weak": weak}


def test_the_drifted_period_is_served_confirmed_and_triggers_a_retrain(loop):
    worse = loop["worse"]
    served = worse["served"]
    assert served["served"] == PATIENTS and served["answered"] == PATIENTS
    assert served["confirmed"] == round(0.05 * PATIENTS)
    assert served["confirmed_by"] == {"admin": 10, "two_clinicians": 10, "one_clinician": 10}
    monitor = worse["monitor"]
    assert monitor["n_predictions"] == PATIENTS
    assert {"labs_creatinine_mean"} <= set(monitor["drifted_features"])
    assert monitor["n_labelled"] == served["confirmed"]
    decision = worse["decision"]
    assert decision["decision"] == "retrain"
    assert "psi" in decision["fired"]
    assert decision["triggers"]["psi"]["value"] > 0.2
    assert set(worse["steps_seconds"]) == {
        "prepare",
        "simulate",
        "serve_and_feedback",
        "monitor",
        "retrain_check",
        "freeze_evaluation",
        "retrain",
    }


def test_a_worse_challenger_is_kept_out_with_the_reason(loop):
    worse = loop["worse"]
    before, after = worse["registry_before"]["aliases"], worse["registry_after"]["aliases"]
    assert after["champion"] == before["champion"]
    assert after["challenger"] not in before.values()
    comparison = worse["comparison"]
    assert not comparison["promote"]
    assert "top3 inferior" in comparison["reason"]
    figures = comparison["figures"]
    assert figures["top3.challenger"] < figures["top3.champion"]
    assert figures["top3.difference.ci_high"] < 0
    assert comparison["evaluation_set"]["source"] == "frozen"
    assert comparison["evaluation_set"]["n_compared"] > 0
    # the 10 single-clinician confirmations are recent traffic, reported, not gating
    assert comparison["recent_traffic"]["n"] == 10
    assert not comparison["recent_traffic"]["gating"]


def test_a_better_challenger_is_promoted(loop):
    better, weak = loop["better"], loop["weak"]
    before, after = better["registry_before"]["aliases"], better["registry_after"]["aliases"]
    assert before["champion"] == weak
    assert after["champion"] not in (weak, loop["worse"]["registry_before"]["aliases"]["champion"])
    assert after["previous_champion"] == weak
    assert "challenger" not in after
    comparison = better["comparison"]
    assert comparison["promote"], comparison["reason"]
    assert comparison["figures"]["top3.difference.ci_low"] > 0
    assert comparison["evaluation_set"]["source"] == "frozen"
    assert better["steps_seconds"].keys() == {"retrain"}
    config = load_config(loop["out"] / "service" / "serving.yml")
    check = verify_chain(config.audit_log, key=audit_key(config))
    assert check.ok and check.events.get("model_promotion") == 2, check  # by hand, by retrain
