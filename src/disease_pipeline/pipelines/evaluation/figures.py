"""Every gated figure with its 95 % bootstrap interval, the baselines beside the champion
and the evaluation by modality pattern.

Reads the scored test split (:mod:`.scoring`), the point metrics and operating
thresholds of :func:`.nodes.evaluate_predictions`, the baselines' probabilities
(:mod:`.baselines`) and the rare_model pipeline's registry validation. Key names:

- ``common.top{k}``: the served differential's top-k on COMMON test cases;
- ``<figure>.ci_low`` / ``<figure>.ci_high``: its interval (for figures whose point value
  ``evaluate_predictions`` already reports, only the interval is added here);
- ``baseline.<name>.top{k}``, ``baseline.<name>.auroc_macro``: a baseline's own figures;
- ``compare.<name>.top{k}_diff``: champion − baseline, paired on the same COMMON
  encounters, both ranking the same common diseases (the champion by P(d | common));
- ``modality.<pattern>.<figure>`` and ``compare.knowledge.<pattern>.top{k}_diff``;
- ``registry.<protocol>.<method>.<metric>`` and ``registry.<protocol>.<method>_vs_<baseline>
  .<metric>_diff``: the unseen-disease protocol on the registry phenopackets with the
  intervals the rare_model pipeline computed (absent when it wrote no such figure).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS

from . import intervals as iv
from . import metrics as m
from .baselines import baseline_names, baseline_probabilities
from .nodes import severe_score
from .scoring import RARE_PREFIX, class_columns, probabilities

MODALITY_PATTERNS = ("symptoms_only", "with_vitals", "with_labs", "all")


class Boot:
    """Bootstrap settings of one run: resamples, seed, level."""

    def __init__(self, params: dict[str, Any]) -> None:
        config = params["intervals"]
        self.n_boot, self.level = int(config["n_boot"]), float(config["level"])
        self.seed, self.top_k = int(params["seed"]), [int(k) for k in config["top_k"]]
        self.bins = int(params["ece_bins"])

    def mean(self, name: str, values: np.ndarray) -> dict[str, float]:
        return iv.mean_figure(name, values, self.n_boot, self.seed, self.level)

    def stat(
        self, name: str, statistic: iv.Statistic, n: int, debias: bool = False
    ) -> dict[str, float]:
        return iv.statistic_figure(
            name,
            statistic,
            n,
            n_boot=self.n_boot,
            seed=self.seed,
            level=self.level,
            debias=debias,
        )

    def diff(self, name: str, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        return iv.paired_mean_difference(
            name, a, b, n_boot=self.n_boot, seed=self.seed, level=self.level
        )


def _common_block(frame: pd.DataFrame, boot: Boot, prefix: str) -> dict[str, float]:
    """Served top-k, macro AUROC and top-label ECE of P(d | common) on ``frame`` (COMMON)."""
    classes = class_columns(frame, "common")
    labels, proba = frame["label_disease"].to_numpy(), probabilities(frame, "common")
    ranked = list(frame["ranked_codes"])
    out: dict[str, float] = {f"{prefix}.n": float(len(frame))}
    for k in boot.top_k:
        out |= boot.mean(f"{prefix}.top{k}", iv.hits_at_k(labels, ranked, k))
    out |= boot.stat(
        f"{prefix}.auroc_macro", iv.resampled_macro_auroc(labels, proba, classes), len(frame)
    )
    out |= boot.stat(
        f"{prefix}.ece",
        lambda d: iv.top_label_ece(labels[d], proba[d], classes, boot.bins),
        len(frame),
        debias=True,
    )
    return out


def _ece_max(test: pd.DataFrame, boot: Boot) -> iv.Statistic:
    """Worst of common, gate and severity ECE on the drawn encounters."""
    common = (test["label_category"] == "COMMON").to_numpy()
    classes, proba = class_columns(test, "common"), probabilities(test, "common")
    labels = test["label_disease"].to_numpy()
    y_rare, p_rare = (~common).astype(float), test["p_rare"].to_numpy(float)
    severity = test["label_severity"].isin(SEVERITY_LEVELS).to_numpy()
    levels, p_sev = class_columns(test, "severity"), probabilities(test, "severity")
    sev_labels = test["label_severity"].to_numpy()

    def statistic(draw: np.ndarray) -> float:
        c, s = draw[common[draw]], draw[severity[draw]]
        values = [
            iv.top_label_ece(labels[c], proba[c], classes, boot.bins),
            m.binary_ece(y_rare[draw], p_rare[draw], boot.bins),
            iv.top_label_ece(sev_labels[s], p_sev[s], levels, boot.bins),
        ]
        finite = [v for v in values if np.isfinite(v)]
        return float(max(finite)) if finite else float("nan")

    return statistic


def _rare_block(test: pd.DataFrame, boot: Boot) -> dict[str, float]:
    """Within-rare figures: the differential's top-k and the macro AUROC of P(d | rare)."""
    rare = test[test["label_category"] == "RARE"]
    labels, ranked = rare["label_disease"].to_numpy(), list(rare["ranked_codes"])
    out: dict[str, float] = {}
    for k in boot.top_k:
        out |= boot.mean(f"differential.rare_top{k}", iv.hits_at_k(labels, ranked, k))
    columns = [c for c in rare.columns if c.startswith(RARE_PREFIX)]
    scores = rare[columns].to_numpy(float)
    diseases = [c.removeprefix(RARE_PREFIX) for c in columns]
    out |= boot.stat(
        "differential.rare_macro_auroc_within_rare",
        iv.resampled_macro_auroc(labels, scores, diseases),
        len(rare),
    )
    return out


def _shared(classes: list[str], other: list[str]) -> list[str]:
    keep = set(other)
    return [c for c in classes if c in keep]


def _ranking_hits(
    labels: np.ndarray, classes: list[str], proba: np.ndarray, shared: list[str], k: int
) -> np.ndarray:
    index = [classes.index(c) for c in shared]
    return iv.hits_from_proba(labels, proba[:, index], shared, k)


def _baseline_block(
    common: pd.DataFrame, baselines: pd.DataFrame, boot: Boot, params: dict[str, Any]
) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Each baseline's figures and its paired differences with the champion, on COMMON
    cases; also the per-encounter hits (champion, baseline) per baseline and k."""
    rows = baselines.set_index(baselines["encounter_id"].astype(str))
    rows = rows.reindex(common["encounter_id"].astype(str))
    labels = common["label_disease"].to_numpy()
    classes, proba = class_columns(common, "common"), probabilities(common, "common")
    out: dict[str, float] = {}
    hits: dict[str, dict[str, np.ndarray]] = {}
    for name in baseline_names(baselines):
        b_classes, b_proba = baseline_probabilities(rows, name)
        b_proba = np.nan_to_num(b_proba, nan=0.0)
        shared = _shared(classes, b_classes)
        out |= boot.stat(
            f"baseline.{name}.auroc_macro",
            iv.resampled_macro_auroc(labels, b_proba, b_classes),
            len(common),
        )
        hits[name] = {}
        for k in boot.top_k:
            mine = _ranking_hits(labels, classes, proba, shared, k)
            theirs = _ranking_hits(labels, b_classes, b_proba, shared, k)
            hits[name][f"top{k}"] = np.stack([mine, theirs])
            out |= boot.mean(f"baseline.{name}.top{k}", theirs)
            out |= boot.diff(f"compare.{name}.top{k}_diff", mine, theirs)
        out[f"baseline.{name}.shared_classes"] = float(len(shared))
    return out, hits


def _modality_block(
    common: pd.DataFrame, hits: dict[str, dict[str, np.ndarray]], boot: Boot
) -> tuple[dict[str, float], pd.DataFrame]:
    """Per modality pattern: the champion's figures and its paired difference with the
    knowledge baseline (when present); one table row per pattern."""
    out: dict[str, float] = {}
    rows = []
    pattern_of = common["modality"].to_numpy()
    for pattern in MODALITY_PATTERNS:
        mask = pattern_of == pattern
        block = _common_block(common[mask], boot, f"modality.{pattern}")
        for name, by_k in hits.items():
            for key, pair in by_k.items():
                block |= boot.diff(f"compare.{name}.{pattern}.{key}_diff", *pair[:, mask])
                block |= boot.mean(f"modality.{pattern}.{name}.{key}", pair[1, mask])
        out |= block
        row = {key.replace(f".{pattern}", ""): value for key, value in block.items()}
        rows.append({"pattern": pattern} | row)
    return out, pd.DataFrame(rows)


def _lookup(tree: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def registry_figures(validation: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, float]:
    """The unseen-disease protocol of the registry cases as the rare_model pipeline wrote
    it (``reporting_rare_model_validation``): ``protocols.<p>.metrics.<method>.<metric>``,
    the intervals ``protocols.<p>.bootstrap.intervals.<method>.<metric>`` and the paired
    difference ``protocols.<p>.bootstrap.differences.<method>.<metric>`` (``{difference,
    interval}``) to ``bootstrap.difference_to``, which must be the configured baseline.
    Nothing when the validation has no such figure: the gate then reports the criterion
    not available."""
    protocol, method, base = config["protocol"], config["method"], config["baseline"]
    metric = str(config["metric"])
    block = _lookup(validation or {}, f"protocols.{protocol}")
    if not isinstance(block, dict):
        return {}
    out: dict[str, float] = {}
    boot = block.get("bootstrap") if isinstance(block.get("bootstrap"), dict) else {}
    for who in (method, base):
        key = f"registry.{protocol}.{who}.{metric}"
        value = _lookup(block, f"metrics.{who}.{metric}")
        if isinstance(value, int | float):
            out[key] = float(value)
        bounds = _interval(_lookup(boot, f"intervals.{who}.{metric}"))
        if bounds:
            out |= {f"{key}.ci_low": bounds[0], f"{key}.ci_high": bounds[1]}
    given = _lookup(boot, f"differences.{method}.{metric}")
    bounds = _interval(given.get("interval")) if isinstance(given, dict) else None
    if boot.get("difference_to") == base and bounds and "difference" in given:
        name = f"registry.{protocol}.{method}_vs_{base}.{metric}_diff"
        out |= {
            name: float(given["difference"]),
            f"{name}.ci_low": bounds[0],
            f"{name}.ci_high": bounds[1],
        }
    return out


def evaluate_with_intervals(
    model_output_test_predictions: pd.DataFrame,
    reporting_metrics_test: dict[str, float],
    model_output_baseline_predictions: pd.DataFrame,
    reporting_rare_model_validation: dict[str, Any] | None,
    params: dict[str, Any],
) -> tuple[dict[str, float], pd.DataFrame]:
    """Interval figures (see the module docstring) and the per-pattern table."""
    boot, test = Boot(params), model_output_test_predictions
    common = test[test["label_category"] == "COMMON"].reset_index(drop=True)
    out = _common_block(common, boot, "common")
    out |= _rare_block(test, boot)
    y_rare, p_rare = (test["label_category"] == "RARE").to_numpy(float), test["p_rare"].to_numpy()
    out |= boot.stat("gate.auroc", lambda d: iv.fast_auroc(y_rare[d], p_rare[d]), len(test))
    severe = test["label_severity"].isin(("high", "critical")).to_numpy()
    flagged = severe_score(test) >= reporting_metrics_test.get("severity.op.threshold", np.nan)
    out |= boot.mean("severity.op.sensitivity", flagged[severe].astype(float))
    out |= boot.stat("calibration.ece_max", _ece_max(test, boot), len(test), debias=True)
    baseline_figures, hits = _baseline_block(
        common, model_output_baseline_predictions, boot, params
    )
    out |= baseline_figures
    modality, table = _modality_block(common, hits, boot)
    out |= modality
    out |= registry_figures(reporting_rare_model_validation, params["registry_protocol"])
    # figures whose point value evaluate_predictions reports keep that value
    out = {k: v for k, v in out.items() if k not in reporting_metrics_test}
    return out, table
