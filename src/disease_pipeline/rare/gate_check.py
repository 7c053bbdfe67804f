"""The P(rare) gate and the full served differential on real rare patients.

Registry phenopackets carry HPO terms, age and sex but no vitals or labs. Sent through
the fitted predictor as a clinician's request would be (``predict_tables``, the path
``/predict_batch`` takes after its input checks), each case gets P(rare) from the gate
and a differential that mixes common and rare candidates. :func:`registry_gate_check`
reports the share of cases with P(rare) at or above a threshold and how often the true
disease is in the served top k — for the evaluation pipeline to call (the predictor is
any object with ``predict_tables(tables, top_k=..., explain=...)``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import numpy as np
import pandas as pd

from disease_pipeline.rare.cases import Case
from disease_pipeline.records import PatientRecord, Symptom, records_to_tables

#: cases sent to the predictor together
GATE_BLOCK = 512
_SEXES = {"female", "male", "other"}


class TablePredictor(Protocol):
    """What the check needs of the predictor bundle."""

    def predict_tables(
        self, tables: dict[str, pd.DataFrame], top_k: int = 10, explain: bool = True
    ) -> list[dict[str, Any]]: ...


def case_record(case: Case) -> PatientRecord:
    """A registry case as the request a clinician would send (terms, age, sex only)."""
    symptoms = [Symptom(code=t) for t in case.present]
    symptoms += [Symptom(code=t, present=False) for t in case.excluded]
    age = case.age if case.age is not None and 0 <= case.age <= 120 else None
    return PatientRecord(
        encounter_id=case.case_id,
        age=age,
        sex=case.sex if case.sex in _SEXES else "unknown",
        symptoms=symptoms,
    )


def served_answers(
    predictor: TablePredictor, records: list[PatientRecord], top_k: int
) -> tuple[np.ndarray, list[list[str]]]:
    """P(rare) and the first ``top_k`` codes of the served differential of each record
    (sent :data:`GATE_BLOCK` at a time)."""
    p_rare: list[float] = []
    codes: list[list[str]] = []
    for start in range(0, len(records), GATE_BLOCK):
        tables = records_to_tables(records[start : start + GATE_BLOCK])
        for output in predictor.predict_tables(tables, top_k=top_k, explain=False):
            p_rare.append(float(output["p_rare"]))
            codes.append([str(d.get("code")) for d in output["differential"][:top_k]])
    return np.asarray(p_rare, dtype=float), codes


def registry_gate_check(
    predictor: TablePredictor,
    cases: list[Case],
    *,
    threshold: float = 0.5,
    top_k: int = 10,
) -> dict[str, Any]:
    """P(rare) of the gate and the served top-``top_k`` hit rate on registry ``cases``.

    Cases without a present term are skipped (a request needs a symptom). Returns
    ``{cases, share_p_rare_at_least, threshold, by_age, p_rare_quantiles,
    differential_top_k, top_k}`` (``by_age``: the share for cases with and without a
    recorded age) where ``differential_top_k`` is the share of cases whose true disease is
    among the first ``top_k`` entries of the served differential.
    """
    usable = [c for c in cases if c.present]
    records = [case_record(c) for c in usable]
    values, codes = served_answers(predictor, records, top_k)
    if not len(values):
        return {"cases": 0, "skipped": "no registry case with a present HPO term"}
    hits = [case.disease_id in listed for case, listed in zip(usable, codes, strict=True)]
    known = np.array([record.age is not None for record in records], dtype=bool)
    return {
        "cases": len(values),
        "threshold": threshold,
        "share_p_rare_at_least": round(float(np.mean(values >= threshold)), 4),
        # published cases often record no age; a gate that reads a missing age as "rare"
        # shows up as a gap between these two
        "by_age": {
            group: {
                "cases": int(mask.sum()),
                "share_p_rare_at_least": (
                    round(float(np.mean(values[mask] >= threshold)), 4) if mask.any() else None
                ),
            }
            for group, mask in (("recorded", known), ("unknown", ~known))
        },
        "p_rare_quantiles": {
            f"q{int(q * 100):02d}": round(float(np.quantile(values, q)), 4)
            for q in (0.05, 0.25, 0.5, 0.75)
        },
        "top_k": top_k,
        "differential_top_k": round(float(np.mean(hits)), 4),
    }


def in_gate_share(disease_id: str, share: float) -> bool:
    """Whether ``disease_id`` is among the registry diseases whose cases train the P(rare)
    gate (a stable hash, the same in every process); the others stay unseen for the
    registry check of the served path."""
    digest = hashlib.sha256(str(disease_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
