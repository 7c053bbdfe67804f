"""Nodes of the ``screen`` pipeline: the encounters of a time window, scored by the
served predictor in batches, stamped with the model and data versions, and the alerts
their rows raise."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from disease_pipeline.knowledge.catalogue import load_common_diseases
from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.pipelines.screen.alerts import raise_alerts, webhook_payloads
from disease_pipeline.pipelines.screen.spark_window import is_spark_frame, spark_window_tables
from disease_pipeline.predictor.screening import DETAIL_TABLES, score_tables

logger = logging.getLogger(__name__)


def _utc(value: Any, field: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{field}: {value!r} is not a date or date-time ({error})") from error
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def resolve_window(window: dict[str, Any], now: datetime | None = None) -> dict[str, str]:
    """``{start, end}`` (ISO, UTC) of ``screen.window``: ``end`` (null = now) and
    either ``start`` or ``days`` before ``end``; encounters with start <= time < end."""
    end = _utc(window.get("end") or now or datetime.now(UTC), "screen.window.end")
    if window.get("start") is not None:
        start = _utc(window["start"], "screen.window.start")
    elif window.get("days") is not None:
        days = float(window["days"])
        if days <= 0:
            raise ValueError(f"screen.window.days: must be > 0, got {days}")
        start = end - pd.Timedelta(days=days)
    else:
        raise ValueError("screen.window: give 'start' or 'days'")
    if start >= end:
        raise ValueError(f"screen.window: start {start} is not before end {end}")
    return {"start": start.isoformat(), "end": end.isoformat()}


def window_tables(
    *,
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    vitals: pd.DataFrame,
    labs: pd.DataFrame,
    diagnoses: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The predictor's tables (``assemble_feature_tables``) for the encounters of the
    window, and the window itself. Given Spark DataFrames (``--env spark`` reads the
    warehouse's Parquet export), the window is selected by Spark
    (:func:`~disease_pipeline.pipelines.screen.spark_window.spark_window_tables`) and
    the tables stay Spark DataFrames."""
    window = resolve_window(params["window"])
    if is_spark_frame(encounters):
        frames = {"patients": patients, "encounters": encounters, "symptoms": symptoms}
        frames |= {"vitals": vitals, "labs": labs, "diagnoses": diagnoses}
        logger.info("screen window %s to %s: selected by Spark", window["start"], window["end"])
        return spark_window_tables(**frames, window=window), window
    tables = assemble_feature_tables(
        patients=patients,
        encounters=encounters,
        symptoms=symptoms,
        vitals=vitals,
        labs=labs,
        diagnoses=diagnoses,
    )
    enc = tables["encounters"]
    inside = (enc["start"] >= pd.Timestamp(window["start"])) & (
        enc["start"] < pd.Timestamp(window["end"])
    )
    enc = enc[inside].sort_values(["start", "encounter_id"], kind="stable")
    enc = enc.drop_duplicates("encounter_id").reset_index(drop=True)
    ids = set(enc["encounter_id"].astype(str))
    out = {"encounters": enc}
    for name in DETAIL_TABLES:
        frame = tables[name]
        out[name] = frame[frame["encounter_id"].astype(str).isin(ids)].reset_index(drop=True)
    logger.info("screen window %s to %s: %d encounters", window["start"], window["end"], len(enc))
    return out, window


def model_version(fingerprint: dict[str, dict[str, Any]], params: dict[str, Any]) -> str:
    """``params.model.version`` when set (e.g. the registered champion's version), else
    ``sha256:<first 12 hex>`` of the predictor file."""
    configured = (params.get("model") or {}).get("version")
    if configured:
        return str(configured)
    if len(fingerprint) != 1:
        raise ValueError(f"screen model fingerprint: expected one file, got {list(fingerprint)}")
    return "sha256:" + next(iter(fingerprint.values()))["sha256"][:12]


def data_version(metadata: pd.DataFrame) -> str:
    """The warehouse's data version (``metadata.data_version``, one value)."""
    if "data_version" not in metadata.columns or metadata.empty:
        raise ValueError("prm_metadata: no 'data_version' (run the anonymization pipeline)")
    versions = metadata["data_version"].dropna().unique()
    if len(versions) != 1:
        raise ValueError(f"prm_metadata.data_version: expected one value, got {len(versions)}")
    return str(versions[0])


def score_window(
    *,
    predictor: Any,
    tables: dict[str, pd.DataFrame],
    window: dict[str, str],
    model: str,
    data: str,
    params: dict[str, Any],
    engine: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The screening rows of the window's encounters, with the run, model and data
    versions (``screen.top_k``, ``screen.top_n``, ``screen.batch_size``), scored in this
    process or, with ``screen_engine.name: spark``, by Spark (``spark.py``)."""
    options = {
        "top_k": int(params["top_k"]),
        "top_n": int(params["top_n"]),
        "batch_size": int(params["batch_size"]),
    }
    engine = engine or {"name": "pandas"}
    if engine.get("name", "pandas") == "pandas":
        scored = score_tables(
            predictor, tables, progress=bool(params.get("progress", True)), **options
        )
    elif engine["name"] == "spark":
        scored = score_on_spark(predictor, tables, engine.get("spark") or {}, options)
    else:
        raise ValueError(f"screen_engine.name: {engine['name']!r} is not 'pandas' or 'spark'")
    errors = int(scored["error"].notna().sum())
    if errors:
        logger.warning("screen: %d of %d encounters refused (see 'error')", errors, len(scored))
    scored.insert(0, "screen_run", uuid.uuid4().hex)
    scored.insert(1, "screened_at", pd.Timestamp(datetime.now(UTC)))
    scored["window_start"] = pd.Timestamp(window["start"])
    scored["window_end"] = pd.Timestamp(window["end"])
    scored["model_name"] = str((params.get("model") or {}).get("name", "disease_pipeline"))
    scored["model_version"] = model
    scored["data_version"] = data
    return scored


def score_on_spark(
    predictor: Any,
    tables: dict[str, pd.DataFrame],
    spark: dict[str, Any],
    options: dict[str, int],
) -> pd.DataFrame:
    """The rows of :func:`score_tables`, computed by Spark over ``spark.partitions``
    partitions on ``spark.master`` (``spark.conf``: Spark settings). ``tables`` are
    pandas frames (sent to Spark) or Spark DataFrames (scored where they are); the rows
    come in the pandas path's order (encounter start, then id)."""
    from disease_pipeline.pipelines.screen.spark import (  # pyspark only when asked for
        pandas_to_spark,
        score_spark,
        spark_session,
    )

    session = spark_session(spark.get("master", "local[2]"), **(spark.get("conf") or {}))
    on_spark = is_spark_frame(tables["encounters"])
    frames = tables if on_spark else pandas_to_spark(session, tables)
    rows = score_spark(
        session, predictor, frames, partitions=int(spark.get("partitions", 4)), **options
    ).toPandas()
    rows["encounter_start"] = pd.to_datetime(rows["encounter_start"]).dt.tz_localize("UTC")
    if on_spark:
        rows = rows.sort_values(["encounter_start", "encounter_id"], kind="stable")
        rows = rows.reset_index(drop=True)
    else:
        order = tables["encounters"]["encounter_id"].astype(str)
        rows = rows.set_index("encounter_id").loc[order].reset_index()
    for column in rows.columns:
        if rows[column].dtype == object:
            rows[column] = rows[column].astype("string")
    logger.info("screen: %d encounters scored on Spark %s", len(rows), session.sparkContext.master)
    return rows


def append_screening(previous: pd.DataFrame | None, scored: pd.DataFrame) -> pd.DataFrame:
    """The screening history: earlier rows, minus encounters this run re-scored with
    the same model version, then this run's rows."""
    if previous is None or previous.empty:
        return scored
    again = previous.set_index(["encounter_id", "model_version"]).index.isin(
        scored.set_index(["encounter_id", "model_version"]).index
    )
    kept = previous[~again]
    if kept.empty:
        return scored
    return pd.concat([kept, scored], ignore_index=True)[scored.columns]


def screenings_by_date(scored: pd.DataFrame) -> pd.DataFrame:
    """The run's screening rows with ``encounter_date`` (``yyyy-mm-dd``, UTC), the
    partition column of their Parquet copy (``model_output_screenings_by_date``)."""
    dates = pd.to_datetime(scored["encounter_start"], utc=True).dt.strftime("%Y-%m-%d")
    return scored.assign(encounter_date=dates.astype("string"))


def must_not_miss_codes() -> list[str]:
    """ICD-10 codes the knowledge catalogue marks ``must_not_miss`` (time-critical)."""
    catalogue = load_common_diseases()
    return sorted(catalogue.loc[catalogue["must_not_miss"].notna(), "icd10"].astype(str))


def screen_alerts(
    scored: pd.DataFrame,
    previous: pd.DataFrame | None,
    operating: dict[str, Any] | None,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """The alerts table, the webhook messages of the new alerts and a run summary."""
    table, new = raise_alerts(scored, previous, operating, must_not_miss_codes(), params)
    summary = {
        "encounters": len(scored),
        "refused": int(scored["error"].notna().sum()),
        "new_alerts": len(new),
        "new_alerts_by_rule": {str(k): int(v) for k, v in new["rule"].value_counts().items()},
        "alerts_total": len(table),
        "model_version": scored["model_version"].iloc[0] if len(scored) else None,
        "data_version": scored["data_version"].iloc[0] if len(scored) else None,
    }
    logger.info("screen: %d new alerts %s", len(new), summary["new_alerts_by_rule"])
    return table, webhook_payloads(new), summary
