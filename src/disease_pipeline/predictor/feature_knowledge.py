"""The knowledge block of the feature matrix: the catalogue scorer's log posterior.

Columns ``knowledge_<ICD-10>`` hold the :class:`CommonKnowledgeScorer` log posterior of
each catalogue disease (symptoms, age, sex, season, vitals, labs), and ``measured_vitals``
/ ``measured_labs`` say whether the encounter has any vital sign / lab result: a model
can tell "not measured" from "normal", and the knowledge blend picks its weights by
which modalities were measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer, str_values

KNOWLEDGE_PREFIX = "knowledge_"
MODALITY_COLUMNS = ("measured_vitals", "measured_labs")
#: modality patterns, by (vitals measured, labs measured)
PATTERNS = {
    (False, False): "symptoms_only",
    (True, False): "vitals",
    (False, True): "labs",
    (True, True): "all",
}


def knowledge_column(code: str) -> str:
    """``J18.9`` → ``knowledge_J18_9``."""
    return KNOWLEDGE_PREFIX + code.replace(".", "_")


def knowledge_names(scorer: CommonKnowledgeScorer) -> list[str]:
    """Column names of the block, in :func:`knowledge_block` order."""
    return [*(knowledge_column(c) for c in scorer.classes), *MODALITY_COLUMNS]


def _has_value(values: pd.Series) -> np.ndarray:
    """Rows whose value is a number (not null, not text), as a boolean array."""
    if pd.api.types.is_float_dtype(values.dtype):
        return ~np.isnan(values.to_numpy(dtype=float, na_value=np.nan))
    return pd.to_numeric(values, errors="coerce").notna().to_numpy()


def measured(tables: dict[str, pd.DataFrame], table: str, ids: pd.Index) -> np.ndarray:
    """1.0 where the encounter has at least one row with a value in ``tables[table]``."""
    frame = tables.get(table)
    if frame is None or not len(frame):
        return np.zeros(len(ids))
    seen = set(_id_strings(frame["encounter_id"])[_has_value(frame["value"])])
    return np.fromiter((e in seen for e in _id_strings(ids)), dtype=float, count=len(ids))


def _id_strings(ids: pd.Index | pd.Series) -> np.ndarray:
    """Encounter ids as a numpy array of strings (as ``.astype(str)`` spells them)."""
    return str_values(ids)


def knowledge_block(
    scorer: CommonKnowledgeScorer, tables: dict[str, pd.DataFrame], ids: pd.Index
) -> np.ndarray:
    """``(len(ids), n_classes + 2)``: log posterior per disease, then the modality flags.

    ``ids`` are the encounter ids in feature-matrix order."""
    enc = tables["encounters"]
    wanted_ids = _id_strings(ids)
    given = _id_strings(enc["encounter_id"])
    if len(given) != len(wanted_ids) or (given != wanted_ids).any():
        wanted = pd.Index(wanted_ids, name="encounter_id")
        enc = enc.assign(encounter_id=enc["encounter_id"].astype(str))
        enc = enc.drop_duplicates("encounter_id").set_index("encounter_id").reindex(wanted)
        enc = enc.reset_index()
    log_post = scorer.log_posterior({**tables, "encounters": enc})
    flags = [measured(tables, table, ids) for table in ("vitals", "labs")]
    return np.column_stack([log_post, *flags])


def modality_pattern(X: pd.DataFrame) -> np.ndarray:
    """Pattern name of each row (``symptoms_only``, ``vitals``, ``labs``, ``all``); rows
    without the modality columns count as ``all``."""
    if not all(c in X.columns for c in MODALITY_COLUMNS):
        return np.full(len(X), "all", dtype=object)
    vitals = X["measured_vitals"].to_numpy(float) > 0.5
    labs = X["measured_labs"].to_numpy(float) > 0.5
    return np.asarray([PATTERNS[bool(v), bool(lab)] for v, lab in zip(vitals, labs, strict=True)])
