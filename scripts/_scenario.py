"""Shared pieces of the scenario scripts (``drift_scenario.py``, ``retrain_loop_scenario.py``):
a later period simulated with the project's own pipelines into a data root of its own, its
encounters as clinician requests, and a real ``bentoml serve`` of a champion.

The scripts run as ``python scripts/<name>.py``, so ``scripts/`` is on ``sys.path`` and
they import this module as ``from _scenario import ...``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from disease_pipeline.pipelines.monitor.replay import tables_to_records
from disease_pipeline.serving.process import ServiceProcess, write_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TABLES = ("encounters", "patients", "symptoms", "vitals", "labs", "diagnoses")
#: the period simulated after the training data (a whole year: no season is over-weighted),
#: new visits (``seed``) of the same hospital (``world_seed``: the training run's seed)
PERIOD = "simulate.seed=20250917,simulate.start_date=2025-01-01,simulate.end_date=2025-12-31"
MONITOR_CATALOGS = ("catalog_monitor.yml", "catalog_retrain_check.yml")


def kedro(args: list[str], log: Path) -> None:
    """``kedro <args>`` in the project (no telemetry); its output appended to ``log``."""
    env = {"KEDRO_DISABLE_TELEMETRY": "true"} | dict(os.environ)
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "kedro", *args],
            check=False,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"kedro {' '.join(args)} failed ({done.returncode}):\n{tail}")


def copy_conf(  # noqa: PLR0913 - each argument is one part of the copy
    target: Path,
    env: str,
    data_root: Path | None,
    rewrites: dict[str, str],
    *,
    catalogs: tuple[str, ...] = MONITOR_CATALOGS,
    source: Path = CONF,
) -> Path:
    """The configuration ``source`` (base and ``env``; never ``local``'s secrets) under
    ``target``: ``data_root`` moved when given, the ``catalogs``' text rewritten
    (``rewrites``: text → text), ``phenopackets_dir`` made absolute (the registry input
    stays where the source has it), and MLflow pointed at a store under ``target``'s
    parent (``mlflow.db``, artifacts in ``mlruns``)."""
    phenopackets = resolve(env_globals(env, source)["phenopackets_dir"])
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in {"base", env} - {"local"}:  # local holds keys and tokens: never copied
        shutil.copytree(source / name, target / name)
    (target / "local").mkdir(exist_ok=True)
    shutil.copy(source / "logging.yml", target / "logging.yml")
    for name in {"base", env} - {"local"}:
        globals_file = target / name / "globals.yml"
        if globals_file.exists():
            text = globals_file.read_text(encoding="utf-8")
            if data_root is not None:
                text = re.sub(r"(?m)^data_root: .*$", f"data_root: {data_root}", text)
            text = re.sub(r"(?m)^phenopackets_dir: .*$", f"phenopackets_dir: {phenopackets}", text)
            globals_file.write_text(text, encoding="utf-8")
        for catalog in catalogs:
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


def resolve(path: str | Path) -> Path:
    """A configured path as the project's runs read it (relative: to the project root)."""
    path = Path(str(path).replace("${project_root:}", str(ROOT)))
    return path if path.is_absolute() else ROOT / path


def env_globals(env: str, source: Path = CONF) -> dict:
    """``globals.yml`` of base with ``env``'s on top."""
    values = yaml.safe_load((source / "base" / "globals.yml").read_text(encoding="utf-8"))
    env_file = source / env / "globals.yml"
    if env_file.exists():
        values |= yaml.safe_load(env_file.read_text(encoding="utf-8")) or {}
    return values


def training_seed(env: str) -> int:
    """``simulate.seed`` of the environment: the world the champion was trained on."""
    from kedro.config import OmegaConfigLoader

    from disease_pipeline import settings

    loader = OmegaConfigLoader(str(CONF), env=env, **settings.CONFIG_LOADER_ARGS)
    return int(loader["parameters"]["simulate"]["seed"])


def period_params(env: str, encounters: int, extra: str) -> str:
    """The ``--params`` of a later period of ``env``'s hospital: :data:`PERIOD`, the
    training run's world, ``encounters`` visits and the ``extra`` shift (may be empty)."""
    parts = (
        PERIOD,
        f"simulate.world_seed={training_seed(env)}",
        f"simulate.n_encounters={encounters}",
        extra.strip(","),
    )
    return ",".join(p for p in parts if p)


def simulate(out: Path, env: str, params: str, log: Path, source: Path = CONF) -> Path:
    """The period's exports and warehouse under ``out/data`` (configuration ``out/conf``):
    ``kedro run --pipeline=simulate --params <params>``, then ingestion and anonymisation."""
    conf = copy_conf(out / "conf", env, out / "data", {}, source=source)
    # two runs: ingestion reads the export folders as snapshots, not simulate's datasets
    for pipelines in ("simulate", "ingestion,anonymization"):
        command = ["run", f"--conf-source={conf}", f"--env={env}", f"--pipelines={pipelines}"]
        kedro([*command, f"--params={params}"], log)
    return out / "data" / "03_primary" / "warehouse.duckdb"


def period_sample(warehouse: Path, patients: int) -> tuple[list[dict], list[str]]:
    """At most ``patients`` hospital encounters of the period (a seeded random sample,
    spread over the whole year) as request bodies, and each one's recorded primary
    diagnosis ("" when none). The warehouse also holds the registry's published cases
    (``source`` phenopacket), which are not visits of the period."""
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
    records, labels = tables_to_records(tables | {"encounters": encounters})
    return [json.loads(r.model_dump_json(exclude={"encounter_id"})) for r in records], labels


def start_service(
    folder: Path,
    users: dict[str, tuple[str, str]],
    summary: Path | None = None,
    home: Path | None = None,
) -> ServiceProcess:
    """``bentoml serve`` of the champion of the BentoML store ``home`` (None: the
    environment's), its audit trail, prediction log and feedback in ``folder``; ``users``:
    user → (role, plaintext token), only the tokens' hashes are written."""
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, {}, monitoring_summary=None if summary is None else str(summary))
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["serving"]["tokens"] = [
        {"user": user, "role": role, "sha256": sha256(token)}
        for user, (role, token) in users.items()
    ]
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return ServiceProcess(
        config=config,
        log=folder / "serve.log",
        bentoml_home=home,
        private_home=folder / "home",
        cwd=ROOT,
    ).start()


def sha256(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def predict_all(server: ServiceProcess, token: str, bodies: list[dict]) -> list[dict]:
    """Every body to ``/predict_batch`` (50 a call); the service's entries in order
    (``request_id`` for an answered patient, none for a refused one)."""
    entries: list[dict] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        for first in range(0, len(bodies), 50):
            answer = client.post("/predict_batch", json={"patients": bodies[first : first + 50]})
            answer.raise_for_status()
            entries += answer.json()["predictions"]
    return entries
