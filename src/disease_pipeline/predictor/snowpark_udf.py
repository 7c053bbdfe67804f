"""The screen as a Snowpark vectorised (pandas) UDF: Snowflake scores the encounters
where they are, with the predictor and :func:`~disease_pipeline.predictor.screening.score_tables`
— the code the single-process screen calls.

One UDF row is one encounter: the encounter as a JSON object (its warehouse row and the
patient's ``sex``) and the rows of each detail table (``symptoms``, ``vitals``, ``labs``,
``diagnoses``) as JSON arrays of objects — in SQL ``TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(*))``
and ``TO_JSON(ARRAY_AGG(OBJECT_CONSTRUCT_KEEP_NULL(*)))`` grouped by ``encounter_id``
(docs/scale.md). Snowflake hands the UDF batches of up to ``max_batch_size`` rows as
pandas Series; :func:`screen_batch` rebuilds the predictor's tables of the batch and
returns, per encounter, its screening row as a JSON object (``PARSE_JSON`` in SQL).

:class:`UdfRegistration` is what ``session.udf.register`` needs (input and return types,
packages, staged imports: the predictor file and this package as a zip), built without
Snowpark; ``pipelines/screen/snowpark.py`` turns it into Snowpark's arguments and
registers it (the ``snowpark`` extra), so this module needs the model's packages only.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from disease_pipeline.predictor.screening import DETAIL_TABLES, score_tables

#: the UDF's arguments, in order: the encounter object, then each detail table's array
ARGUMENTS = ("encounter", *DETAIL_TABLES)
#: the Snowflake type of every argument and of the result (JSON text)
SQL_TYPE = "STRING"

#: predictors of this Python process, by the staged file's name (loaded once per process)
_PREDICTORS: dict[str, Any] = {}


def _lower(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON row with lower-case keys (Snowflake upper-cases unquoted column names)."""
    return {str(key).lower(): value for key, value in row.items()}


def batch_tables(
    encounter: pd.Series, details: dict[str, pd.Series], columns: dict[str, list[str]]
) -> dict[str, pd.DataFrame]:
    """The predictor's tables of a UDF batch: ``encounter`` (JSON objects) and, per
    detail table, JSON arrays of its rows; ``columns`` are each table's columns (a
    table without rows in the batch still has them; keys in any case)."""
    encounters = pd.DataFrame(
        [_lower(json.loads(t)) for t in encounter], columns=columns["encounters"]
    )
    encounters["encounter_id"] = encounters["encounter_id"].astype(str)
    encounters["start"] = pd.to_datetime(encounters["start"], utc=True, format="ISO8601")
    tables = {"encounters": encounters}
    for name in DETAIL_TABLES:
        rows = [_lower(row) for text in details[name] if text for row in json.loads(text) or []]
        frame = pd.DataFrame(rows, columns=columns[name])
        tables[name] = frame.assign(encounter_id=frame["encounter_id"].astype(str))
    return tables


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def screen_batch(
    predictor: Any,
    encounter: pd.Series,
    details: dict[str, pd.Series],
    *,
    columns: dict[str, list[str]],
    top_k: int,
    top_n: int,
    batch_size: int,
) -> pd.Series:
    """The UDF body: one JSON screening row (the columns of ``screening_columns``) per
    input encounter, in input order, from :func:`score_tables`."""
    tables = batch_tables(encounter, details, columns)
    scored = score_tables(
        predictor, tables, top_k=top_k, top_n=top_n, batch_size=batch_size, progress=False
    )
    records = scored.astype(object).to_dict(orient="records")
    texts = [json.dumps({k: _json_value(v) for k, v in row.items()}) for row in records]
    return pd.Series(texts, index=encounter.index, dtype=object)


def staged_predictor(file_name: str, directory: str | None = None) -> Any:
    """The predictor pickled in ``file_name``, from the UDF's import directory (Snowflake
    sets ``sys._xoptions["snowflake_import_directory"]``) or ``directory``; unpickled
    once per Python process."""
    if file_name not in _PREDICTORS:
        folder = directory or sys._xoptions.get("snowflake_import_directory", ".")
        with open(os.path.join(folder, file_name), "rb") as handle:
            _PREDICTORS[file_name] = pickle.load(handle)  # noqa: S301 - our own staged model
    return _PREDICTORS[file_name]


def make_handler(
    model_file: str,
    columns: dict[str, list[str]],
    options: dict[str, int],
    directory: str | None = None,
) -> Callable[..., pd.Series]:
    """The vectorised UDF: ``(encounter, symptoms, vitals, labs, diagnoses)`` Series →
    JSON screening rows (``options``: ``top_k``, ``top_n``, ``batch_size``)."""
    columns = {name: list(cols) for name, cols in columns.items()}
    options = {key: int(options[key]) for key in ("top_k", "top_n", "batch_size")}

    def screen(encounter: pd.Series, *details: pd.Series) -> pd.Series:
        predictor = staged_predictor(model_file, directory)
        frames = dict(zip(DETAIL_TABLES, details, strict=True))
        return screen_batch(predictor, encounter, frames, columns=columns, **options)

    return screen


@dataclass(frozen=True)
class UdfRegistration:
    """What ``session.udf.register`` receives, as plain values (SQL type names)."""

    name: str
    handler: Callable[..., pd.Series]
    input_types: tuple[str, ...]
    return_type: str
    packages: tuple[str, ...]
    imports: tuple[str, ...]
    stage_location: str
    max_batch_size: int


def build_registration(
    *,
    params: dict[str, Any],
    screen: dict[str, Any],
    columns: dict[str, list[str]],
    packages: list[str],
) -> UdfRegistration:
    """The registration of ``screen_snowpark`` (``params``: ``udf_name``, ``stage``,
    ``model_file``, ``code_archive``, ``max_batch_size``) with the ``screen`` block's
    ``top_k``, ``top_n`` and ``batch_size``; ``columns`` are the warehouse tables'
    columns (``encounters`` with ``sex``), ``packages`` the model's pinned packages."""
    stage = str(params["stage"]).rstrip("/")
    if not stage.startswith("@"):
        raise ValueError(f"screen_snowpark.stage: a stage name starting with '@', got {stage!r}")
    missing = [name for name in ("encounters", *DETAIL_TABLES) if name not in columns]
    if missing or "sex" not in columns["encounters"]:
        raise ValueError(f"snowpark columns: missing tables {missing} or encounters.sex")
    unpinned = [p for p in packages if "==" not in p]
    if unpinned:
        raise ValueError(f"snowpark packages must be pinned (name==version): {unpinned}")
    handler = make_handler(params["model_file"], columns, screen)
    return UdfRegistration(
        name=str(params["udf_name"]),
        handler=handler,
        input_types=(SQL_TYPE,) * len(ARGUMENTS),
        return_type=SQL_TYPE,
        packages=tuple(packages),
        imports=(f"{stage}/{params['model_file']}", f"{stage}/{params['code_archive']}"),
        stage_location=stage,
        max_batch_size=int(params["max_batch_size"]),
    )
