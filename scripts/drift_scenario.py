"""A post-deployment period with a known shift: simulated, served, monitored, alerted.

1. **Simulate** the period with the project's own pipelines and ``--params``:
   ``kedro run --conf-source <out>/conf --env <env> --pipeline=simulate --params <period and
   shift>``, then ``--pipelines=ingestion,anonymization``. The configuration is the
   project's, copied with its ``data_root`` moved to ``<out>/data``, so the period's
   exports and warehouse never touch the training data.
2. **Serve** it: the period's encounters (``--patients`` at most) go as clinician records
   to ``/predict_batch`` of a real ``bentoml serve`` of the environment's champion; its
   prediction log lands in ``<out>/service/warehouse.duckdb``; SIGTERM flushes it.
3. **Monitor** it: ``kedro run --conf-source <out>/monitor_conf --env <env> --pipeline=monitor``
   on that log against the champion's training reference (the project's data), with the
   monitoring outputs in ``<out>/monitoring/``.
4. **Alert**: the service restarted with that summary exports its ``disease_monitor_*``
   gauges; their values, scraped from ``/metrics``, are the input of ``promtool test
   rules`` over ``deploy/prometheus/alerts.yml``, which must fire ``DiseaseFeatureDrift``
   for exactly the features the monitor flagged (``<out>/alerts.json``).

Without a shift the same period is the control: no feature may be flagged. Examples (the
period 2025, after the training data's 2021-2024)::

    python scripts/drift_scenario.py --out data/drift_scenario/control
    # a new troponin assay reading 3x higher at every site, and the university hospital
    # reporting every lab in its alternative unit (absorbed by the unit conversion)
    python scripts/drift_scenario.py --out data/drift_scenario/assay --params \\
      simulate.sites.assay_change.site=university,simulate.sites.assay_change.date=2025-01-01,\\
    simulate.sites.assay_change.factor=3.0,simulate.sites.specs.university.lab_alt_unit_share=1.0
    # the test environment's model and data (after the test suite trained it)
    python scripts/drift_scenario.py --env test --out data/test/drift_scenario/control

The summary is printed and kept in ``<out>/scenario.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from _scenario import (
    ROOT,
    copy_conf,
    kedro,
    period_params,
    period_sample,
    predict_all,
    simulate,
    start_service,
)

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
GAUGE_LINE = re.compile(r'^(disease_monitor_feature_(?:psi|drifted))\{feature="([^"]+)"\} (\S+)$')


def serve(out: Path, bodies: list[dict], home: Path | None) -> dict:
    """Stage 2: every body to ``/predict_batch`` (50 a call); SIGTERM flushes the log."""
    folder = out / "service"
    token = secrets.token_urlsafe(24)
    server = start_service(folder, {"clinician_user": ("clinician", token)}, None, home)
    try:
        entries = predict_all(server, token, bodies)
    finally:
        server.stop(signal.SIGTERM)
    answered = sum("request_id" in entry for entry in entries)
    return {
        "answered": answered,
        "refused": len(entries) - answered,
        "warehouse": folder / "warehouse.duckdb",
    }


def monitor(out: Path, env: str, warehouse: Path, window_end: datetime, log: Path) -> dict:
    """Stage 3: the monitor pipeline on the served log; returns its summary."""
    reporting = out / "monitoring"
    conf = copy_conf(
        out / "monitor_conf",
        env,
        None,
        {
            "${globals:data_root}/03_primary/warehouse.duckdb": str(warehouse),
            "${globals:data_root}/08_reporting/monitoring": str(reporting),
        },
    )
    kedro(
        [
            "run",
            f"--conf-source={conf}",
            f"--env={env}",
            "--pipeline=monitor",
            f"--params=monitor.window_end={window_end.isoformat()},monitor.window_days=1",
        ],
        log,
    )
    return json.loads((reporting / "summary.json").read_text(encoding="utf-8"))


def exported_gauges(out: Path, summary_path: Path, home: Path | None) -> str:
    """The ``disease_monitor_*`` lines of ``/metrics`` of a service reading the summary."""
    folder = out / "gauges"
    token = secrets.token_urlsafe(24)
    server = start_service(folder, {"clinician_user": ("clinician", token)}, summary_path, home)
    try:
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    finally:
        server.stop()
    return "\n".join(line for line in metrics.splitlines() if line.startswith("disease_monitor_"))


def fired_alerts(out: Path, gauges: str, expected: list[str]) -> dict:
    """Stage 4: ``promtool test rules`` over the alert rules with the scraped gauge values
    as input series, expecting ``DiseaseFeatureDrift`` for exactly ``expected``."""
    series, psi = [], {}
    for line in gauges.splitlines():
        match = GAUGE_LINE.match(line)
        if match:
            name, feature, value = match.groups()
            series.append({"series": f'{name}{{feature="{feature}"}}', "values": f"{value}x3"})
            if name.endswith("_psi"):
                psi[feature] = value
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "DiseaseFeatureDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "feature": feature},
                                "exp_annotations": {
                                    "summary": f"Feature {feature} drifted: PSI {psi[feature]}"
                                    " > 0.2 against the training reference"
                                },
                            }
                            for feature in expected
                        ],
                    }
                ],
            }
        ],
    }
    path = out / "alerts_test.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("promtool not found: run `make prometheus` (Debian's prometheus)")
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    return {
        "expected_firing": expected,
        "promtool_passed": done.returncode == 0,
        "promtool_output": (done.stdout + done.stderr)[-3000:],
        "gauge_series": len(series),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the scenario's folder")
    parser.add_argument("--env", default="local", help="Kedro environment of the champion")
    parser.add_argument("--params", default="", help="the shift, as kedro run --params")
    parser.add_argument("--patients", type=int, default=2000, help="encounters served")
    parser.add_argument("--encounters", type=int, default=None, help="encounters simulated")
    parser.add_argument("--bentoml-home", type=Path, default=None, help="model store to serve")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):  # an earlier run of this scenario: start afresh
        if not (out / "kedro.log").exists():
            parser.error(f"--out {out} is not empty and is not a scenario folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "kedro.log"
    log.write_text("", encoding="utf-8")
    params = period_params(args.env, args.encounters or args.patients, args.params)
    print(f"1/4 simulating the period: {params}", flush=True)
    warehouse = simulate(out, args.env, params, log)
    bodies, _ = period_sample(warehouse, args.patients)
    print(f"2/4 serving {len(bodies)} encounters", flush=True)
    served = serve(out, bodies, args.bentoml_home)
    window_end = datetime.now(UTC) + timedelta(minutes=1)
    print("3/4 monitoring the served log", flush=True)
    summary = monitor(out, args.env, served["warehouse"], window_end, log)
    drift = summary["drift"]
    top = list(drift["top_psi"])
    expected = [f for f in drift["drifted_features"] if f in top]
    print("4/4 alert rules on the exported gauges", flush=True)
    gauges = exported_gauges(out, out / "monitoring" / "summary.json", args.bentoml_home)
    alerts = fired_alerts(out, gauges, expected)
    (out / "alerts.json").write_text(json.dumps(alerts, indent=2), encoding="utf-8")
    report = {
        "params": params,
        "env": args.env,
        "served": {k: v for k, v in served.items() if k != "warehouse"},
        "n_predictions": summary["n_predictions"],
        "drifted_features": drift["drifted_features"],
        "by_modality": {k: v["drifted_features"] for k, v in drift["by_modality"].items()},
        "top_psi": dict(list(drift["top_psi"].items())[:10]),
        "alerts": summary["alerts"],
        "prometheus": {k: v for k, v in alerts.items() if k != "promtool_output"},
    }
    (out / "scenario.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    if not alerts["promtool_passed"]:
        print(alerts["promtool_output"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    raise SystemExit(main())
