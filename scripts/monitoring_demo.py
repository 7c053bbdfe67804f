"""Production monitoring end to end on this machine, through the real service.

1. Starts ``bentoml serve`` (the champion of ``make train``) with the project's
   ``serving.yml``, its prediction log and feedback in the project warehouse.
2. Sends ``--patients`` test-split encounters of the warehouse to ``/predict_batch``
   (optionally shifted: ``--shift age+35`` makes every patient 35 years older,
   ``--shift temperature+1.5`` raises body temperature by 1.5 °C) and, for
   ``--feedback-share`` of the answered ones, their recorded diagnosis to ``/feedback``.
3. Stops the service with SIGTERM (the prediction log is flushed) and runs
   ``kedro run --pipeline=monitor`` on the last day.
4. Prints the summary's drift, performance, health and alerts.

    python scripts/monitoring_demo.py --patients 400
    python scripts/monitoring_demo.py --patients 400 --shift age+35
    # the test environment's model and data (data/test, after the test suite trained it)
    python scripts/monitoring_demo.py --env test --bentoml-home data/test/bentoml
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

from disease_pipeline.pipelines.monitor.performance import SUMMARY_FIGURES
from disease_pipeline.pipelines.monitor.replay import tables_to_records
from disease_pipeline.serving.process import ServiceProcess, write_config

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("encounters", "patients", "symptoms", "vitals", "labs", "diagnoses")
TEMPERATURE = "8310-5"


def test_split(count: int, seed: int, env: str | None):
    """``count`` random test-split encounters (drawn again when the split is smaller) as
    service records and their labels, and the environment's data root."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    context = KedroSession.create(project_path=ROOT, env=env).load_context()
    catalog = context.catalog
    data_root = ROOT / context.config_loader["globals"]["data_root"]
    ids = catalog.load("model_input_test")["encounter_id"].astype(str).tolist()
    picks = [random.Random(seed + i).choice(ids) for i in range(count)]
    chosen = set(picks)
    tables = {}
    for name in TABLES:
        frame = catalog.load(f"prm_{name}")
        if "encounter_id" in frame:
            frame = frame[frame["encounter_id"].astype(str).isin(chosen)]
        tables[name] = frame
    records, labels = tables_to_records(tables)
    by_id = {r.encounter_id: (r, label) for r, label in zip(records, labels, strict=True)}
    drawn = [by_id[i] for i in picks if i in by_id]
    return [r for r, _ in drawn], [label for _, label in drawn], data_root


def shifted(record: dict, shift: str | None) -> dict:
    """The request body of one patient, with the ``--shift`` applied."""
    if not shift:
        return record
    what, amount = shift.split("+")
    if what == "age" and record.get("age") is not None:
        record["age"] = min(record["age"] + float(amount), 110)
    elif what == "temperature":
        for vital in record.get("vitals", []):
            if vital["loinc"] == TEMPERATURE:
                vital["value"] = vital["value"] + float(amount)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--feedback-share", type=float, default=0.5)
    parser.add_argument("--shift", default=None, help="age+YEARS or temperature+DEGREES")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", default=None, help="Kedro environment (e.g. test)")
    parser.add_argument("--skip-monitor", action="store_true", help="serve and log only")
    parser.add_argument("--bentoml-home", type=Path, default=None, help="model store to serve")
    args = parser.parse_args(argv)
    records, labels, data_root = test_split(args.patients, args.seed, args.env)
    token = secrets.token_urlsafe(24)
    warehouse = data_root / "03_primary" / "warehouse.duckdb"
    answered = refused = confirmed = 0
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder), {"clinician": token})
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
        document["serving"]["feedback_warehouse"] = str(warehouse)  # the project's
        config.write_text(yaml.safe_dump(document), encoding="utf-8")
        server = ServiceProcess(
            config=config,
            log=Path(folder) / "serve.log",
            bentoml_home=args.bentoml_home,
            private_home=Path(folder) / "home",
            cwd=ROOT,
        ).start()
        rng = random.Random(args.seed)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                for first in range(0, len(records), 50):
                    part = records[first : first + 50]
                    body = [
                        shifted(json.loads(r.model_dump_json(exclude={"encounter_id"})), args.shift)
                        for r in part
                    ]
                    answer = client.post("/predict_batch", json={"patients": body})
                    if answer.status_code != 200:
                        log = (Path(folder) / "serve.log").read_text(errors="replace")
                        raise RuntimeError(f"/predict_batch {answer.status_code}: {log[-3000:]}")
                    for entry, label in zip(
                        answer.json()["predictions"], labels[first : first + 50], strict=True
                    ):
                        if "request_id" not in entry:
                            refused += 1
                            continue
                        answered += 1
                        if label and rng.random() < args.feedback_share:
                            sent = client.post(
                                "/feedback",
                                json={"request_id": entry["request_id"], "confirmed_code": label},
                            )
                            confirmed += sent.status_code == 200
        finally:
            server.stop(signal.SIGTERM)
    print(f"answered {answered}, refused {refused}, feedback stored {confirmed}")
    if args.skip_monitor:
        return 0
    command = [sys.executable, "-m", "kedro", "run", "--pipeline=monitor"]
    command += ["--params=monitor.window_days=1"] + ([f"--env={args.env}"] if args.env else [])
    subprocess.run(command, cwd=ROOT, check=True)
    summary_path = data_root / "08_reporting" / "monitoring" / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    drift = summary["drift"]
    print(
        json.dumps(
            {
                "window": [summary["window_start"], summary["window_end"]],
                "n_predictions": summary["n_predictions"],
                "max_psi": drift["max_psi"],
                "drifted_features": drift["drifted_features"][:20],
                "performance": {
                    k: summary["performance"][k] for k in (*SUMMARY_FIGURES, "max_subgroup_gap")
                },
                "health": {
                    k: summary["health"][k] for k in ("n_patients", "refusal_rate", "latency_ms")
                },
                "alerts": summary["alerts"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
