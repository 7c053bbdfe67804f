"""The content key of an encounter (``retrain.comparison.content_key``): what makes two
feature rows "the same encounter" when their ids differ, e.g. an encounter sent back
through the service as clinician feedback under ``feedback-<request_id>``.

Used by the comparison (an evaluation encounter a feedback encounter repeats is left
out) and by ``retrain_check`` (a feedback encounter that repeats an exported one is a
duplicate or a label conflict, ``feedback_duplicates.py``).
"""

from __future__ import annotations

import pandas as pd


def content_keys(frame: pd.DataFrame, columns: list[str], decimals: int) -> pd.Series:
    """One hash per row of ``columns`` rounded to ``decimals`` (missing values hash
    alike): rows with equal keys describe the same findings and measurements."""
    values = frame[columns].astype("float64").round(decimals)
    return pd.util.hash_pandas_object(values, index=False)


def content_columns(split: pd.DataFrame, seen: pd.DataFrame, prefixes: list[str]) -> list[str]:
    """The feature columns both frames have whose name starts with one of ``prefixes``."""
    return sorted(c for c in split.columns if c.startswith(tuple(prefixes)) and c in seen)
