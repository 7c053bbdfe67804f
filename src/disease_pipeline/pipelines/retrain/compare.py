"""Champion vs challenger on the SAME encounters: paired bootstrap intervals of the
difference (challenger − champion) of every gated metric, McNemar's test for top-1, and
the promotion rule (no Kedro, no MLflow).

The scored tables are the evaluation pipeline's (``evaluation/scoring.py``): one row per
encounter with ``label_disease``, ``label_category``, ``ranked_codes`` and
``p_common__<code>``. Intervals reuse ``evaluation/intervals.py``: every resample draws
the same encounters for both models, so what the two share (the hard cases) cancels out.

Promotion rule (``retrain.comparison``): the challenger is promoted only when, for every
gated metric, the lower bound of the difference's interval is at least ``-margin``
(non-inferior) and, for the primary metric, the lower bound is above 0 (better); and
McNemar's test does not find it significantly worse at top-1.

On **recent labelled traffic** (``retrain.comparison.recent``: the service's logged
predictions of the last ``days`` with a confirmed diagnosis that did not become training
data) both models re-score the logged records; with at least ``min_labelled`` of them,
the challenger must also be non-inferior there on each metric of ``recent.metrics`` and
not significantly worse at top-1 (too few: reported, not gating).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from disease_pipeline.pipelines.evaluation import intervals as iv
from disease_pipeline.pipelines.evaluation.scoring import class_columns

METRICS = ("top1", "top3", "common_macro_auroc")


def check_paired(champion: pd.DataFrame, challenger: pd.DataFrame) -> None:
    """Both tables score the same encounters with the same labels, in the same order."""
    if len(champion) != len(challenger):
        raise ValueError(
            f"comparison: champion scored {len(champion)} encounters, "
            f"challenger {len(challenger)}: they must score the same ones"
        )
    same = champion["label_disease"].to_numpy() == challenger["label_disease"].to_numpy()
    if not same.all():
        raise ValueError(
            f"comparison: label_disease differs in {int((~same).sum())} rows: "
            "the two tables are not the same encounters in the same order"
        )


def _hits(frame: pd.DataFrame, k: int) -> np.ndarray:
    return iv.hits_at_k(frame["label_disease"].to_numpy(), list(frame["ranked_codes"]), k)


def _common_auroc(frame: pd.DataFrame, classes: list[str]) -> iv.Statistic:
    """Macro AUROC over ``classes`` on the COMMON encounters a resample drew (the draw is
    of positions among all encounters, so both models see the same resample)."""
    common = (frame["label_category"] == "COMMON").to_numpy()
    sub = frame.loc[common]
    inner = iv.resampled_macro_auroc(
        sub["label_disease"].to_numpy(),
        sub[[f"p_common__{c}" for c in classes]].to_numpy(float),
        classes,
    )
    index = np.full(len(frame), -1)
    index[np.flatnonzero(common)] = np.arange(int(common.sum()))

    def statistic(draw: np.ndarray) -> float:
        kept = index[draw]
        return inner(kept[kept >= 0])

    return statistic


def paired_difference(
    name: str, a: iv.Statistic, b: iv.Statistic, n: int, config: dict[str, Any]
) -> dict[str, float]:
    """``a − b`` of two statistics over the same drawn encounters, with the interval, and
    each side's value."""
    draws = iv.resamples(n, int(config["n_boot"]), int(config["seed"]))
    full = np.arange(n)
    samples = np.array([a(draw) - b(draw) for draw in draws])
    out = iv.figure(f"{name}.difference", a(full) - b(full), samples, float(config["level"]))
    return out | {f"{name}.challenger": a(full), f"{name}.champion": b(full)}


def mcnemar_top1(champion: np.ndarray, challenger: np.ndarray) -> dict[str, float]:
    """McNemar's test on the paired top-1 hits (exact binomial when few discordant pairs)."""
    both = int(np.sum((champion == 1) & (challenger == 1)))
    only_champion = int(np.sum((champion == 1) & (challenger == 0)))
    only_challenger = int(np.sum((champion == 0) & (challenger == 1)))
    neither = int(np.sum((champion == 0) & (challenger == 0)))
    discordant = only_champion + only_challenger
    if discordant == 0:
        return {"only_champion": 0, "only_challenger": 0, "statistic": 0.0, "pvalue": 1.0}
    result = mcnemar(
        [[both, only_champion], [only_challenger, neither]],
        exact=discordant < 25,
        correction=True,
    )
    return {
        "only_champion": only_champion,
        "only_challenger": only_challenger,
        "statistic": float(result.statistic),
        "pvalue": float(result.pvalue),
    }


def compare_scored(
    champion: pd.DataFrame, challenger: pd.DataFrame, config: dict[str, Any]
) -> dict[str, Any]:
    """Every metric of ``config['metrics']`` as a paired difference, and McNemar at top-1."""
    check_paired(champion, challenger)
    champion = champion.reset_index(drop=True)
    challenger = challenger.reset_index(drop=True)
    n = len(champion)
    figures: dict[str, float] = {"n_encounters": float(n)}
    for name in config["metrics"]:
        if name.startswith("top"):
            k = int(name.removeprefix("top"))
            a, b = _hits(challenger, k), _hits(champion, k)
            figures |= iv.paired_mean_difference(
                f"{name}.difference",
                a,
                b,
                n_boot=int(config["n_boot"]),
                seed=int(config["seed"]),
                level=float(config["level"]),
            )
            figures |= {f"{name}.challenger": float(a.mean()), f"{name}.champion": float(b.mean())}
        elif name == "common_macro_auroc":
            classes = sorted(
                set(class_columns(champion, "common")) & set(class_columns(challenger, "common"))
            )
            figures |= paired_difference(
                name,
                _common_auroc(challenger, classes),
                _common_auroc(champion, classes),
                n,
                config,
            )
        else:
            raise ValueError(f"retrain.comparison.metrics: unknown metric {name!r} ({METRICS})")
    test = mcnemar_top1(_hits(champion, 1), _hits(challenger, 1))
    return {"figures": figures, "mcnemar_top1": test}


def promotion_verdict(comparison: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``{"promote", "reason", "checks"}`` by the promotion rule of the module docstring."""
    figures = comparison["figures"]
    checks, failed = [], []
    for name, criterion in config["metrics"].items():
        low = figures[f"{name}.difference.ci_low"]
        margin = float(criterion["margin"])
        ok = bool(np.isfinite(low) and low >= -margin)
        checks.append(
            {
                "metric": name,
                "rule": f"non-inferior: difference ci_low >= -{margin:g}",
                "difference": figures[f"{name}.difference"],
                "ci_low": low,
                "ci_high": figures[f"{name}.difference.ci_high"],
                "passed": ok,
            }
        )
        if not ok:
            failed.append(f"{name} inferior (difference ci_low {low:.4f} < -{margin:g})")
    primary = config["primary"]
    low = figures[f"{primary}.difference.ci_low"]
    better = bool(np.isfinite(low) and low > 0)
    checks.append(
        {
            "metric": primary,
            "rule": "better: difference ci_low > 0",
            "ci_low": low,
            "passed": better,
        }
    )
    if not better:
        failed.append(f"{primary} not better (difference ci_low {low:.4f} <= 0)")
    test = comparison["mcnemar_top1"]
    worse = test["only_champion"] > test["only_challenger"] and test["pvalue"] < float(
        config["mcnemar_alpha"]
    )
    checks.append(
        {
            "metric": "top1",
            "rule": f"McNemar: not significantly worse at alpha {config['mcnemar_alpha']}",
            "pvalue": test["pvalue"],
            "passed": not worse,
        }
    )
    if worse:
        failed.append(f"top1 significantly worse (McNemar p = {test['pvalue']:.4g})")
    promote = not failed
    reason = (
        f"challenger non-inferior on {list(config['metrics'])} and better on {primary}"
        if promote
        else "; ".join(failed)
    )
    return {"promote": promote, "reason": reason, "checks": checks}


def recent_tables(recent: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Warehouse-shaped tables of the logged records of ``recent`` (the checked records
    the service saw)."""
    from disease_pipeline.records import PatientRecord, records_to_tables

    return records_to_tables([PatientRecord.model_validate_json(t) for t in recent["record"]])


def score_records(
    predictor: Any,
    recent: pd.DataFrame,
    top_k: int,
    tables: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``label_disease`` and ``ranked_codes`` of ``predictor`` on the logged records of
    ``recent``, re-scored as the service does (``tables``: :func:`recent_tables` of
    them, when already built)."""
    tables = recent_tables(recent) if tables is None else tables
    outputs = predictor.predict_tables(tables, top_k=top_k, explain=False)
    return pd.DataFrame(
        {
            "label_disease": recent["label_disease"].astype(str).to_numpy(),
            "ranked_codes": [[d["code"] for d in o["differential"]] for o in outputs],
        }
    )


def compare_recent(
    champion: Any, challenger: Any, recent: pd.DataFrame, config: dict[str, Any], top_k: int
) -> dict[str, Any]:
    """The paired comparison on recent labelled traffic: figures, McNemar at top-1 and
    the non-inferiority checks; ``gating`` only with ``recent.min_labelled`` rows."""
    settings = config["recent"]
    n = len(recent)
    out: dict[str, Any] = {"n": n, "days": settings["days"]}
    out["gating"] = n >= int(settings["min_labelled"])
    if n == 0:
        return out | {"checks": [], "failed": []}
    metrics = {name: criterion for name, criterion in settings["metrics"].items()}
    tables = recent_tables(recent)  # once, for both models
    scored = {
        name: score_records(model, recent, top_k, tables)
        for name, model in (("champion", champion), ("challenger", challenger))
    }
    comparison = compare_scored(
        scored["champion"], scored["challenger"], config | {"metrics": metrics}
    )
    out |= comparison
    checks, failed = [], []
    for name, criterion in metrics.items():
        low = comparison["figures"][f"{name}.difference.ci_low"]
        margin = float(criterion["margin"])
        ok = bool(np.isfinite(low) and low >= -margin)
        checks.append(
            {
                "metric": name,
                "rule": f"non-inferior: ci_low >= -{margin:g}",
                "ci_low": low,
                "passed": ok,
            }
        )
        if not ok:
            failed.append(
                f"recent traffic: {name} inferior (difference ci_low {low:.4f} < -{margin:g})"
            )
    test = comparison["mcnemar_top1"]
    worse = test["only_champion"] > test["only_challenger"] and test["pvalue"] < float(
        config["mcnemar_alpha"]
    )
    checks.append(
        {
            "metric": "top1",
            "rule": "McNemar: not significantly worse",
            "pvalue": test["pvalue"],
            "passed": not worse,
        }
    )
    if worse:
        failed.append(
            f"recent traffic: top1 significantly worse (McNemar p = {test['pvalue']:.4g})"
        )
    return out | {"checks": checks, "failed": failed}
