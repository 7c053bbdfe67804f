"""Plain JSON types for predictions, model summaries and reports.

One conversion for the whole project: numpy scalars and arrays become Python numbers
and lists, pydantic models their JSON dump, DataFrames lists of records, tuples lists,
keys strings, and NaN or infinite numbers ``None`` (JSON has no NaN). It round-trips
through ``orjson``, which is much faster than walking the structure in Python.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy values orjson does not take natively
        return value.tolist()
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def json_bytes(value: Any) -> bytes:
    """``value`` as UTF-8 JSON text, with the conversions of the module docstring."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def json_types(value: Any) -> Any:
    """``value`` made of plain JSON types only (see the module docstring)."""
    return orjson.loads(json_bytes(value))
