"""The predictor's faster paths (issue 18) give exactly the numbers of the plain code
they replaced: each is compared with a straightforward reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from disease_pipeline.knowledge.common_measurements import pair_means
from disease_pipeline.knowledge.common_scorer import months, str_values
from disease_pipeline.predictor.calibrators import beta_quantile
from disease_pipeline.predictor.feature_knowledge import knowledge_block, measured


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


def _measured_reference(tables: dict, table: str, ids: pd.Index) -> np.ndarray:
    """The former pandas version of ``measured``."""
    frame = tables.get(table)
    if frame is None or not len(frame):
        return np.zeros(len(ids))
    values = pd.to_numeric(frame["value"], errors="coerce")
    seen = set(frame.loc[values.notna().to_numpy(), "encounter_id"].astype(str))
    return np.fromiter((e in seen for e in ids.astype(str)), dtype=float, count=len(ids))


@pytest.mark.parametrize(
    "values",
    [[80.0, np.nan, 7.1, np.nan], [80, 81, 7, 5], ["80", "x", None, "7.5"], [None] * 4],
    ids=["float", "int", "text", "none"],
)
def test_measured_flags_equal_the_pandas_version(values: list) -> None:
    frame = pd.DataFrame({"encounter_id": ["a", "b", 3, "a"], "value": values})
    ids = pd.Index(["a", "b", "3", "c"])
    for tables in ({"labs": frame}, {"labs": frame.iloc[:0]}, {}):
        assert np.array_equal(
            measured(tables, "labs", ids), _measured_reference(tables, "labs", ids)
        )


def test_knowledge_block_equals_the_plain_computation(knowledge_predictor, predictor_tables):
    scorer = knowledge_predictor.feature_builder.knowledge_scorer
    encounters = predictor_tables["encounters"]
    given = pd.Index(encounters["encounter_id"].astype(str), name="encounter_id")
    for ids in (given, given[::-1]):  # in the tables' order, and not (reindexed)
        reordered = encounters.set_index("encounter_id").loc[ids].reset_index()
        expected = np.column_stack(
            [
                scorer.log_posterior({**predictor_tables, "encounters": reordered}),
                *(_measured_reference(predictor_tables, t, ids) for t in ("vitals", "labs")),
            ]
        )
        assert np.array_equal(knowledge_block(scorer, predictor_tables, ids), expected)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["e1", "e2", "e1"]),
        pd.Index(["a", "b"]),
        pd.Series([1, 2]),
        pd.Series(["e1", 3, None, 2.5]),
        pd.Series(["x", pd.NA], dtype="string"),
        pd.Series([], dtype=object),
    ],
    ids=["str", "index", "int", "mixed", "string-dtype", "empty"],
)
def test_str_values_spell_values_as_astype_str(values) -> None:
    got = str_values(values)
    expected = values.astype(str).to_numpy()
    assert got.dtype == object
    assert got.tolist() == expected.tolist()
    assert all(type(v) is str for v in got)


@pytest.mark.parametrize(
    "start",
    [
        pd.Series(
            pd.to_datetime(["2024-03-05 10:00", None, "1969-12-31 23:59", "1850-07-01 00:00"])
        ),
        pd.Series(pd.to_datetime(["2024-01-31"]).as_unit("us")),
        pd.Series(pd.to_datetime(["2024-01-31 23:30", None], utc=True)).dt.tz_convert("Etc/GMT-2"),
        pd.Series([], dtype="datetime64[ns]"),
    ],
    ids=["naive", "microseconds", "time-zone", "empty"],
)
def test_months_equal_the_pandas_accessor(start: pd.Series) -> None:
    expected = start.dt.month.to_numpy(dtype=float, na_value=np.nan)
    assert np.array_equal(months(start), expected, equal_nan=True)


def test_beta_quantiles_equal_scipy_stats_beta_ppf() -> None:
    rng = np.random.default_rng(3)
    p = rng.random((400, 5))
    n = rng.integers(0, 20_000, (400, 5)).astype(float)
    a, b = p * n + 0.5, (1.0 - p) * n + 0.5
    for q in (0.025, 0.975, 0.005, 0.5):
        assert np.array_equal(beta_quantile(q, a, b), beta.ppf(q, a, b))
    a[0, 0], b[1, 1] = np.nan, 0.0  # invalid arguments: the distribution's own answer
    assert np.array_equal(beta_quantile(0.025, a, b), beta.ppf(0.025, a, b), equal_nan=True)
    assert np.array_equal(beta_quantile(0.0, a[2:], b[2:]), beta.ppf(0.0, a[2:], b[2:]))
    scalar = beta_quantile(0.975, np.float64(3.5), np.float64(0.5))
    assert scalar == beta.ppf(0.975, 3.5, 0.5)
