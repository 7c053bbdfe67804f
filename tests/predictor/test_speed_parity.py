"""The predictor's faster paths (issue 18) give exactly the numbers of the plain code
they replaced: each is compared with a straightforward reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.knowledge.common_measurements import pair_means


def test_pair_means_equal_the_pandas_groupby_mean_they_replace() -> None:
    rng = np.random.default_rng(18)
    for _ in range(50):
        n = int(rng.integers(2, 300))
        rows = rng.integers(0, int(rng.integers(1, 20)), n)
        items = rng.integers(0, int(rng.integers(1, 6)), n)
        # magnitudes far apart: a plain (uncompensated) sum rounds differently
        values = rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 6, n) + rng.choice([0, 1e8], n)
        frame = pd.DataFrame({"code": rows, "item": items, "v": values})
        expected = frame.groupby(["code", "item"], sort=False)["v"].mean().reset_index()
        got_rows, got_items, got_means = pair_means(rows, items, values, 6)
        assert np.array_equal(got_rows, expected["code"].to_numpy())
        assert np.array_equal(got_items, expected["item"].to_numpy())
        assert np.array_equal(got_means, expected["v"].to_numpy())


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_pair_means_keep_an_infinite_reading(value: float) -> None:
    rows, items = np.array([0, 0, 1]), np.array([2, 2, 2])
    values = np.array([1.0, value, 3.0])
    expected = pd.DataFrame({"c": rows, "i": items, "v": values}).groupby(["c", "i"])["v"].mean()
    assert np.array_equal(pair_means(rows, items, values, 3)[2], expected.to_numpy())
