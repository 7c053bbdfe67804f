"""Drift of every model feature between the training data and the latest period.

Population Stability Index (PSI) and the two-sample Kolmogorov–Smirnov test are
computed here with numpy/scipy for every feature; the Evidently report covers the
features that drift most (an HTML page with thousands of columns is unreadable and slow).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def feature_columns(frame: pd.DataFrame, feature_names: list[str], name: str) -> pd.DataFrame:
    """The model features of a split, as floats; a clear error if the split lacks some."""
    missing = [column for column in feature_names if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks {len(missing)} feature column(s) of feature_builder.feature_names, "
            f"e.g. {missing[:5]}"
        )
    return frame[list(feature_names)].astype(float)


def psi_counts(
    reference: np.ndarray, current: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of ``reference`` and ``current`` in the PSI's bins: the reference deciles
    for continuous values, the distinct values when the reference has at most ``bins``
    of them (binary and count features), plus one bin for missing values so that a
    change in missingness counts as drift."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    ref_values = reference[~np.isnan(reference)]
    cur_values = current[~np.isnan(current)]
    distinct = np.unique(ref_values)
    if distinct.size <= bins:
        categories = np.union1d(distinct, np.unique(cur_values))
        ref_counts = np.array([(ref_values == c).sum() for c in categories], dtype=float)
        cur_counts = np.array([(cur_values == c).sum() for c in categories], dtype=float)
    else:
        edges = np.unique(np.quantile(ref_values, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref_counts = np.histogram(ref_values, edges)[0].astype(float)
        cur_counts = np.histogram(cur_values, edges)[0].astype(float)
    ref_counts = np.append(ref_counts, reference.size - ref_values.size)
    cur_counts = np.append(cur_counts, current.size - cur_values.size)
    return ref_counts, cur_counts


def population_stability_index(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, epsilon: float = 1e-4
) -> float:
    """PSI of ``current`` against ``reference``: sum over bins of (q - p) * ln(q / p),
    on the bins of :func:`psi_counts`. Empty bins are floored at ``epsilon``. Returns
    NaN when either sample is empty.
    """
    if np.size(reference) == 0 or np.size(current) == 0:
        return float("nan")
    return _psi(*psi_counts(reference, current, bins), epsilon)


def psi_pvalue(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """P-value of "both samples come from one distribution" on the PSI's bins: how likely
    a PSI this large is from sampling alone (:func:`_homogeneity_pvalue`). NaN when
    either sample is empty."""
    if np.size(reference) == 0 or np.size(current) == 0:
        return float("nan")
    return _homogeneity_pvalue(*psi_counts(reference, current, bins))


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = 1e-4) -> float:
    p = np.clip(ref_counts / ref_counts.sum(), epsilon, None)
    q = np.clip(cur_counts / cur_counts.sum(), epsilon, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _homogeneity_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Fisher's exact test when two bins are used (binary features, where rare values
    make the chi-square approximation far too confident); otherwise the chi-square test
    of homogeneity with the bins expecting fewer than 5 values pooled into one
    (Cochran's rule). 1.0 when all values share one bin."""
    used = (ref_counts + cur_counts) > 0
    ref_counts, cur_counts = ref_counts[used], cur_counts[used]
    if len(ref_counts) < 2:
        return 1.0
    if len(ref_counts) > 2:
        total = ref_counts + cur_counts
        expected = np.outer([ref_counts.sum(), cur_counts.sum()], total) / total.sum()
        sparse = expected.min(axis=0) < 5
        if sparse.any():
            ref_counts = np.append(ref_counts[~sparse], ref_counts[sparse].sum())
            cur_counts = np.append(cur_counts[~sparse], cur_counts[sparse].sum())
        if len(ref_counts) < 2:
            return 1.0
    table = np.vstack([ref_counts, cur_counts])
    if table.shape[1] == 2:
        return float(stats.fisher_exact(table)[1])
    return float(stats.chi2_contingency(table, correction=False)[1])


def feature_psi(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, min_observed: int = 30
) -> tuple[float, float, str]:
    """PSI of one feature as two parts, and the larger one with its p-value
    (:func:`psi_pvalue`): ``missingness`` (the share of patients with a value) and
    ``values`` (the distribution among patients with a value, when both samples have at
    least ``min_observed`` of them). A lab measured in a fifth of the patients that
    doubles would otherwise show a fraction of its shift, hidden under the missing bin."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if reference.size == 0 or current.size == 0:
        return float("nan"), float("nan"), ""
    ref_missing, cur_missing = np.isnan(reference), np.isnan(current)
    samples = {"missingness": (ref_missing, cur_missing)}
    ref_values, cur_values = reference[~ref_missing], current[~cur_missing]
    if min(ref_values.size, cur_values.size) >= min_observed:
        samples["values"] = (ref_values, cur_values)
    parts = []
    for part, (ref, cur) in samples.items():
        counts = psi_counts(ref, cur, bins)  # once per part, for the PSI and its test
        parts.append((_psi(*counts), _homogeneity_pvalue(*counts), part))
    return max(parts, key=lambda part: part[0])


def kolmogorov_smirnov(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value on the non-missing values (NaN if one is empty)."""
    ref_values = reference[~np.isnan(reference)]
    cur_values = current[~np.isnan(current)]
    if ref_values.size == 0 or cur_values.size == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(ref_values, cur_values)
    return float(result.statistic), float(result.pvalue)


def compute_feature_drift(
    model_input_train: pd.DataFrame,
    model_input_test: pd.DataFrame,
    feature_builder: Any,
    params: dict[str, Any],
) -> pd.DataFrame:
    """One row per feature: PSI, KS statistic and p-value, missing rates and drift flags.

    ``psi`` is the larger of the missingness and among-the-measured parts
    (:func:`feature_psi`, named in ``psi_part``); ``drifted``: it exceeds
    ``params["psi_threshold"]`` (a material shift) and
    the chi-square test on the PSI's bins rejects one common distribution at the
    family-wise level ``params["psi_alpha"]`` (Bonferroni over the features), so a
    small window's sampling noise is not reported as drift; ``ks_drifted`` is
    ``ks_pvalue < params["ks_alpha"]``. Sorted by decreasing PSI.
    """
    threshold = float(params["psi_threshold"])
    alpha = float(params["ks_alpha"])
    psi_alpha = float(params["psi_alpha"])
    bins, min_observed = int(params["psi_bins"]), int(params["psi_min_observed"])
    names = list(feature_builder.feature_names)
    reference = feature_columns(model_input_train, names, "model_input_train")
    current = feature_columns(model_input_test, names, "model_input_test")
    rows = []
    for name in tqdm(names, desc="drift: PSI and KS per feature", leave=False):
        ref, cur = reference[name].to_numpy(), current[name].to_numpy()
        ks_stat, ks_p = kolmogorov_smirnov(ref, cur)
        rows.append(
            {
                "feature": name,
                **dict(
                    zip(
                        ("psi", "psi_pvalue", "psi_part"),
                        feature_psi(ref, cur, bins, min_observed),
                        strict=True,
                    )
                ),
                "ks_statistic": ks_stat,
                "ks_pvalue": ks_p,
                "reference_mean": float(np.nanmean(ref)) if np.isfinite(ref).any() else np.nan,
                "current_mean": float(np.nanmean(cur)) if np.isfinite(cur).any() else np.nan,
                "reference_missing": float(np.isnan(ref).mean()),
                "current_missing": float(np.isnan(cur).mean()),
            }
        )
    table = pd.DataFrame(rows)
    table["drifted"] = (table["psi"] > threshold) & (
        table["psi_pvalue"] < psi_alpha / max(len(names), 1)
    )
    table["ks_drifted"] = table["ks_pvalue"] < alpha
    return table.sort_values("psi", ascending=False, ignore_index=True)


def build_evidently_report(
    model_input_train: pd.DataFrame,
    model_input_test: pd.DataFrame,
    reporting_drift_features: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[str, dict[str, float]]:
    """Evidently 0.7 ``DataDriftPreset`` report on the ``evidently_max_features`` features
    with the highest PSI (constant features skipped). Returns the HTML page and
    Evidently's drifted-column count and share."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ranked = reporting_drift_features.dropna(subset=["psi"])["feature"].tolist()
    columns = [
        c
        for c in ranked
        if pd.concat([model_input_train[c], model_input_test[c]]).nunique(dropna=True) > 1
    ][: int(params["evidently_max_features"])]
    if not columns:
        raise ValueError("drift: no non-constant feature to put in the Evidently report")
    reference = model_input_train[columns].astype(float)
    current = model_input_test[columns].astype(float)
    snapshot = Report([DataDriftPreset(drift_share=float(params["evidently_drift_share"]))]).run(
        current_data=current, reference_data=reference
    )
    summary = {"evidently_columns": float(len(columns))}
    for metric in snapshot.dict()["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            summary["evidently_drifted_count"] = float(metric["value"]["count"])
            summary["evidently_drifted_share"] = float(metric["value"]["share"])
    return snapshot.get_html_str(as_iframe=False), summary


def _period(frame: pd.DataFrame) -> dict[str, Any]:
    if "start" not in frame.columns or frame.empty:
        return {"rows": len(frame)}
    start = pd.to_datetime(frame["start"], utc=True)
    return {"rows": len(frame), "from": start.min().isoformat(), "to": start.max().isoformat()}


def summarise_drift(
    reporting_drift_features: pd.DataFrame,
    evidently_summary: dict[str, float],
    model_input_train: pd.DataFrame,
    model_input_test: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """JSON summary of the drift check and the few headline figures logged to MLflow."""
    table = reporting_drift_features
    drifted = table[table["drifted"]]
    summary = {
        "reference": _period(model_input_train),
        "current": _period(model_input_test),
        "psi_threshold": float(params["psi_threshold"]),
        "ks_alpha": float(params["ks_alpha"]),
        "n_features": len(table),
        "n_drifted_psi": len(drifted),
        "share_drifted_psi": float(len(drifted) / len(table)) if len(table) else 0.0,
        "n_drifted_ks": int(table["ks_drifted"].sum()),
        "max_psi": float(table["psi"].max()) if len(table) else float("nan"),
        "drifted_features": [
            {"feature": row.feature, "psi": round(float(row.psi), 4)}
            for row in drifted.head(int(params["top_features_in_summary"])).itertuples()
        ],
        "evidently": evidently_summary,
        "alert": bool(len(drifted) > 0),
    }
    if summary["alert"]:
        logger.warning(
            "drift: %d of %d features have PSI > %.2f (max %.3f)",
            summary["n_drifted_psi"],
            summary["n_features"],
            summary["psi_threshold"],
            summary["max_psi"],
        )
    metrics = {
        f"drift.{key}": {"value": float(summary[key]), "step": 0}
        for key in ("n_drifted_psi", "share_drifted_psi", "n_drifted_ks", "max_psi")
    }
    return summary, metrics
