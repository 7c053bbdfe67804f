"""Active learning on the simulator: which cases to label, and how to compare the answers.

Used by ``scripts/active_learning_simulation.py`` (docs/retraining.md, "Active learning:
does the queue help?"); no Kedro, no I/O.

- :func:`log_rows` writes a model's answers in the form the service's prediction log
  keeps them (``top_codes`` / ``top_probabilities`` as JSON, ``top1_code``, ``p_rare``),
  so the review queue scores exactly what it would score in production.
- :func:`queue_order` is the labelling order the review queue gives: successive queues of
  ``size`` built by :func:`.nodes.build_review_queue` from one model's log, each leaving
  out what the earlier ones sent for labelling (the queue skips confirmed predictions).
  The first ``b`` cases are what ``b`` labels buy. :func:`random_order` is the control.
- Two diagnostic selections bound what any selection could buy: :func:`oracle_order`
  draws at random among the cases the model misses (known only in hindsight, from their
  recorded diagnoses: no hospital can select so), and :func:`iterative_queue_order` asks
  for a new queue from a retrained model after every few labels (what a loop that
  retrains between reviews would do).
- :func:`resample_weights`, :func:`mean_figure` and :func:`paired_difference` give a mean
  hit rate over repetitions × test encounters and its percentile-bootstrap interval,
  resampling repetitions and test patients (an encounter goes with its patient); a
  difference resamples the SAME repetitions and patients for both arms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.active_learning.nodes import build_review_queue
from disease_pipeline.serving.prediction_log import answer_fields


def log_rows(
    outputs: Sequence[dict[str, Any]],
    request_ids: Sequence[str],
    logged_at: datetime | Sequence[datetime],
    model_version: str = "initial",
) -> pd.DataFrame:
    """Answered predictions as prediction-log rows (the service log's fields of an answer,
    ``serving.prediction_log.answer_fields``; no record, no patient). ``logged_at``: one
    time for all, or one per prediction."""
    times = [logged_at] * len(outputs) if isinstance(logged_at, datetime) else list(logged_at)
    rows = [
        {"request_id": str(request_id), "logged_at": at, "model_version": model_version}
        | answer_fields(output)
        for request_id, output, at in zip(request_ids, outputs, times, strict=True)
    ]
    return pd.DataFrame(rows)


def queue_order(log: pd.DataFrame, params: dict[str, Any], budget: int) -> list[str]:
    """Request ids in the order the review queue sends them for labelling, at most
    ``budget``: queue after queue (``params["size"]`` each, the diversity cap within each)
    from the same log, the cases already queued counting as confirmed."""
    return iterative_queue_order(log, lambda _: log, params, budget, int(params["size"]))


def random_order(request_ids: Sequence[str], budget: int, seed: int) -> list[str]:
    """``budget`` request ids drawn uniformly without replacement (seeded); the first
    ``b`` of them are a uniform draw of ``b``."""
    ids = np.asarray([str(r) for r in request_ids])
    order = np.random.default_rng(seed).permutation(len(ids))
    return ids[order[: min(budget, len(ids))]].tolist()


def oracle_order(
    log: pd.DataFrame, labels: Sequence[str], k: int, budget: int, seed: int
) -> list[str]:
    """Hindsight selection: ``budget`` request ids drawn uniformly (seeded) among the log's
    answered rows whose ``labels[i]`` (row i's recorded diagnosis) is not among the first
    ``k`` codes of the logged differential. A reference for what labelling the model's
    mistakes buys, not a strategy: the labels are not known when cases are chosen."""
    answered = (log["status"] == "predicted") & log["request_id"].notna()
    missed = [
        str(request_id)
        for request_id, label, codes, ok in zip(
            log["request_id"], labels, log["top_codes"], answered, strict=True
        )
        if ok and str(label) not in json.loads(codes or "[]")[:k]
    ]
    return random_order(missed, budget, seed)


def iterative_queue_order(
    log: pd.DataFrame,
    rescore: Callable[[list[str]], pd.DataFrame],
    params: dict[str, Any],
    budget: int,
    step: int,
) -> list[str]:
    """Request ids in the order a loop that retrains between reviews labels them: the
    review queue's first ``step`` cases of ``log``, then ``rescore(chosen)`` (the pool's
    log from a model retrained with everything chosen so far) and its queue's next
    ``step``, until ``budget``. The cases already chosen count as confirmed."""
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    chosen: list[str] = []
    current = log
    while len(chosen) < budget:
        feedback = pd.DataFrame({"request_id": chosen})
        queue, _ = build_review_queue(current, feedback, params | {"size": step})
        if queue.empty:
            break
        chosen += [str(r) for r in queue["request_id"]][: budget - len(chosen)]
        if len(chosen) < budget:
            current = rescore(list(chosen))
    return chosen


def resample_weights(
    n_repetitions: int, groups: Sequence[Any], n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bootstrap design for every figure: ``(rep_weights (B, R), group_weights (B, G),
    group_of (n,))`` — how often each repetition and each test patient is drawn in each of
    ``n_boot`` resamples (with replacement), and each test encounter's patient position."""
    codes, uniques = pd.factorize(pd.Series(list(groups)), sort=True)
    rng = np.random.default_rng(seed)
    reps = rng.multinomial(n_repetitions, np.full(n_repetitions, 1.0 / n_repetitions), n_boot)
    patients = rng.multinomial(len(uniques), np.full(len(uniques), 1.0 / len(uniques)), n_boot)
    return reps.astype(float), patients.astype(float), codes


def _resampled_means(values: np.ndarray, design: tuple[np.ndarray, ...]) -> np.ndarray:
    """Mean of ``values`` (repetitions × encounters) in every resample of ``design``."""
    rep_w, group_w, group_of = design
    n_groups = group_w.shape[1]
    sums = np.stack([np.bincount(group_of, row, minlength=n_groups) for row in values])
    sizes = np.bincount(group_of, minlength=n_groups).astype(float)
    numerator = np.einsum("br,rg,bg->b", rep_w, sums, group_w)
    return numerator / (rep_w.sum(axis=1) * (group_w @ sizes))


def mean_figure(
    values: np.ndarray, design: tuple[np.ndarray, ...], level: float = 0.95
) -> dict[str, float]:
    """``{mean, ci_low, ci_high}`` of ``values`` (repetitions × test encounters, e.g. 0/1
    hits): the mean over everything and the percentile interval over ``design``."""
    values = np.asarray(values, dtype=float)
    samples = _resampled_means(values, design)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return {"mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high)}


def paired_difference(
    a: np.ndarray, b: np.ndarray, design: tuple[np.ndarray, ...], level: float = 0.95
) -> dict[str, float]:
    """Mean of ``a − b`` (both repetitions × test encounters, row r of ``a`` paired with
    row r of ``b``) and its interval: each resample draws the same repetitions and test
    patients for both arms, so what they share (hard patients, a lucky initial set)
    cancels out."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need the same shape, got {a.shape} and {b.shape}")
    return mean_figure(a - b, design, level)


def summarise(
    hits: dict[tuple[str, int], np.ndarray],
    groups: Sequence[Any],
    *,
    compare_budget: int,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, Any]:
    """The curve and the paired comparison from per-run hits.

    Args:
        hits: ``(strategy, budget) → {k: (repetitions, test encounters) 0/1 hits}`` of the
            retrained model's top-k (every array with the same repetitions and
            encounters, in the same order).
        groups: the patient of each test encounter (resampled together).
        compare_budget: the budget of the queue − random difference (must be run by both).
    """
    design = None
    curve: list[dict[str, Any]] = []
    for (strategy, budget), by_k in sorted(hits.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if design is None:
            n_reps = next(iter(by_k.values())).shape[0]
            design = resample_weights(n_reps, groups, n_boot, seed)
        row: dict[str, Any] = {"strategy": strategy, "budget": int(budget)}
        for k, values in sorted(by_k.items()):
            row[f"top{k}"] = mean_figure(values, design, level)
        curve.append(row)
    random = hits.get(("random", compare_budget))
    versus_random: dict[str, dict[str, dict[str, float]]] = {}
    for (strategy, budget), arm in sorted(hits.items()):
        if budget == compare_budget and strategy != "random" and random is not None:
            versus_random[strategy] = {
                f"top{k}": paired_difference(arm[k], random[k], design, level) for k in sorted(arm)
            }
    return {
        "curve": curve,
        "difference": {
            "budget": compare_budget,
            "queue_minus_random": versus_random.get("queue"),
            "minus_random": versus_random,
        },
        "bootstrap": {
            "n_boot": n_boot,
            "seed": seed,
            "level": level,
            "resampled": ["repetitions", "test patients"],
        },
    }


def markdown(report: dict[str, Any]) -> str:
    """The curve (mean [95 % interval] per budget and strategy) and the difference as
    markdown, from a report of ``scripts/active_learning_simulation.py``."""

    def cell(figure: dict[str, float]) -> str:
        return f"{figure['mean']:.3f} [{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]"

    arms = ["queue", "random"]
    arms += sorted({p["strategy"] for p in report["curve"]} - {"initial", *arms})
    rows: dict[int, dict[str, Any]] = {}
    for point in report["curve"]:
        for strategy in arms if point["strategy"] == "initial" else (point["strategy"],):
            rows.setdefault(point["budget"], {})[strategy] = point
    header = [f"{s} top-{k}" for k in (1, 3) for s in arms]
    lines = ["| labels | " + " | ".join(header) + " |", "|---:|" + "---|" * len(header)]
    for budget, by in sorted(rows.items()):
        cells = [cell(by[s][f"top{k}"]) if s in by else "—" for k in (1, 3) for s in arms]
        lines.append(f"| {budget} | " + " | ".join(cells) + " |")
    difference = report["difference"]
    lines.append("")
    # reports written before the diagnostic arms carry the queue's difference only
    versus = difference.get("minus_random") or {"queue": difference["queue_minus_random"] or {}}
    for strategy in arms:
        for k, figure in versus.get(strategy, {}).items():
            lines.append(
                f"{strategy.capitalize()} − random at {difference['budget']} labels, {k}: "
                f"{figure['mean']:+.4f} [{figure['ci_low']:+.4f}, {figure['ci_high']:+.4f}]"
            )
    setting = report["setting"]
    lines += [
        "",
        f"{report['repetitions']} repetitions; test set: {setting['test_common']['encounters']} "
        f"common-disease encounters of {setting['test_common']['patients']} patients; pool: "
        f"{setting['pool']['encounters']} encounters; initial labelled set: "
        f"{report['initial_size']} encounters. Target (top-3 interval above 0 at "
        f"{difference['budget']} labels): {'met' if report['target_met'] else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"
