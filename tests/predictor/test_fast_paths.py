"""The served path's shortcuts give the same numbers as the plain library calls."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from disease_pipeline.knowledge.common_measurements import (
    MeasurementModel,
    measurement_log_likelihood,
)
from disease_pipeline.predictor.calibrators import IsotonicCalibrator
from disease_pipeline.predictor.probabilities import normalise


def test_isotonic_transform_matches_scikit_learn_predict() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=400)
    y = rng.integers(0, 3, size=400)  # class 3 never occurs: kept as is
    calibrator = IsotonicCalibrator().fit(proba, y)
    assert calibrator.maps[3] is None
    new = rng.dirichlet(np.ones(4) * 0.3, size=200)
    new[:3] = [[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.25] * 4]  # bounds and clip
    expected = np.column_stack(
        [
            new[:, k] if iso is None else iso.predict(new[:, k])
            for k, iso in enumerate(calibrator.maps)
        ]
    )
    assert np.array_equal(calibrator.transform(new), normalise(expected, new))


def _reference(model: MeasurementModel, codes, loinc, values, n) -> np.ndarray:
    """The per-item loop: mean of repeated readings, one item at a time."""
    out = np.zeros((n, model.mean.shape[1]))
    index = model.index
    groups: dict[tuple[int, int], list[float]] = {}
    for code, item, value in zip(codes, loinc, values, strict=True):
        j = index.get(str(item), -1)
        if j >= 0 and code >= 0 and not np.isnan(value):
            groups.setdefault((int(code), j), []).append(float(value))
    for j in sorted({j for _, j in groups}):
        pairs = [(c, np.mean(v)) for (c, i), v in groups.items() if i == j]
        table = model.log_likelihood(j, np.array([v for _, v in pairs]))
        rows = np.array([c for c, _ in pairs])
        np.add.at(out, rows, table - logsumexp(table, axis=1, keepdims=True))
    return out


def test_measurements_in_one_pass_match_the_per_item_loop() -> None:
    rng = np.random.default_rng(1)
    n_items, n_diseases = 5, 7
    model = MeasurementModel(
        loinc=[f"L{j}" for j in range(n_items)],
        labels=[f"l{j}" for j in range(n_items)],
        kinds=["lab"] * n_items,
        mean=rng.normal(10, 2, (n_items, n_diseases)),
        sd=rng.uniform(0.5, 2, (n_items, n_diseases)),
        healthy_mean=rng.normal(10, 1, n_items),
        healthy_sd=rng.uniform(0.5, 1.5, n_items),
        outlier_share=0.05,
        outlier_width=4.0,
    )
    codes = np.array([0, 0, 1, 2, 2, 2, 3, -1, 1])
    loinc = np.array(["L3", "L1", "L0", "L4", "L2", "X9", "L1", "L2", "L3"])
    values = np.array([9.5, 11.0, 8.0, np.nan, 10.5, 3.0, 12.0, 1.0, 10.0])
    single = measurement_log_likelihood(model, codes, loinc, values, 4)
    assert np.array_equal(single, _reference(model, codes, loinc, values, 4))
    repeated_codes = np.append(codes, [0, 1])
    repeated_loinc = np.append(loinc, ["L3", "L0"])
    repeated_values = np.append(values, [10.7, 8.9])  # a second reading of two items
    repeated = measurement_log_likelihood(model, repeated_codes, repeated_loinc, repeated_values, 4)
    assert np.allclose(
        repeated, _reference(model, repeated_codes, repeated_loinc, repeated_values, 4)
    )
    assert not np.allclose(repeated, single)
