"""The drift scenario end to end (``scripts/drift_scenario.py``): a post-deployment year
simulated by ``kedro run --pipeline=simulate --params …``, ingested and anonymised, sent
to a real ``bentoml serve`` of the test champion, monitored by ``kedro run
--pipeline=monitor``, and the alert rules evaluated by ``promtool`` on the gauges the
restarted service exports.

- Control (no shift): no feature flagged and no drift alert. Within the modality patterns
  no measurement is flagged either (a symptoms-only knowledge feature may be: the
  training period over-weights the first months of the year, the knowledge scores read
  the season).
- A new creatinine assay reading twice as high at every site, and the university
  hospital reporting every lab in its alternative unit: exactly the three creatinine
  features are flagged and alerted; the unit change is absorbed by the service's unit
  conversion and flags nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import BENTOML_HOME

pytestmark = [pytest.mark.slow, pytest.mark.server]

ASSAY = (
    "simulate.sites.assay_change.site=null,simulate.sites.assay_change.date=2025-01-01,"
    "simulate.sites.assay_change.loinc=2160-0,simulate.sites.assay_change.factor=2.0,"
    "simulate.sites.assay_change.unit=umol/L,simulate.sites.specs.university.lab_alt_unit_share=1.0"
)
CREATININE = {"labs_creatinine_min", "labs_creatinine_mean", "labs_creatinine_max"}
MEASUREMENTS = ("labs_", "vitals_", "missing_", "measured_", "news2", "qsofa")


def measurements_flagged(by_modality: dict) -> set[str]:
    return {f for flags in by_modality.values() for f in flags if f.startswith(MEASUREMENTS)}


def scenario(out, params: str = "") -> dict:
    command = [sys.executable, "scripts/drift_scenario.py", "--env", "test", "--out", str(out)]
    command += ["--patients", "600", "--bentoml-home", str(BENTOML_HOME)]
    if params:
        command += ["--params", params]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return json.loads((out / "scenario.json").read_text(encoding="utf-8"))


def test_unshifted_year_raises_no_flag_and_no_alert(trained_store, tmp_path):
    report = scenario(tmp_path / "control")
    assert report["served"] == {"answered": 600, "refused": 0}
    assert report["n_predictions"] == 600
    assert report["drifted_features"] == []
    assert measurements_flagged(report["by_modality"]) == set(), report["by_modality"]
    assert not [a for a in report["alerts"] if a.startswith("drift")]
    assert report["prometheus"]["promtool_passed"]  # DiseaseFeatureDrift fired for none
    assert report["prometheus"]["expected_firing"] == []
    assert report["prometheus"]["gauge_series"] > 0


def test_new_assay_is_flagged_and_alerted_on_exactly_its_features(trained_store, tmp_path):
    report = scenario(tmp_path / "assay", ASSAY)
    assert "simulate.sites.assay_change.loinc=2160-0" in report["params"]
    assert set(report["drifted_features"]) == CREATININE
    assert set(report["by_modality"]["all"]) >= CREATININE  # the full work-ups see it
    assert measurements_flagged(report["by_modality"]) == CREATININE, report["by_modality"]
    assert {a.rsplit(" on ", 1)[1] for a in report["alerts"] if a.startswith("drift")} == (
        CREATININE
    )
    prometheus = report["prometheus"]
    assert set(prometheus["expected_firing"]) == CREATININE
    assert prometheus["promtool_passed"]  # the rule fired for exactly these three
