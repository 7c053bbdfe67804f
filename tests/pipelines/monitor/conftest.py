"""A real predictor (tests/predictor/conftest.py: built on 260 synthetic patients), its
training rows and test-split predictions, and a replay of held-out encounters through
the service's code path into a prediction log and feedback table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from disease_pipeline.knowledge.catalogue import load_lab_table
from disease_pipeline.pipelines.evaluation.scoring import modality_patterns
from disease_pipeline.pipelines.monitor.replay import Replayer, tables_to_records
from tests.predictor.conftest import labelled_matrix, predictor, predictor_tables  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
WINDOW_END = datetime(2026, 6, 8, tzinfo=UTC)


def monitor_params(**changes) -> dict:
    raw = yaml.safe_load((ROOT / "conf/base/parameters_monitor.yml").read_text())["monitor"]
    return raw | {"window_end": WINDOW_END.isoformat(), "n_boot": 100} | changes


def subset(tables: dict, ids: list[str]) -> dict:
    return {
        name: frame[frame["encounter_id"].astype(str).isin(ids)]
        if "encounter_id" in frame
        else frame
        for name, frame in tables.items()
    }


def with_units(tables: dict) -> dict:
    """The synthetic vitals and labs carry no unit: give them their canonical unit, as
    a client sending them to the service must."""
    canonical = load_lab_table().set_index("loinc")["canonical_unit"]
    out = dict(tables)
    for name in ("vitals", "labs"):
        frame = tables[name].copy()
        blank = frame["unit"].fillna("").eq("")
        frame.loc[blank, "unit"] = frame.loc[blank, "loinc"].map(canonical)
        out[name] = frame
    return out


def reference_predictions_of(predictor, tables: dict, ids: list[str]) -> pd.DataFrame:  # noqa: F811
    """``model_output_test_predictions`` of ``ids`` (the columns the monitor reads)."""
    part = subset(tables, ids)
    encounters = part["encounters"].reset_index(drop=True)
    outputs = predictor.predict_tables(part, top_k=10, explain=False)
    records, labels = tables_to_records(part)
    frame = pd.DataFrame(
        {
            "encounter_id": encounters["encounter_id"].astype(str),
            "label_disease": labels,
            "sex": [r.sex for r in records],
            "age_years": encounters["age_years"],
            "modality": modality_patterns(part, encounters["encounter_id"].tolist()).to_numpy(),
            "ranked_codes": [[d["code"] for d in o["differential"]] for o in outputs],
            "ranked_probabilities": [
                [d["probability"] for d in o["differential"]] for o in outputs
            ],
            "p_rare": [o["p_rare"] for o in outputs],
            "severity_pred": [o["severity"]["level"] for o in outputs],
        }
    )
    for code in predictor.common_classes:
        frame[f"p_common__{code}"] = 0.0
    return frame


@pytest.fixture(scope="session")
def split(predictor_tables, predictor):  # noqa: F811
    """Reference rows (a seeded random 70 %) and the other encounters' ids: two samples
    of one distribution (the synthetic data drifts over time, so a time split would
    show drift that is really there)."""
    matrix = labelled_matrix(predictor_tables, predictor.feature_builder)
    matrix = matrix.sample(frac=1.0, random_state=0).reset_index(drop=True)
    cut = int(len(matrix) * 0.7)
    return matrix.iloc[:cut], matrix.iloc[cut:]["encounter_id"].astype(str).tolist()


def replay_into(folder: Path, predictor, tables, ids, *, shift=None, feedback=True):  # noqa: F811
    """Replay the encounters ``ids`` (each twice, like a busy week) over the 7 days
    before ``WINDOW_END``; ``shift(record) -> record`` changes them first."""
    records, labels = tables_to_records(with_units(subset(tables, ids)))
    records, labels = records * 2, labels * 2
    if shift is not None:
        records = [shift(r) for r in records]
    if not feedback:
        labels = [""] * len(labels)
    rng = np.random.default_rng(0)
    offsets = np.sort(rng.uniform(0, 7 * 24 * 3600 - 1, size=len(records)))
    served = [WINDOW_END - timedelta(days=7) + timedelta(seconds=float(s)) for s in offsets]
    replayer = Replayer.create(predictor, folder / "warehouse.duckdb", folder)
    answers = list(replayer.replay(records, labels, served, batch=1))
    replayer.close()
    return folder / "warehouse.duckdb", answers
