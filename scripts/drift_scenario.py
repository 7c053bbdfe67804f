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

from disease_pipeline.pipelines.monitor.replay import tables_to_records
from disease_pipeline.serving.process import ServiceProcess, write_config

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("encounters", "patients", "symptoms", "vitals", "labs", "diagnoses")
#: the period simulated after the training data (a whole year: no season is over-weighted),
#: new visits (``seed``) of the same hospital (``world_seed``: the training run's seed)
PERIOD = "simulate.seed=20250917,simulate.start_date=2025-01-01,simulate.end_date=2025-12-31"
MONITOR_CATALOGS = ("catalog_monitor.yml", "catalog_retrain_check.yml")
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
GAUGE_LINE = re.compile(r'^(disease_monitor_feature_(?:psi|drifted))\{feature="([^"]+)"\} (\S+)$')


def kedro(args: list[str], log: Path) -> None:
    """``kedro <args>`` in the project; its output appended to ``log``."""
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "kedro", *args],
            check=False,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"kedro {' '.join(args)} failed ({done.returncode}):\n{tail}")


def copy_conf(target: Path, env: str, data_root: Path | None, rewrites: dict[str, str]) -> Path:
    """The project's ``conf`` (base and ``env``; never ``local``'s secrets) under ``target``:
    ``data_root`` moved when given, the monitor's catalog paths rewritten (``rewrites``:
    text → text), and MLflow pointed at a store under ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in {"base", env} - {"local"}:  # local holds keys and tokens: never copied
        shutil.copytree(ROOT / "conf" / name, target / name)
    (target / "local").mkdir(exist_ok=True)
    shutil.copy(ROOT / "conf" / "logging.yml", target / "logging.yml")
    for name in {"base", env} - {"local"}:
        globals_file = target / name / "globals.yml"
        if data_root is not None and globals_file.exists():
            text = globals_file.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^data_root: .*$", f"data_root: {data_root}", text)
            globals_file.write_text(text, encoding="utf-8")
        for catalog in MONITOR_CATALOGS:
            path = target / name / catalog
            if path.exists():
                text = path.read_text(encoding="utf-8")
                for old, new in rewrites.items():
                    text = text.replace(old, new)
                path.write_text(text, encoding="utf-8")
        mlflow = target / name / "mlflow.yml"
        if mlflow.exists():
            document = yaml.safe_load(mlflow.read_text(encoding="utf-8"))
            document["server"]["mlflow_tracking_uri"] = f"sqlite:///{target.parent}/mlflow.db"
            experiment = document["tracking"]["experiment"]
            kwargs = experiment.get("create_experiment_kwargs") or {}
            kwargs["artifact_location"] = str(target.parent / "mlruns")
            experiment["create_experiment_kwargs"] = kwargs
            mlflow.write_text(yaml.safe_dump(document), encoding="utf-8")
    return target


def simulate(out: Path, env: str, params: str, log: Path) -> Path:
    """Stage 1: the period's exports and warehouse under ``out/data``."""
    data_root = out / "data"
    conf = copy_conf(out / "conf", env, data_root, {})
    phenopackets = ROOT / _globals(env)["phenopackets_dir"]
    for name in {"base", env} - {"local"}:  # the registry input stays where the project has it
        path = conf / name / "globals.yml"
        if path.exists():
            text = re.sub(
                r"(?m)^phenopackets_dir: .*$",
                f"phenopackets_dir: {phenopackets}",
                path.read_text(encoding="utf-8"),
            )
            path.write_text(text, encoding="utf-8")
    # two runs: ingestion reads the export folders as snapshots, not simulate's datasets
    for pipelines in ("simulate", "ingestion,anonymization"):
        command = ["run", f"--conf-source={conf}", f"--env={env}", f"--pipelines={pipelines}"]
        kedro([*command, f"--params={params}"], log)
    return data_root / "03_primary" / "warehouse.duckdb"


def _globals(env: str) -> dict:
    values = yaml.safe_load((ROOT / "conf" / "base" / "globals.yml").read_text(encoding="utf-8"))
    env_file = ROOT / "conf" / env / "globals.yml"
    if env_file.exists():
        values |= yaml.safe_load(env_file.read_text(encoding="utf-8")) or {}
    return values


def training_seed(env: str) -> int:
    """``simulate.seed`` of the environment: the world the champion was trained on."""
    from kedro.config import OmegaConfigLoader

    from disease_pipeline import settings

    loader = OmegaConfigLoader(str(ROOT / "conf"), env=env, **settings.CONFIG_LOADER_ARGS)
    return int(loader["parameters"]["simulate"]["seed"])


def period_records(warehouse: Path, patients: int) -> list[dict]:
    """At most ``patients`` hospital encounters of the period (a seeded random sample,
    spread over the whole year) as request bodies. The warehouse also holds the registry's
    published cases (``source`` phenopacket), which are not visits of the period."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {name: con.execute(f"SELECT * FROM {name}").df() for name in TABLES}
    encounters = tables["encounters"]
    encounters = encounters[encounters["source"] != "phenopacket"]
    if len(encounters) > patients:
        encounters = encounters.sample(n=patients, random_state=0)
    encounters = encounters.sort_values("start")
    keep = set(encounters["encounter_id"].astype(str))
    tables = {
        name: frame[frame["encounter_id"].astype(str).isin(keep)]
        if "encounter_id" in frame
        else frame
        for name, frame in tables.items()
    }
    records, _ = tables_to_records(tables | {"encounters": encounters})
    return [json.loads(r.model_dump_json(exclude={"encounter_id"})) for r in records]


def start_service(folder: Path, token: str, summary: Path | None, home: Path | None):
    """``bentoml serve`` of the environment's champion, log and feedback in ``folder``."""
    config = write_config(
        folder, {"clinician": token}, monitoring_summary=None if summary is None else str(summary)
    )
    return ServiceProcess(
        config=config,
        log=folder / "serve.log",
        bentoml_home=home,
        private_home=folder / "home",
        cwd=ROOT,
    ).start()


def serve(out: Path, bodies: list[dict], home: Path | None) -> dict:
    """Stage 2: every body to ``/predict_batch`` (50 a call); SIGTERM flushes the log."""
    folder = out / "service"
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    server = start_service(folder, token, None, home)
    answered = refused = 0
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
            for first in range(0, len(bodies), 50):
                answer = client.post(
                    "/predict_batch", json={"patients": bodies[first : first + 50]}
                )
                answer.raise_for_status()
                for entry in answer.json()["predictions"]:
                    answered += "request_id" in entry
                    refused += "request_id" not in entry
    finally:
        server.stop(signal.SIGTERM)
    return {"answered": answered, "refused": refused, "warehouse": folder / "warehouse.duckdb"}


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
    folder.mkdir(parents=True, exist_ok=True)
    server = start_service(folder, secrets.token_urlsafe(24), summary_path, home)
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
    params = ",".join(
        p
        for p in (
            PERIOD,
            f"simulate.world_seed={training_seed(args.env)}",
            f"simulate.n_encounters={args.encounters or args.patients}",
            args.params.strip(","),
        )
        if p
    )
    print(f"1/4 simulating the period: {params}", flush=True)
    warehouse = simulate(out, args.env, params, log)
    bodies = period_records(warehouse, args.patients)
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
