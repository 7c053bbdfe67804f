"""Probability calibrators (``transform(proba) -> proba``), the ECE, and probability intervals.

Methods, all fitted on a model's probabilities and the true class index:

- ``none``: identity (kept as a candidate, so calibration never makes things worse);
- ``isotonic``: one isotonic regression per class (one-vs-rest), rows renormalised;
- ``platt``: one logistic (sigmoid) map of each class's log-odds, rows renormalised;
- ``temperature``: one temperature T on the log-probabilities, softmax(log p / T).

Calibrated probabilities are floored at 1e-6 (then renormalised): no candidate is ever
given exactly 0 or 1.

Intervals. After fitting, :meth:`Calibrator.set_evidence` stores how many calibration
predictions (every class of every row, calibrated, cross-fitted) fell in each of
``n_bins`` equal-width probability bins. The interval of a probability p is the
central Beta(p n + 1/2, (1 − p) n + 1/2) interval, with n the count of p's bin: a
Jeffreys-style interval whose width shrinks with the calibration evidence near p.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import betaincinv, expit, logit, softmax
from scipy.stats import beta
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from disease_pipeline.predictor.probabilities import EPS, normalise

METHODS = ("none", "isotonic", "platt", "temperature")
ECE_KINDS = ("top_label", "classwise")
#: search range of log T: T in [0.14, 7.4] (a smaller T on nearly separable data only
#: pushes probabilities to exactly 0 and 1)
LOG_TEMPERATURE_BOUNDS = (-2.0, 2.0)


class Calibrator:
    """Base calibrator: identity transform, evidence counts and intervals."""

    method = "none"

    def __init__(self) -> None:
        self.bin_counts: np.ndarray | None = None

    def fit(self, proba: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on (n, K) probabilities and integer labels ``y`` (0..K-1)."""
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated (n, K) probabilities (rows sum to 1)."""
        return np.asarray(proba, dtype=float)

    def set_evidence(self, calibrated: np.ndarray, n_bins: int) -> Calibrator:
        """Count calibrated predictions per equal-width bin (for :meth:`interval`)."""
        self.bin_counts, _ = np.histogram(np.ravel(calibrated), bins=n_bins, range=(0.0, 1.0))
        return self

    def interval(self, p: np.ndarray | float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds for probabilities ``p`` (see the module docstring)."""
        p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
        if self.bin_counts is None:
            return p.copy(), p.copy()
        n_bins = len(self.bin_counts)
        n = self.bin_counts[np.minimum((p * n_bins).astype(int), n_bins - 1)].astype(float)
        a, b = p * n + 0.5, (1.0 - p) * n + 0.5
        tail = (1.0 - level) / 2.0
        return beta_quantile(tail, a, b), beta_quantile(1.0 - tail, a, b)


def beta_quantile(q: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``scipy.stats.beta.ppf(q, a, b)``: the same numbers from ``betaincinv`` directly
    when every argument is valid, without the distribution's argument handling (~60 µs
    of the ~75 µs of a one-patient call)."""
    if not (0.0 < q < 1.0 and np.all(a > 0) and np.all(b > 0)):  # NaN and edge cases
        return beta.ppf(q, a, b)
    return betaincinv(a, b, q)


class IsotonicCalibrator(Calibrator):
    """One-vs-rest isotonic regression per class, renormalised."""

    method = "isotonic"

    def fit(self, proba: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        self.maps: list[IsotonicRegression | None] = []
        for k in range(proba.shape[1]):
            target = (y == k).astype(float)
            if target.min() == target.max():  # no positive (or no negative): keep as is
                self.maps.append(None)
                continue
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.maps.append(iso.fit(proba[:, k], target))
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=float)
        out = np.column_stack(
            [
                proba[:, k] if iso is None else _isotonic_map(iso, proba[:, k])
                for k, iso in enumerate(self.maps)
            ]
        )
        return normalise(out, proba)


def _isotonic_map(iso: IsotonicRegression, values: np.ndarray) -> np.ndarray:
    """``iso.predict(values)`` for a 1-D float array, without scikit-learn's input
    checks (about 0.5 ms per class and call, the bulk of a one-patient prediction's
    calibration): the same clip and the same linear interpolation between the fitted thresholds
    (``np.interp`` instead of a ``scipy`` ``interp1d`` call), so the same numbers."""
    values = np.clip(values.astype(iso.X_thresholds_.dtype, copy=False), iso.X_min_, iso.X_max_)
    return np.interp(values, iso.X_thresholds_, iso.y_thresholds_).astype(values.dtype, copy=False)


class PlattCalibrator(Calibrator):
    """Sigmoid of an affine map of each class's log-odds (Platt scaling), renormalised."""

    method = "platt"

    def fit(self, proba: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        n_classes = proba.shape[1]
        self.slope, self.intercept = np.ones(n_classes), np.zeros(n_classes)
        scores = logit(np.clip(proba, EPS, 1 - EPS))
        for k in range(n_classes):
            target = (y == k).astype(int)
            if target.min() == target.max():
                continue
            model = LogisticRegression(C=1e4).fit(scores[:, [k]], target)
            self.slope[k], self.intercept[k] = model.coef_[0, 0], model.intercept_[0]
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=float)
        scores = logit(np.clip(proba, EPS, 1 - EPS))
        return normalise(expit(scores * self.slope + self.intercept), proba)


class TemperatureCalibrator(Calibrator):
    """softmax(log p / T) with T minimising the log loss."""

    method = "temperature"

    def fit(self, proba: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
        logp = np.log(np.clip(proba, EPS, 1.0))
        rows = np.arange(len(y))

        def nll(log_t: float) -> float:
            scaled = logp / np.exp(log_t)
            scaled = scaled - scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(np.mean(log_norm - scaled[rows, y]))

        result = minimize_scalar(nll, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
        self.temperature = float(np.exp(result.x))
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=float)
        scaled = softmax(np.log(np.clip(proba, EPS, 1.0)) / self.temperature, axis=1)
        return normalise(scaled, proba)


_CLASSES = {
    "none": Calibrator,
    "isotonic": IsotonicCalibrator,
    "platt": PlattCalibrator,
    "temperature": TemperatureCalibrator,
}


def make_calibrator(method: str) -> Calibrator:
    """An unfitted calibrator of ``method``.

    Raises:
        ValueError: unknown method.
    """
    if method not in _CLASSES:
        raise ValueError(f"calibration.methods: unknown method {method!r}; use {list(METHODS)}")
    return _CLASSES[method]()


def _check_kind(kind: str) -> None:
    if kind not in ECE_KINDS:
        raise ValueError(f"calibration ECE kind {kind!r}: use one of {list(ECE_KINDS)}")


def reliability_table(
    proba: np.ndarray, y: np.ndarray, n_bins: int, kind: str = "top_label"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: mean predicted probability, observed frequency, count.

    ``top_label``: the most probable class's probability against "it was right";
    ``classwise``: every class's probability against "it was that class", pooled.
    """
    _check_kind(kind)
    proba = np.asarray(proba, dtype=float)
    if kind == "top_label":
        confidence = proba.max(axis=1)
        outcome = (proba.argmax(axis=1) == y).astype(float)
    else:
        confidence = proba.ravel()
        outcome = (np.arange(proba.shape[1])[None, :] == np.asarray(y)[:, None]).ravel()
        outcome = outcome.astype(float)
    index = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=confidence, minlength=n_bins) / counts
        observed = np.bincount(index, weights=outcome, minlength=n_bins) / counts
    return mean_p, observed, counts


def expected_calibration_error(
    proba: np.ndarray, y: np.ndarray, n_bins: int, kind: str = "top_label"
) -> float:
    """ECE: count-weighted mean |observed − predicted| over equal-width bins.

    ``top_label``: of the most probable class; ``classwise``: mean of the per-class ECEs.
    """
    _check_kind(kind)
    proba, y = np.asarray(proba, dtype=float), np.asarray(y)
    if len(y) == 0:
        return float("nan")
    if kind == "classwise":
        return float(
            np.mean(
                [
                    _binary_ece(proba[:, k], (y == k).astype(float), n_bins)
                    for k in range(proba.shape[1])
                ]
            )
        )
    correct = (proba.argmax(axis=1) == y).astype(float)
    return _binary_ece(proba.max(axis=1), correct, n_bins)


def _binary_ece(p: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    """sum over bins of |observed positives − summed probability|, over the row count."""
    index = np.minimum((p * n_bins).astype(int), n_bins - 1)
    gap = np.abs(
        np.bincount(index, weights=outcome, minlength=n_bins)
        - np.bincount(index, weights=p, minlength=n_bins)
    )
    return float(gap.sum() / len(p))


def fold_labels(n: int, groups: np.ndarray | None, n_folds: int, seed: int) -> np.ndarray:
    """Fold index of each row; rows of one group (patient) share a fold. Seeded."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n) % n_folds
    unique, inverse = np.unique(np.asarray(groups), return_inverse=True)
    return (rng.permutation(len(unique)) % n_folds)[inverse]


def cross_fitted(method: str, proba: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold transformed by a calibrator
    fitted on the other folds (so a method is never judged on its own fitting data)."""
    out = np.empty_like(proba, dtype=float)
    for fold in np.unique(folds):
        held = folds == fold
        calibrator = make_calibrator(method).fit(proba[~held], y[~held])
        out[held] = calibrator.transform(proba[held])
    return out
