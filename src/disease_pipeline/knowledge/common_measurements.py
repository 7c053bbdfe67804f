"""What the catalogue says about vital signs and labs under each common disease.

A disease shifts an item (vital or LOINC lab) by ``shift`` at acuity 1 (catalogue
``vitals``/``labs``); its patients' acuity is about ``base_acuity``. The value of item
``j`` under disease ``d`` is modelled as

    v ~ (1 − η) · N(μ_j + base_acuity_d · shift_dj, σ_j² + (acuity_sd · shift_dj)²)
        + η · N(μ_j, (wide · σ_j)²)

with the healthy-adult ``normal`` (μ, σ) of the LOINC table; the wide component keeps
one odd value from ruling a disease out. Used by the knowledge scorer (measured items)
and by the test recommendations (unmeasured items).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp


@dataclass(frozen=True)
class MeasurementModel:
    """Per-item, per-disease Gaussian mixtures (see module docstring)."""

    loinc: list[str]
    labels: list[str]
    kinds: list[str]
    mean: np.ndarray  # (n_items, n_diseases)
    sd: np.ndarray  # (n_items, n_diseases)
    healthy_mean: np.ndarray  # (n_items,)
    healthy_sd: np.ndarray  # (n_items,)
    outlier_share: float
    outlier_width: float

    @property
    def index(self) -> dict[str, int]:
        """LOINC code → item row."""
        return {code: j for j, code in enumerate(self.loinc)}

    def log_likelihood(self, item: int, values: np.ndarray) -> np.ndarray:
        """``(len(values), n_diseases)`` log density of each value under each disease."""
        values = np.asarray(values, dtype=float)[:, None]
        mean, sd = self.mean[item][None, :], self.sd[item][None, :]
        main = _log_normal(values, mean, sd) + np.log(1.0 - self.outlier_share)
        wide_sd = self.outlier_width * self.healthy_sd[item]
        wide = _log_normal(values, self.healthy_mean[item], wide_sd) + np.log(self.outlier_share)
        return np.logaddexp(main, wide)


def _log_normal(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def build_measurement_model(
    catalogue: pd.DataFrame,
    lab_table: pd.DataFrame,
    *,
    acuity_sd: float,
    outlier_share: float,
    outlier_width: float,
) -> MeasurementModel:
    """The :class:`MeasurementModel` of every item of the LOINC table."""
    if not 0 < outlier_share < 1:
        raise ValueError(f"knowledge.measurement_outlier_share must be in (0, 1): {outlier_share}")
    short_to_loinc = {str(r.short): str(r.loinc) for r in lab_table.itertuples()}
    codes = [str(c) for c in lab_table["loinc"]]
    index = {code: j for j, code in enumerate(codes)}
    shift = np.zeros((len(codes), len(catalogue)))
    for d, row in enumerate(catalogue.itertuples()):
        for key, value in (getattr(row, "vitals", None) or {}).items():
            if key in short_to_loinc:
                shift[index[short_to_loinc[key]], d] = float(value)
        for key, value in (getattr(row, "labs", None) or {}).items():
            if str(key) in index:
                shift[index[str(key)], d] = float(value)
    healthy_mean = np.array([float(n["mean"]) for n in lab_table["normal"]])
    healthy_sd = np.array([float(n["sd"]) for n in lab_table["normal"]])
    acuity = catalogue["base_acuity"].to_numpy(float)[None, :]
    mean = healthy_mean[:, None] + acuity * shift
    sd = np.sqrt(healthy_sd[:, None] ** 2 + (acuity_sd * shift) ** 2)
    return MeasurementModel(
        loinc=codes,
        labels=[str(s) for s in lab_table["short"]],
        kinds=[str(k) for k in lab_table["kind"]],
        mean=mean,
        sd=sd,
        healthy_mean=healthy_mean,
        healthy_sd=healthy_sd,
        outlier_share=float(outlier_share),
        outlier_width=float(outlier_width),
    )


def measurement_log_likelihood(
    model: MeasurementModel, codes: np.ndarray, loinc: np.ndarray, values: np.ndarray, n: int
) -> np.ndarray:
    """``(n, n_diseases)`` summed log densities of the measured items of each encounter.

    ``codes`` are encounter positions; several readings of one item in an encounter
    count once (their mean). Items outside the LOINC table and NaN values are ignored.
    Each row is centred (only differences between diseases matter).
    """
    out = np.zeros((n, model.mean.shape[1]))
    index = model.index
    item = np.fromiter((index.get(str(c), -1) for c in loinc), dtype=np.int64, count=len(loinc))
    values = np.asarray(values, dtype=float)
    keep = (item >= 0) & ~np.isnan(values) & (np.asarray(codes) >= 0)
    if not keep.any():
        return out
    rows, items, values = np.asarray(codes)[keep], item[keep], values[keep]
    pairs = rows.astype(np.int64) * len(model.loinc) + items
    if len(np.unique(pairs)) < len(pairs):  # repeated readings: their mean
        rows, items, values = pair_means(rows.astype(np.int64), items, values, len(model.loinc))
    # every (encounter, item) reading at once, in item order (the order the rows are
    # summed in), instead of one log-density and one normalisation per item
    order = np.argsort(items, kind="stable")
    rows, items = rows[order], items[order]
    table = _log_likelihoods(model, items, values[order])
    np.add.at(out, rows, table - logsumexp(table, axis=1, keepdims=True))
    return out


def pair_means(
    rows: np.ndarray, items: np.ndarray, values: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``(rows, items)`` pairs, in order of their first reading, and the
    mean of each pair's readings.

    The numbers are those of pandas' ``groupby(["code", "item"], sort=False).mean()``
    (used here before, at a millisecond per call): a compensated (Kahan) sum of the
    readings in their order, divided by their count, one reading rank at a time for
    every pair at once.
    """
    pairs = rows * n_items + items
    unique, first, inverse, counts = np.unique(
        pairs, return_index=True, return_inverse=True, return_counts=True
    )
    by_pair = np.argsort(inverse.ravel(), kind="stable")  # each pair's readings, in order
    starts = np.cumsum(counts) - counts
    total = np.zeros(len(unique))
    compensation = np.zeros(len(unique))
    for rank in range(int(counts.max())):
        groups = np.flatnonzero(counts > rank)
        y = values[by_pair[starts[groups] + rank]] - compensation[groups]
        t = total[groups] + y
        c = (t - total[groups]) - y
        compensation[groups] = np.where(np.isnan(c), 0.0, c)  # an infinite sum stays so
        total[groups] = t
    appearance = np.argsort(first, kind="stable")
    unique = unique[appearance]
    return unique // n_items, unique % n_items, total[appearance] / counts[appearance]


def _log_likelihoods(model: MeasurementModel, items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(len(values), n_diseases)``: row ``r`` is ``model.log_likelihood(items[r],
    values[r:r+1])`` (same operations, one item per row)."""
    values = values[:, None]
    main = _log_normal(values, model.mean[items], model.sd[items]) + np.log(
        1.0 - model.outlier_share
    )
    wide_sd = (model.outlier_width * model.healthy_sd[items])[:, None]
    wide = _log_normal(values, model.healthy_mean[items][:, None], wide_sd) + np.log(
        model.outlier_share
    )
    return np.logaddexp(main, wide)
