"""Scoring a population: warehouse tables in, one screening row per encounter out.

The rows come from ``predictor.predict_tables`` — the call the service makes on the
tables of checked records (``serving.engine.PredictionEngine.predict_checked``) — on
batches of encounters. A batch the predictor refuses is retried one encounter at a
time, so a faulty encounter gets its own ``error`` and never fails its neighbours.
Shared by the pandas path (``pipelines/screen/nodes.score_window``), the Spark path
(``pipelines/screen/spark.py``) and the Snowpark vectorised UDF
(:mod:`disease_pipeline.predictor.snowpark_udf`); a runtime module (no Kedro), so a
Spark executor or a Snowflake warehouse imports it with the predictor's packages only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.core.levels import SEVERE_LEVELS, SEVERITY_LEVELS

#: the tables the predictor reads, besides ``encounters``
DETAIL_TABLES = ("symptoms", "vitals", "labs", "diagnoses")
#: the columns of the encounters table the screening needs
ENCOUNTER_COLUMNS = ("encounter_id", "patient_id", "start", "age_years", "sex")


def screening_columns(top_n: int) -> list[str]:
    """Column order of the screening table for the ``top_n`` first differential entries."""
    ranked = [
        f"top{i}_{part}"
        for i in range(1, top_n + 1)
        for part in ("code", "name", "category", "probability")
    ]
    return [
        "encounter_id",
        "patient_id",
        "encounter_start",
        *ranked,
        "p_rare",
        "severity_level",
        *[f"p_severity__{level}" for level in SEVERITY_LEVELS],
        "p_high_or_critical",
        "must_not_miss",
        "error",
    ]


def batch_tables(
    tables: dict[str, pd.DataFrame], encounter_ids: list[str]
) -> dict[str, pd.DataFrame]:
    """The tables restricted to ``encounter_ids`` (``encounters`` in that order)."""
    wanted = pd.Index(encounter_ids, name="encounter_id")
    encounters = tables["encounters"].set_index("encounter_id").loc[wanted].reset_index()
    out = {"encounters": encounters}
    for name in DETAIL_TABLES:
        frame = tables[name]
        out[name] = frame[frame["encounter_id"].isin(wanted)].reset_index(drop=True)
    return out


def batch_rows(
    tables: dict[str, pd.DataFrame], encounter_ids: list[str], batch_size: int
) -> dict[str, list[np.ndarray]] | None:
    """Per detail table, the row positions of each batch of ``batch_size`` consecutive
    ``encounter_ids`` (in table order), found in one pass over each table instead of
    one ``isin`` per batch; None when ``encounter_ids`` repeat an id."""
    position = pd.Index(encounter_ids)
    if position.has_duplicates:
        return None
    n_batches = -(-len(encounter_ids) // batch_size)
    out = {}
    for name in DETAIL_TABLES:
        found = position.get_indexer(tables[name]["encounter_id"])
        batch = np.where(found >= 0, found // batch_size, n_batches)  # n_batches: no batch
        order = np.argsort(batch, kind="stable")  # each batch's rows, in table order
        bounds = np.searchsorted(batch[order], np.arange(n_batches + 1))
        out[name] = [order[bounds[b] : bounds[b + 1]] for b in range(n_batches)]
    return out


def sliced_tables(
    tables: dict[str, pd.DataFrame],
    encounter_ids: list[str],
    rows: dict[str, np.ndarray],
) -> dict[str, pd.DataFrame]:
    """:func:`batch_tables` of ``encounter_ids``, the detail tables' rows given by
    position (``rows``, from :func:`batch_rows`)."""
    wanted = pd.Index(encounter_ids, name="encounter_id")
    encounters = tables["encounters"].set_index("encounter_id").loc[wanted].reset_index()
    out = {"encounters": encounters}
    for name in DETAIL_TABLES:
        out[name] = tables[name].iloc[rows[name]].reset_index(drop=True)
    return out


def output_row(output: dict[str, Any], top_n: int) -> dict[str, Any]:
    """The screening columns of one prediction (``predict_tables`` output)."""
    row: dict[str, Any] = {}
    differential = list(output.get("differential") or [])
    for i in range(1, top_n + 1):
        entry = differential[i - 1] if i <= len(differential) else {}
        row[f"top{i}_code"] = entry.get("code")
        row[f"top{i}_name"] = entry.get("name")
        row[f"top{i}_category"] = entry.get("category")
        probability = entry.get("probability")
        row[f"top{i}_probability"] = float(probability) if probability is not None else np.nan
    severity = output["severity"]
    row["p_rare"] = float(output["p_rare"])
    row["severity_level"] = str(severity["level"])
    for level in SEVERITY_LEVELS:
        row[f"p_severity__{level}"] = float(severity["probabilities"][level])
    row["p_high_or_critical"] = float(sum(severity["probabilities"][lv] for lv in SEVERE_LEVELS))
    flagged = [str(e["code"]) for e in differential if e.get("must_not_miss")]
    row["must_not_miss"] = "|".join(flagged)
    row["error"] = None
    return row


def _score_one_batch(
    predictor: Any,
    tables: dict[str, pd.DataFrame],
    ids: list[str],
    top_k: int,
    top_n: int,
    *,
    rows: dict[str, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``ids`` (their detail rows given by ``rows``, else looked up); a batch
    the predictor refuses is scored encounter by encounter."""
    try:
        batch = batch_tables(tables, ids) if rows is None else sliced_tables(tables, ids, rows)
        outputs = predictor.predict_tables(batch, top_k=top_k, explain=False)
        return [output_row(output, top_n) for output in outputs]
    except ValueError as error:
        if len(ids) == 1:
            return [{"error": f"encounter {ids[0]}: {error}"}]
    return [_score_one_batch(predictor, tables, [e], top_k, top_n)[0] for e in ids]


def score_tables(
    predictor: Any,
    tables: dict[str, pd.DataFrame],
    *,
    top_k: int,
    top_n: int,
    batch_size: int,
    progress: bool = True,
) -> pd.DataFrame:
    """One screening row per row of ``tables["encounters"]``, in that order, scored in
    batches of ``batch_size`` encounters (a tqdm bar when ``progress``)."""
    if top_n > top_k:
        raise ValueError(f"screen.top_n ({top_n}) must not exceed screen.top_k ({top_k})")
    if batch_size < 1:
        raise ValueError(f"screen.batch_size must be >= 1, got {batch_size}")
    encounters = tables["encounters"].reset_index(drop=True)
    ids = encounters["encounter_id"].astype(str).tolist()
    tables = {**tables, "encounters": encounters.assign(encounter_id=ids)}
    for name in DETAIL_TABLES:
        tables[name] = tables[name].assign(encounter_id=tables[name]["encounter_id"].astype(str))
    rows: list[dict[str, Any]] = []
    starts: Iterable[int] = range(0, len(ids), batch_size)
    if progress:
        starts = tqdm(starts, desc="screen", unit="batch", total=-(-len(ids) // batch_size))
    positions = batch_rows(tables, ids, batch_size)
    for start in starts:
        batch = (
            None if positions is None else {n: positions[n][start // batch_size] for n in positions}
        )
        rows += _score_one_batch(
            predictor, tables, ids[start : start + batch_size], top_k, top_n, rows=batch
        )
    frame = pd.DataFrame(rows, columns=screening_columns(top_n)[3:])
    for column in frame.columns:  # typed even when every row was refused
        numeric = column.startswith("p_") or column.endswith("_probability")
        frame[column] = frame[column].astype(float if numeric else "string")
    keys = pd.DataFrame(
        {
            "encounter_id": pd.array(ids, dtype="string"),
            "patient_id": encounters["patient_id"].astype(str).astype("string"),
            "encounter_start": pd.to_datetime(encounters["start"], utc=True),
        }
    )
    return pd.concat([keys, frame], axis=1)[screening_columns(top_n)]
