"""The monitoring window of the prediction log, and the model features of its records.

The log keeps each patient's checked record as the service gave it to the model; the
features are rebuilt by the champion's own ``FeatureBuilder.transform`` on the
warehouse-shaped tables of those records, which is what ``predict_tables`` does in the
service, so the drift is measured on the features the model saw.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.records import PatientRecord, records_to_tables
from disease_pipeline.serving.prediction_log import LATER_COLUMNS, PREDICTION_LOG_COLUMNS

logger = logging.getLogger(__name__)

#: records featurised per call (bounds the memory of the intermediate tables)
FEATURE_BLOCK = 5000


def window_bounds(params: dict[str, Any], now: datetime | None = None) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC: ``window_end`` (ISO time, null: now) minus ``window_days``."""
    end_raw = params.get("window_end")
    end = pd.Timestamp(end_raw).to_pydatetime() if end_raw else (now or datetime.now(UTC))
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    days = float(params["window_days"])
    if days <= 0:
        raise ValueError(f"monitor.window_days must be > 0 (got {days})")
    return end - timedelta(days=days), end


def select_window(
    prediction_log: pd.DataFrame | None, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The log rows with ``start <= logged_at < end`` and the window as ISO strings.
    No log yet (None) gives an empty window."""
    start, end = window_bounds(params)
    if prediction_log is None:
        prediction_log = pd.DataFrame(columns=list(PREDICTION_LOG_COLUMNS))
    prediction_log = prediction_log.assign(
        **{c: None for c in LATER_COLUMNS if c not in prediction_log.columns}
    )
    missing = set(PREDICTION_LOG_COLUMNS) - set(prediction_log.columns)
    if missing:
        raise ValueError(f"prediction_log lacks columns {sorted(missing)}")
    stamps = pd.to_datetime(prediction_log["logged_at"], utc=True)
    window = prediction_log[(stamps >= start) & (stamps < end)].copy()
    window["logged_at"] = pd.to_datetime(window["logged_at"], utc=True)
    logger.info("monitor: %d logged patients from %s to %s", len(window), start, end)
    return window.reset_index(drop=True), {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
    }


def live_features(
    window_log: pd.DataFrame, feature_builder: Any, params: dict[str, Any]
) -> pd.DataFrame:
    """Model features of the window's predicted patients (one row per ``request_id``,
    columns ``feature_builder.feature_names`` plus ``modality``): of all of them, or of
    a seeded random sample of ``max_rows`` (what the drift statistics use anyway)."""
    predicted = window_log[window_log["status"] == "predicted"]
    if len(predicted) > int(params["max_rows"]):
        predicted = predicted.sample(n=int(params["max_rows"]), random_state=int(params["seed"]))
    names = list(feature_builder.feature_names)
    if predicted.empty:
        return pd.DataFrame(columns=[*names, "modality"])
    blocks = []
    for first in tqdm(range(0, len(predicted), FEATURE_BLOCK), desc="monitor: features"):
        part = predicted.iloc[first : first + FEATURE_BLOCK]
        records = [
            _as_served(PatientRecord.model_validate_json(text), rid, logged_at)
            for text, rid, logged_at in zip(
                part["record"], part["request_id"], part["logged_at"], strict=True
            )
        ]
        tables = records_to_tables(records)
        features = feature_builder.transform(tables)
        features = features.reindex(pd.Index(part["request_id"].astype(str)))[names]
        blocks.append(features.astype(float))
    frame = pd.concat(blocks)
    frame["modality"] = predicted.set_index("request_id").loc[frame.index, "modality"].to_numpy()
    return frame


def _as_served(record: PatientRecord, request_id: str, logged_at: Any) -> PatientRecord:
    """The record keyed by its request id; without an encounter date it is dated when it
    was served (the service dated it "now", which the season features read)."""
    date = record.encounter_date or pd.Timestamp(logged_at).to_pydatetime()
    return record.model_copy(update={"encounter_id": request_id, "encounter_date": date})
