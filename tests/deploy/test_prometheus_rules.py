"""The alert rules with Debian's promtool (``make prometheus``), and the Grafana
dashboard and rules reading only metrics the service or the monitor export."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.metric_names import exported_names, used_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "disease_pipeline.json"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: run `make prometheus` (Debian's prometheus package)"
    return subprocess.run(
        [tool, *args], check=False, capture_output=True, text=True, cwd=PROMETHEUS
    )


def test_config_and_rules_are_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_alert_rules_fire_and_stay_silent_as_specified():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(tmp_path):
    """The rule tests can fail: the same test with the drift alert expected silent."""
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            if check["alertname"] == "DiseaseFeatureDrift":
                check["exp_alerts"] = []
    tests["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    broken = tmp_path / "broken_test.yml"
    broken.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(broken))
    assert result.returncode != 0 and "DiseaseFeatureDrift" in result.stdout + result.stderr


def test_the_issue_thresholds_are_the_rules():
    rules = {
        r["alert"]: r
        for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert "> 0.5" in rules["DiseasePredictLatencyHigh"]["expr"]
    assert rules["DiseasePredictLatencyHigh"]["for"] == "5m"
    assert "> 0.01" in rules["DiseaseServiceErrorRate"]["expr"]
    assert rules["DiseaseFeatureDrift"]["expr"].strip() == (
        "disease_monitor_feature_psi > 0.2 and on(feature) disease_monitor_feature_drifted == 1"
    )
    assert ">= 0.05" in rules["DiseaseLiveAurocDrop"]["expr"]
    assert ">= 0.05" in rules["DiseaseLiveTop3Drop"]["expr"]
    assert "> 0.05" in rules["DiseaseSubgroupGap"]["expr"]
    assert "[1h]" in rules["DiseaseNoPredictions"]["expr"]


def test_rules_and_dashboard_read_exported_metrics(tmp_path):
    exported = exported_names(tmp_path)
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        names = used_names(rule["expr"])
        assert names and names <= exported, (rule["alert"], names - exported)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = used_names(target["expr"])
            assert names and names <= exported, (panel["title"], names - exported)
    assert {"disease_monitor_max_psi", "disease_request_latency_seconds_bucket"} <= {
        n for p in dashboard["panels"] for t in p["targets"] for n in used_names(t["expr"])
    }


@pytest.mark.parametrize("text", ['rate(disease_nonexistent_total{kind="x"}[5m])'])
def test_an_unknown_metric_is_caught(tmp_path, text):
    assert not used_names(text) <= exported_names(tmp_path)
