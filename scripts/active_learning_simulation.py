"""Does labelling the review queue's cases improve the retrained model more than labelling
random ones? An active-learning simulation on the simulator (issue 17).

Setting (every step is the project's own code):

1. **A hospital's history and its next period.** ``kedro run --pipeline=simulate`` and
   ``--pipelines=ingestion,anonymization,features`` with ``--params`` into ``<out>/data``
   (the project's configuration copied, its ``data_root`` moved). The features pipeline's
   patient-grouped, time-ordered split gives the early period (``train``), a middle one
   (``calibration``) and the latest one; the feature builder is fitted on the early
   period only. The latest period is what the deployed model meets next: new patients,
   the simulator's changes over time (a winter surge at one site, a new troponin assay).
   Its patients are split once (seeded) into the **pool** (predictions waiting for
   review) and the **test set**, which is never selected from.
2. **Few labels to start with** (the usual active-learning protocol, and a hospital whose
   confirmed diagnoses are few): each repetition draws ``--initial`` labelled encounters
   of the early period and ``--calibration`` of the middle one.
3. **The model**, trained as the train pipeline does on those rows: the common model's
   selection (``split_common_rows``, ``compare_imbalance_strategies``,
   ``tune_common_model`` with the configured parameters) on the initial set, then
   ``fit_common_model`` and ``fit_gate_model`` (with the registry query rows), the
   calibrators (``calibrate_model``), the knowledge blend (``fit_blend``) and
   ``assemble_predictor``. Not part of the question, so not trained: the rare model (the
   differential keeps the unspecified rare slot) and the severity model (a constant).
4. **Selection.** The initial model answers the pool; its answers become prediction-log
   rows, and the review queue (``build_review_queue``: ``score_predictions`` +
   ``diverse_top``, the configured weights, size and per-code cap; no time window — the
   pool is the window) is drawn queue after queue until the budget is spent. The control
   draws the same number uniformly from the pool. The selected encounters, with their
   recorded diagnoses, join the initial set and the model is retrained (same selection
   outcome, the rest as in 3). Budgets are nested prefixes of one order per strategy.
5. **Figures.** Top-1 / top-3 of each retrained model's differential on the test set's
   common-disease encounters, per budget and strategy: mean over repetitions with a 95 %
   interval resampling repetitions and test patients; and at ``--compare-budget`` the
   paired difference queue − random (the same resampled repetitions and patients for
   both). Nothing is tuned on the test set.

Writes ``--report`` (JSON) and a markdown table beside it (same name, ``.md``); per-run
hits, selections and the pool's log rows stay in ``<out>/runs`` for checking. Example::

    .venv/bin/python scripts/active_learning_simulation.py            # the documented run
    .venv/bin/python scripts/active_learning_simulation.py --repetitions 2 --budgets 0,100
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scenario import copy_conf, kedro  # noqa: E402

from disease_pipeline.pipelines.active_learning import simulation as al  # noqa: E402
from disease_pipeline.pipelines.active_learning.retraining import (  # noqa: E402
    Trainer,
    answers,
    hits,
)
from disease_pipeline.predictor.bundle import RARE_SLOT_CODE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "calibration", "test")
TOP_K = (1, 3)


def prepare(args: argparse.Namespace) -> tuple[Path, str]:
    """Simulate, ingest, anonymise and build features into ``<out>/data`` (skipped with
    ``--reuse`` when the same parameters were run there). Returns the conf and params."""
    out = args.out
    train, calibration, later = args.fractions
    params = [
        f"simulate.n_encounters={args.encounters}",
        f"features.split.fractions.train={train}",
        f"features.split.fractions.calibration={calibration}",
        f"features.split.fractions.test={later}",
        "features.parity_sample=0",  # the featuretools parity check: not needed here
    ]
    if args.simulate_seed is not None:
        params.append(f"simulate.seed={args.simulate_seed}")
    if args.rare_diseases is not None:
        params.append(f"simulate.rare.n_diseases={args.rare_diseases}")
    params_text = ",".join(params)
    marker = out / "prepared.json"
    conf = out / "conf"
    done = (out / "data" / "05_model_input" / "test.parquet").exists()
    same = marker.exists() and json.loads(marker.read_text(encoding="utf-8")) == {
        "params": params_text
    }
    if args.reuse and done and same:
        print(f"1/3 reusing the simulated data in {out}/data", flush=True)
        return conf, params_text
    out.mkdir(parents=True, exist_ok=True)
    copy_conf(conf, args.env, out / "data", {})
    phenopackets = args.phenopackets.resolve()
    for path in conf.glob("*/globals.yml"):
        text = re.sub(
            r"(?m)^phenopackets_dir: .*$",
            f"phenopackets_dir: {phenopackets}",
            path.read_text(encoding="utf-8"),
        )
        path.write_text(text, encoding="utf-8")
    log = out / "kedro.log"
    log.write_text("", encoding="utf-8")
    print(f"1/3 simulating {args.encounters} encounters into {out}/data ({log})", flush=True)
    started = time.perf_counter()
    for pipelines in ("simulate", "ingestion,anonymization,features"):
        command = ["run", f"--conf-source={conf}", f"--env={args.env}", f"--pipelines={pipelines}"]
        kedro([*command, f"--params={params_text}"], log)
        print(f"    {pipelines}: {time.perf_counter() - started:.0f} s", flush=True)
    marker.write_text(json.dumps({"params": params_text}), encoding="utf-8")
    return conf, params_text


def load_inputs(conf: Path, env: str) -> dict[str, Any]:
    """The splits, the feature builder, the registry cases and the parameters, read
    through the project's catalog on the copied configuration."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, env=env, conf_source=str(conf)) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        names = [f"model_input_{s}" for s in SPLITS] + ["feat_builder", "feat_registry_cases"]
        loaded = {name: catalog.load(name) for name in names}
    return loaded | {
        "params": {k: params[k] for k in ("common_model", "calibration", "active_learning")}
    }


def split_later_period(
    later: pd.DataFrame, test_share: float, seed: int
) -> tuple[pd.DataFrame, ...]:
    """(pool, test): the latest period's patients split once, seeded; no patient in both."""
    patients = np.sort(later["patient_id"].astype(str).unique())
    rng = np.random.default_rng(seed)
    test_patients = set(rng.choice(patients, round(test_share * len(patients)), replace=False))
    in_test = later["patient_id"].astype(str).isin(test_patients)
    return later[~in_test].reset_index(drop=True), later[in_test].reset_index(drop=True)


def sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` encounters drawn uniformly (all when fewer), in time order."""
    rows = frame.sample(n=min(n, len(frame)), random_state=seed)
    return rows.sort_values(["start", "encounter_id"]).reset_index(drop=True)


def run_repetition(
    rep: int,
    inputs: dict[str, Any],
    pool: pd.DataFrame,
    test: pd.DataFrame,
    args: argparse.Namespace,
    *,
    progress: Any,
) -> dict[str, Any]:
    """One repetition: initial set, initial model, both selection orders, every budget
    retrained; per-run figures, test hits and what was selected."""
    seed = args.seed + rep
    initial = sample_rows(inputs["model_input_train"], args.initial, seed)
    calibration_rows = sample_rows(inputs["model_input_calibration"], args.calibration, seed)
    trainer = Trainer(
        inputs["feat_builder"], inputs["feat_registry_cases"], calibration_rows, inputs["params"]
    )
    selection = trainer.select(initial)
    labels = test["label_disease"].astype(str).to_numpy()
    budgets = sorted(b for b in args.budgets if b > 0)

    def evaluate(strategy: str, budget: int, labelled: pd.DataFrame, started: float) -> dict:
        predictor = trainer.train(labelled)
        found = hits(answers(predictor, test, args.top_k), labels, TOP_K)
        progress.update(1)
        progress.set_postfix(rep=rep, strategy=strategy, budget=budget)
        run = {"repetition": rep, "strategy": strategy, "budget": budget}
        run |= {f"top{k}": float(v.mean()) for k, v in found.items()}
        run["seconds"] = round(time.perf_counter() - started, 1)
        return {"run": run, "hits": found, "predictor": predictor}

    started = time.perf_counter()
    first = evaluate("initial", 0, initial, started)
    log = al.log_rows(
        answers(first["predictor"], pool, args.top_k),
        pool["encounter_id"].astype(str).tolist(),
        pd.to_datetime(pool["start"], utc=True).tolist(),
    )
    queue_params = inputs["params"]["active_learning"] | {"window_days": None}
    top = max(budgets, default=0)
    orders = {
        "queue": al.queue_order(log, queue_params, top),
        "random": al.random_order(log["request_id"], top, args.seed + 10_000 + rep),
    }
    by_id = pool.set_index(pool["encounter_id"].astype(str))
    if "oracle" in args.diagnostic_arms:
        pool_labels = (
            pool["label_disease"]
            .astype(str)
            .where(pool["label_category"] == "COMMON", RARE_SLOT_CODE)
        )
        orders["oracle"] = al.oracle_order(
            log, pool_labels.to_numpy(), 3, top, args.seed + 20_000 + rep
        )
    if "iterative" in args.diagnostic_arms:

        def rescore(chosen: list[str]) -> pd.DataFrame:
            """The pool's log of a model retrained with ``chosen`` labelled."""
            labelled = pd.concat([initial, by_id.loc[chosen].reset_index(drop=True)])
            predictor = trainer.train(labelled)
            progress.update(1)
            progress.set_postfix(rep=rep, strategy="iterative", budget=len(chosen))
            return al.log_rows(
                answers(predictor, pool, args.top_k),
                log["request_id"].tolist(),
                log["logged_at"].tolist(),
                model_version=f"retrained_{len(chosen)}",
            )

        orders["iterative"] = al.iterative_queue_order(log, rescore, queue_params, top, args.step)
    runs, found = [first["run"]], {("initial", 0): first["hits"]}
    for budget in budgets:
        for strategy, order in orders.items():
            started = time.perf_counter()
            chosen = by_id.loc[order[:budget]].reset_index(drop=True)
            result = evaluate(strategy, budget, pd.concat([initial, chosen]), started)
            categories = chosen["label_category"].value_counts()
            result["run"] |= {
                "selected_common": int(categories.get("COMMON", 0)),
                "selected_rare": int(categories.get("RARE", 0)),
                "selected_codes": int(chosen["label_disease"].nunique()),
            }
            runs.append(result["run"])
            found[(strategy, budget)] = result["hits"]
    return {
        "runs": runs,
        "hits": found,
        "orders": orders,
        "log": log,
        "selection": selection,
        "initial": {
            "encounters": len(initial),
            "common": int((initial["label_category"] == "COMMON").sum()),
            "common_classes": int(
                initial.loc[initial["label_category"] == "COMMON", "label_disease"].nunique()
            ),
            "calibration": len(calibration_rows),
        },
    }


def describe(frame: pd.DataFrame) -> dict[str, Any]:
    """Size, patients, period and categories of a set of encounters."""
    start = pd.to_datetime(frame["start"], utc=True)
    return {
        "encounters": len(frame),
        "patients": int(frame["patient_id"].nunique()),
        "start": start.min().date().isoformat(),
        "end": start.max().date().isoformat(),
        "categories": frame["label_category"].value_counts().sort_index().to_dict(),
    }


def save_runs(
    folder: Path, results: list[dict], pool: pd.DataFrame, test: pd.DataFrame, scored: pd.DataFrame
) -> dict:
    """Per-run hits (``hits.npz``: ``<strategy>_<budget>_top<k>`` → repetitions × the
    ``scored`` test encounters, in ``scored.parquet`` order), the latest period's pool and
    test encounters (``later.parquet``), the selections and each repetition's pool log."""
    folder.mkdir(parents=True, exist_ok=True)
    stacked = {
        key: {k: np.vstack([r["hits"][key][k] for r in results]) for k in TOP_K}
        for key in results[0]["hits"]
    }
    np.savez_compressed(
        folder / "hits.npz",
        **{
            f"{s}_{b}_top{k}": v.astype(np.int8)
            for (s, b), by in stacked.items()
            for k, v in by.items()
        },
    )
    columns = ["encounter_id", "patient_id", "label_category", "label_disease"]
    later = pd.concat([pool[columns].assign(part="pool"), test[columns].assign(part="test")])
    later.to_parquet(folder / "later.parquet")
    scored[columns].to_parquet(folder / "scored.parquet")
    selections = {str(rep): r["orders"] for rep, r in enumerate(results)}
    (folder / "selections.json").write_text(json.dumps(selections), encoding="utf-8")
    for rep, r in enumerate(results):
        r["log"].to_parquet(folder / f"pool_log_{rep}.parquet")
    return stacked


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    floats = lambda text: tuple(float(x) for x in text.split(","))  # noqa: E731
    add = parser.add_argument
    add(
        "--out",
        type=Path,
        default=ROOT / "data/active_learning_simulation",
        help="working folder: configuration copy, simulated data, per-run results",
    )
    add(
        "--report",
        type=Path,
        default=ROOT / "data/08_reporting/active_learning_simulation.json",
        help="JSON report (the markdown table is written beside it, .md)",
    )
    add("--env", default="local", help="Kedro environment whose configuration is copied")
    add("--encounters", type=int, default=16000, help="simulated encounters (2021-2024)")
    add(
        "--rare-diseases",
        type=int,
        default=80,
        help="simulated rare diseases (the default 220 needs ~50,000 encounters); 0: the env's",
    )
    add("--simulate-seed", type=int, default=None, help="simulate.seed; none: the env's")
    add(
        "--fractions",
        type=floats,
        default=(0.55, 0.1, 0.35),
        help="early (initial labels), middle (calibration), latest (pool + test) periods",
    )
    add(
        "--phenopackets",
        type=Path,
        default=ROOT / "tests/data/phenopackets",
        help="registry phenopackets (only the gate's query rows use them)",
    )
    add("--initial", type=int, default=1000, help="initial labelled encounters per repetition")
    add("--calibration", type=int, default=500, help="labelled calibration encounters")
    add("--test-share", type=float, default=1 / 3, help="latest period's patients held out")
    add("--budgets", type=ints, default=[0, 50, 100, 200, 400], help="labels added")
    add("--compare-budget", type=int, default=200, help="budget of the queue − random figure")
    add(
        "--diagnostic-arms",
        type=lambda text: [x for x in text.split(",") if x],
        default=[],
        help="extra selections beside queue and random, compared with random too: 'oracle' "
        "(hindsight: pool cases the initial model misses at top-3, drawn at random; an upper "
        "reference no hospital has) and 'iterative' (the queue, the model retrained and the "
        "pool rescored after every --step labels)",
    )
    add(
        "--step",
        type=int,
        default=None,
        help="labels between retrainings (iterative arm); none: the queue size",
    )
    add("--repetitions", type=int, default=5, help="initial sets and random draws")
    add("--top-k", type=int, default=10, help="differential length (serving.top_k)")
    add("--n-boot", type=int, default=2000, help="bootstrap resamples")
    add("--seed", type=int, default=0, help="seed of the samples and random draws")
    add("--runs", type=Path, default=None, help="per-run results folder; none: <out>/runs")
    add("--verbose", action="store_true", help="log every node's messages")
    add("--reuse", action="store_true", help="reuse <out>/data when simulated with the same params")
    args = parser.parse_args(argv)
    if args.rare_diseases == 0:
        args.rare_diseases = None
    if args.compare_budget not in args.budgets:
        parser.error("--compare-budget must be one of --budgets")
    unknown = set(args.diagnostic_arms) - {"oracle", "iterative"}
    if unknown:
        parser.error(f"--diagnostic-arms: unknown arm(s) {sorted(unknown)}; use oracle, iterative")
    if args.step is not None and args.step < 1:
        parser.error("--step must be at least 1")
    args.out = args.out.resolve()
    args.runs = (args.runs or args.out / "runs").resolve()
    return args


@contextmanager
def quiet_nodes(quiet: bool) -> Iterator[None]:
    """The project's loggers at WARNING inside the block when ``quiet`` (the nodes log
    every fit; the progress bar says enough), as they were after it."""
    logger = logging.getLogger("disease_pipeline")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    conf, params_text = prepare(args)
    inputs = load_inputs(conf, args.env)
    pool, test = split_later_period(inputs["model_input_test"], args.test_share, args.seed)
    test_common = test[test["label_category"] == "COMMON"].reset_index(drop=True)
    n_budgets = len([b for b in args.budgets if b > 0])
    arms = 2 + len(args.diagnostic_arms)
    args.step = args.step or int(inputs["params"]["active_learning"]["size"])  # none: a queue
    iterative = "iterative" in args.diagnostic_arms
    rescorings = max(-(-max(args.budgets) // args.step) - 1, 0) if iterative else 0
    per_repetition = 1 + arms * n_budgets + rescorings
    print(
        f"2/3 {args.repetitions} repetitions x {per_repetition} trainings "
        f"(pool {len(pool)}, test {len(test_common)} common encounters)",
        flush=True,
    )
    results = []
    total = args.repetitions * per_repetition
    with quiet_nodes(not args.verbose), tqdm(total=total, unit="model") as progress:
        for rep in range(args.repetitions):
            results.append(run_repetition(rep, inputs, pool, test_common, args, progress=progress))
    print("3/3 report", flush=True)
    stacked = save_runs(args.runs, results, pool, test, test_common)
    summary = al.summarise(
        stacked,
        test_common["patient_id"].astype(str).tolist(),
        compare_budget=args.compare_budget,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    top3 = (summary["difference"]["queue_minus_random"] or {}).get("top3")
    report = {
        "command": " ".join(["scripts/active_learning_simulation.py", *(argv or sys.argv[1:])]),
        "kedro_params": params_text,
        "env": args.env,
        "repetitions": args.repetitions,
        "initial_size": args.initial,
        "budgets": args.budgets,
        "metric": "top-k of the retrained model's differential on the test set's common-disease "
        "encounters",
        "setting": {
            "early_period": describe(inputs["model_input_train"]),
            "middle_period": describe(inputs["model_input_calibration"]),
            "pool": describe(pool),
            "test": describe(test),
            "test_common": describe(test_common),
            "queue": inputs["params"]["active_learning"] | {"window_days": None},
        },
        **summary,
        "target_met": bool(top3 is not None and top3["ci_low"] > 0),
        "runs": [run for r in results for run in r["runs"]],
        "repetition_details": [
            {"repetition": rep, "initial": r["initial"], "selection": r["selection"]}
            for rep, r in enumerate(results)
        ],
        "runs_folder": str(args.runs),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    table = al.markdown(report)
    args.report.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    print(f"report: {args.report} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
