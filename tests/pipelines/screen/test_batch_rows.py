"""Screening batches sliced by precomputed row positions equal the per-batch lookup."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.predictor.screening import (
    DETAIL_TABLES,
    batch_rows,
    batch_tables,
    sliced_tables,
)


def _tables() -> dict[str, pd.DataFrame]:
    ids = [f"e{i}" for i in range(7)]
    encounters = pd.DataFrame({"encounter_id": ids, "age_years": range(7), "sex": ["f"] * 7})
    # rows in no particular order, some of an encounter outside the list
    detail = pd.DataFrame(
        {
            "encounter_id": ["e3", "e0", "x", "e6", "e3", "e1", "e0", "e5"],
            "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    tables = {"encounters": encounters}
    for i, name in enumerate(DETAIL_TABLES):
        tables[name] = detail.iloc[i:].reset_index(drop=True) if i < 3 else detail.iloc[:0]
    return tables


def test_sliced_batches_equal_batch_tables() -> None:
    tables = _tables()
    ids = tables["encounters"]["encounter_id"].tolist()
    for size in (1, 3, 7, 10):
        positions = batch_rows(tables, ids, size)
        for b, start in enumerate(range(0, len(ids), size)):
            chunk = ids[start : start + size]
            got = sliced_tables(tables, chunk, {n: positions[n][b] for n in positions})
            expected = batch_tables(tables, chunk)
            for name, frame in expected.items():
                pd.testing.assert_frame_equal(got[name], frame, check_exact=True)


def test_repeated_ids_fall_back_to_the_lookup() -> None:
    assert batch_rows(_tables(), ["e0", "e0"], 2) is None
