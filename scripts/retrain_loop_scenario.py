"""The retraining loop on the simulator: a drifted period served, 5 % confirmed, monitored,
checked, retrained, compared, promoted or kept.

From an environment whose champion is trained and registered (its data root, MLflow
registry and BentoML store), every step runs the project's own code in its real form:

1. **prepare**: the champion's data root (``01_raw`` … ``08_reporting``) and registry are
   copied under ``<out>`` (``data/``, ``mlflow.db``; new runs' artifacts in ``mlruns/``),
   and the configuration too (``conf/``: ``data_root`` moved, the prediction log and
   feedback read from the scenario's service, promotions audited in its trail), so the
   loop never touches the environment it starts from;
2. **simulate** a later period with ``--params`` (e.g. a new assay) into ``<out>/period``
   (``kedro run --pipeline=simulate``, then ingestion and anonymisation);
3. **serve** it: its encounters (``--patients`` at most) go to ``/predict_batch`` of a real
   ``bentoml serve`` of the champion; for ``--feedback-share`` (5 %) of the answered ones
   the recorded primary diagnosis is confirmed through ``POST /feedback`` — a third by an
   admin (trusted alone), a third by two clinicians who agree (trusted), a third by one
   clinician (not trusted: no training label, but recent labelled traffic for the
   comparison); SIGTERM flushes the prediction log;
4. ``kedro run --pipeline=monitor`` on the served log, ``retrain_check`` (the decision and
   its triggers), ``freeze_evaluation`` (the champion's test split) and ``retrain``
   (``--retrain-params``: training on the warehouse plus the trusted feedback encounters,
   ``@challenger`` registered, compared with ``@champion`` on the frozen set and on the
   recent labelled traffic, promoted or kept out) — started only when the decision is
   ``retrain``, as a scheduler would.

The summary (each step's wall seconds, the decision and its triggers, the comparison's
figures and reason, the registry's aliases before and after) is printed and written to
``<out>/<--summary>``. ``--retrain-only`` runs step 4's ``retrain`` again on an existing
scenario folder (e.g. after its champion was replaced by hand). Examples::

    # the test environment's champion (after the test suite trained it), a new creatinine
    # assay reading twice as high
    python scripts/retrain_loop_scenario.py --env test --out data/test/retrain_loop \\
      --bentoml-home data/test/bentoml --params simulate.sites.assay_change.site=null,\\
    simulate.sites.assay_change.date=2025-01-01,simulate.sites.assay_change.loinc=2160-0,\\
    simulate.sites.assay_change.factor=2.0,simulate.sites.assay_change.unit=umol/L

The figures of a run at scale and its configuration: ``docs/retraining.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from _scenario import (
    CONF,
    MONITOR_CATALOGS,
    copy_conf,
    env_globals,
    kedro,
    period_params,
    period_sample,
    predict_all,
    resolve,
    simulate,
    start_service,
)

from disease_pipeline.core.layers import DATA_LAYERS

MODEL = "disease_pipeline"
#: who confirms a chosen prediction, in turn: the trust rule's two ways and one that fails it
CONFIRMERS = (("admin",), ("clinician_a", "clinician_b"), ("clinician_a",))
ROLES = {"admin": "admin", "clinician_a": "clinician", "clinician_b": "clinician"}
WAREHOUSE_PATH = "${globals:data_root}/03_primary/warehouse.duckdb"


def tracking_db(env: str, source: Path) -> Path:
    """The SQLite file of the environment's MLflow tracking URI (``mlflow.yml``)."""
    for name in (env, "base"):
        path = source / name / "mlflow.yml"
        if path.exists():
            uri = yaml.safe_load(path.read_text(encoding="utf-8"))["server"]["mlflow_tracking_uri"]
            if not uri.startswith("sqlite:///"):
                raise SystemExit(f"{path}: the scenario copies a SQLite registry, not {uri}")
            return resolve(uri.removeprefix("sqlite:///"))
    raise SystemExit(f"no mlflow.yml in {source}/{{base,{env}}}")


def prepare(out: Path, env: str, source: Path, registry: Path) -> Path:
    """Step 1: the champion's data root and registry copied under ``out``; the loop's
    configuration ``out/conf``."""
    data_root = resolve(env_globals(env, source)["data_root"])
    for layer in DATA_LAYERS:
        if (data_root / layer).exists():
            shutil.copytree(data_root / layer, out / "data" / layer)
    with sqlite3.connect(registry) as origin, sqlite3.connect(out / "mlflow.db") as copy:
        origin.backup(copy)
        # new runs (and their models) keep their artifacts in the scenario
        for (experiment,) in copy.execute("SELECT experiment_id FROM experiments").fetchall():
            location = (out / "mlruns" / str(experiment)).as_uri()
            copy.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                (location, experiment),
            )
    service = out / "service"
    return copy_conf(
        out / "conf",
        env,
        out / "data",
        {
            WAREHOUSE_PATH: str(service / "warehouse.duckdb"),
            "serving_config: conf/base/serving.yml": f"serving_config: {service / 'serving.yml'}",
        },
        catalogs=(*MONITOR_CATALOGS, "catalog_retrain.yml"),
        source=source,
    )


def serve_and_confirm(
    out: Path, bodies: list[dict], labels: list[str], share: float, home: Path | None
) -> dict:
    """Step 3: the period through ``/predict_batch``, then ``/feedback`` confirmations of
    the recorded diagnosis for ``share`` of the answered encounters (seeded choice),
    confirmed in turn by the ways of ``CONFIRMERS``."""
    tokens = {user: secrets.token_urlsafe(24) for user in ROLES}
    users = {user: (ROLES[user], token) for user, token in tokens.items()}
    server = start_service(out / "service", users, home=home)
    try:
        entries = predict_all(server, tokens["clinician_a"], bodies)
        answered = [
            (entry["request_id"], label)
            for entry, label in zip(entries, labels, strict=True)
            if "request_id" in entry and label
        ]
        count = round(share * len(entries))
        chosen = random.Random(17).sample(answered, min(count, len(answered)))
        by_rule = {"admin": 0, "two_clinicians": 0, "one_clinician": 0}
        for index, (request_id, code) in enumerate(chosen):
            confirmers = CONFIRMERS[index % len(CONFIRMERS)]
            for user in confirmers:
                answer = httpx.post(
                    f"{server.url}/feedback",
                    json={"request_id": request_id, "confirmed_code": code},
                    headers={"Authorization": f"Bearer {tokens[user]}"},
                    timeout=60,
                )
                answer.raise_for_status()
            rule = ("admin", "two_clinicians", "one_clinician")[index % len(CONFIRMERS)]
            by_rule[rule] += 1
    finally:
        server.stop(signal.SIGTERM)
    return {
        "served": len(entries),
        "answered": sum("request_id" in entry for entry in entries),
        "confirmed": len(chosen),
        "confirmed_by": by_rule,
    }


def run(conf: Path, env: str, pipeline: str, params: str, log: Path) -> None:
    """``kedro run --pipeline=<pipeline>`` on the scenario's configuration."""
    command = ["run", f"--conf-source={conf}", f"--env={env}", f"--pipeline={pipeline}"]
    kedro(command + ([f"--params={params}"] if params else []), log)


def registry_state(out: Path) -> dict:
    """The scenario registry's aliases (alias → version) and versions with their
    promotion tags."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    model = client.get_registered_model(MODEL)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return {
        "aliases": {alias: str(version) for alias, version in sorted(model.aliases.items())},
        "versions": sorted(int(v.version) for v in versions),
    }


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def loop_report(out: Path) -> dict:
    """The monitor's, the check's and the comparison's figures the summary keeps."""
    reporting = out / "data" / "08_reporting"
    report: dict = {}
    if (reporting / "monitoring" / "summary.json").exists():
        summary = read_json(reporting / "monitoring" / "summary.json")
        performance = summary.get("performance") or {}
        report["monitor"] = {
            "n_predictions": summary["n_predictions"],
            "max_psi": summary["drift"]["max_psi"],
            "drifted_features": summary["drift"]["drifted_features"],
            "n_labelled": performance.get("n_labelled"),
            "live_top3": performance.get("top3"),
            "alerts": summary["alerts"],
        }
    if (reporting / "retrain" / "decision.json").exists():
        decision = read_json(reporting / "retrain" / "decision.json")
        report["decision"] = {
            key: decision.get(key) for key in ("decision", "fired", "reason", "feedback")
        } | {
            "triggers": {
                name: {k: trigger.get(k) for k in ("value", "threshold", "fired")}
                for name, trigger in (decision.get("triggers") or {}).items()
            }
        }
    if (reporting / "retrain" / "comparison.json").exists():
        comparison = read_json(reporting / "retrain" / "comparison.json")
        recent = comparison.get("recent_traffic") or {}
        report["comparison"] = {
            "promote": comparison["verdict"]["promote"],
            "reason": comparison["verdict"]["reason"],
            "gate": comparison.get("gate"),
            "evaluation_set": comparison.get("evaluation_set"),
            "figures": comparison.get("figures"),
            "mcnemar_top1": comparison.get("mcnemar_top1"),
            "recent_traffic": {
                k: recent.get(k) for k in ("n", "gating", "figures", "failed") if k in recent
            },
        }
    return report


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - the loop, step by step
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the scenario's folder")
    parser.add_argument("--env", default="local", help="Kedro environment of the champion")
    parser.add_argument(
        "--conf-source", type=Path, default=CONF, help="configuration of the champion's run"
    )
    parser.add_argument("--bentoml-home", type=Path, default=None, help="model store to serve")
    parser.add_argument("--params", default="", help="the period's shift, as kedro --params")
    parser.add_argument("--patients", type=int, default=600, help="encounters served")
    parser.add_argument("--encounters", type=int, default=None, help="encounters simulated")
    parser.add_argument("--feedback-share", type=float, default=0.05)
    parser.add_argument("--retrain-params", default="", help="kedro --params of the retrain")
    parser.add_argument(
        "--retrain-only", action="store_true", help="rerun only the retrain in --out"
    )
    parser.add_argument("--summary", default="summary.json", help="file name under --out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    source = args.conf_source.resolve()
    log = out / "kedro.log"
    steps: dict[str, float] = {}
    started = time.perf_counter()

    def timed(name: str, action, *arguments):
        print(f"{name} ...", flush=True)
        begin = time.perf_counter()
        result = action(*arguments)
        steps[name] = round(time.perf_counter() - begin, 1)
        return result

    conf = out / "conf"
    report: dict = {"env": args.env, "retrain_params": args.retrain_params}
    if args.retrain_only:
        if not (conf.exists() and log.exists()):
            parser.error(f"--retrain-only: {out} holds no scenario")
    else:
        if out.exists() and any(out.iterdir()):  # an earlier run: start afresh
            if not log.exists():
                parser.error(f"--out {out} is not empty and is not a scenario folder")
            shutil.rmtree(out)
        out.mkdir(parents=True)
        log.write_text("", encoding="utf-8")
        registry = tracking_db(args.env, source)
        conf = timed("prepare", prepare, out, args.env, source, registry)
        period = period_params(args.env, args.encounters or args.patients, args.params)
        report["period_params"] = period
        warehouse = timed("simulate", simulate, out / "period", args.env, period, log, source)
        bodies, labels = period_sample(warehouse, args.patients)
        report["served"] = timed(
            "serve_and_feedback",
            serve_and_confirm,
            out,
            bodies,
            labels,
            args.feedback_share,
            args.bentoml_home,
        )
        window_end = datetime.now(UTC) + timedelta(minutes=1)
        window = f"monitor.window_end={window_end.isoformat()},monitor.window_days=1"
        timed("monitor", run, conf, args.env, "monitor", window, log)
        timed("retrain_check", run, conf, args.env, "retrain_check", "", log)
        timed("freeze_evaluation", run, conf, args.env, "freeze_evaluation", "", log)
        decision = read_json(out / "data" / "08_reporting" / "retrain" / "decision.json")
    report["registry_before"] = registry_state(out)
    if args.retrain_only or decision["decision"] == "retrain":  # what a scheduler reads
        timed("retrain", run, conf, args.env, "retrain", args.retrain_params, log)
    report["registry_after"] = registry_state(out)
    report |= loop_report(out)
    report["steps_seconds"] = steps
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / args.summary).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    sys.exit(main())
