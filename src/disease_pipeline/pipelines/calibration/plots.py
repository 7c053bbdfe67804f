"""Reliability diagram of one model: raw and cross-fitted calibrated curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from disease_pipeline.predictor.calibrators import reliability_table  # noqa: E402


def reliability_figure(
    title: str,
    curves: dict[str, np.ndarray],
    y: np.ndarray,
    *,
    n_bins: int,
    kind: str,
    ece: dict[str, float],
    chosen: str,
) -> Figure:
    """Observed frequency against predicted probability per method (``curves``: method →
    probabilities), the diagonal, and the histogram of the raw predictions below."""
    figure = Figure(figsize=(6.4, 7.2))
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    for method, proba in curves.items():
        mean_p, observed, counts = reliability_table(proba, y, n_bins, kind)
        used = counts > 0
        style = "-" if method == chosen else "--"
        width = 2.4 if method == chosen else 1.2
        shown = "uncalibrated" if method == "none" else method
        top.plot(
            mean_p[used],
            observed[used],
            style,
            marker="o",
            markersize=3,
            linewidth=width,
            label=f"{shown} (ECE {ece[method]:.3f}){' — chosen' if method == chosen else ''}",
        )
    top.set_ylabel("observed frequency")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    what = "top-label confidence" if kind == "top_label" else "class probabilities (pooled)"
    top.set_title(f"Reliability — {title}\n{what}, {len(y)} calibration rows, cross-fitted")
    top.legend(loc="upper left", fontsize=8)
    raw = curves.get("none", next(iter(curves.values())))
    values = raw.max(axis=1) if kind == "top_label" else raw.ravel()
    bottom.hist(values, bins=n_bins, range=(0, 1), color="steelblue")
    bottom.set_yscale("log")
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("count")
    figure.tight_layout()
    return figure


def message_figure(title: str, message: str) -> Figure:
    """A figure that says why there is no reliability diagram."""
    figure = Figure(figsize=(6.4, 2.4))
    axes = figure.subplots()
    axes.axis("off")
    axes.text(0.5, 0.5, f"Reliability — {title}\n{message}", ha="center", va="center")
    return figure
