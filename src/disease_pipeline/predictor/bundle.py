"""``DiseasePredictor``: the one fitted bundle called by evaluation and serving.

It holds the feature builder, the common-disease, gate and severity models, their
calibrators and (optionally) a rare-disease ranker, and turns feature rows, warehouse
tables or patient records into one prediction per encounter:

- ``differential``: ranked ``{code, name, category, probability, interval}``. For a
  common disease d, P(d) = (1 − P(rare)) · P(d | common); the rare share P(rare) is one
  candidate ``RARE`` ("Rare disease (unspecified)") or, with a ``rare_model``, split
  among its candidates in proportion to their scores. Over all candidates the
  probabilities sum to 1 (``top_k`` only truncates the list).
- ``interval``: from the calibrators' evidence counts (see ``calibrators``); a common
  disease's bounds combine those of P(d | common) and P(rare):
  [(1 − hi_rare) · lo_d, (1 − lo_rare) · hi_d].
- ``p_rare``, ``severity`` ``{level, probabilities}``, and ``explanation``: the features
  that moved the top candidate most (XGBoost TreeSHAP contributions, ``pred_contribs``),
  in clinical words, each ``increases`` or ``decreases``.
- ``must_not_miss`` / ``rule_out`` on every entry: a time-critical disease of the
  catalogue that the knowledge posterior keeps plausible is listed (after the ranked
  ``top_k`` when it is not among them) and flagged, with what would rule it out; the
  severity's "low" is then capped (``predictor.red_flags``).
- with an explanation and tables, ``explanation.findings`` (the reported findings that
  moved the top candidate, knowledge likelihood ratios) and ``explanation.recommended_tests``
  (the vitals/labs with the largest expected information gain over the differential).
- with an explanation, each differential entry's ``phenotypes``: for a rare candidate
  of the rare model, the patient's phenotypes it matches, its frequent phenotypes the
  patient does not report and the evidence against it (None for other entries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.predictor.explanations import top_contributions
from disease_pipeline.predictor.records_check import normalise_records
from disease_pipeline.predictor.red_flags import (
    explain_with_knowledge,
    flag_must_not_miss,
    knowledge_posterior,
)
from disease_pipeline.records import PatientRecord, records_to_tables

RARE_SLOT_CODE = "RARE"
RARE_SLOT_NAME = "Rare disease (unspecified)"
#: said when no feature moved the top candidate (its trees never split on this patient)
NO_CONTRIBUTION_NOTE = (
    "no feature of this patient moved this probability: it reflects how often the "
    "disease occurred among similar training cases"
)
#: said when the top candidate is a catalogue disease the learned model never saw
KNOWLEDGE_ONLY_NOTE = (
    "ranked by the catalogue knowledge alone (the learned model has not seen this "
    "disease): see the findings"
)
#: rows per block when computing explanations (bounds the contribution tensor's memory)
EXPLAIN_BLOCK = 256


class RareRanker(Protocol):
    """What a rare-disease model must offer to plug into the predictor. It may also
    offer ``explain_candidates(tables, features, disease_ids)``: per row, a dict (or
    None) for each named candidate, shown as that candidate's ``phenotypes``."""

    def rank(
        self, tables: dict[str, pd.DataFrame] | None, features: pd.DataFrame
    ) -> list[list[tuple[str, str, float]]]:
        """One list per row of ``features`` of ``(disease_id, name, score)``, score >= 0;
        ``tables`` are the warehouse-shaped tables when available (None for bare rows)."""
        ...


@dataclass
class DiseasePredictor:
    """Feature builder + models + calibrators (+ optional rare ranker); see module docstring."""

    feature_builder: Any
    common_model: Any
    gate_model: Any
    severity_model: Any
    calibrators: dict[str, Any] = field(default_factory=dict)
    disease_names: dict[str, str] = field(default_factory=dict)
    feature_labels: dict[str, str] = field(default_factory=dict)
    rare_model: RareRanker | None = None
    knowledge_blend: Any = None
    knowledge_scorer: Any = None
    must_not_miss: dict[str, float] = field(default_factory=dict)
    interval_level: float = 0.95
    explain_top_n: int = 5
    #: below this P(rare) the rare model is not asked: the unspecified rare slot stands in
    rare_rank_floor: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ facts
    @property
    def feature_names(self) -> list[str]:
        """Columns the builder produces (the models read a subset by name)."""
        return list(self.feature_builder.feature_names)

    @property
    def common_classes(self) -> list[str]:
        """ICD-10 codes of the common diseases, in column order of ``predict_arrays``:
        the common model's classes, then (with a knowledge blend) the catalogue diseases
        the model never saw."""
        blend = getattr(self, "knowledge_blend", None)
        if blend is not None:
            return list(blend.classes)
        return [str(c) for c in self.common_model.classes_]

    def supported_diseases(self) -> dict[str, str]:
        """Code → category of every disease the predictor can rank."""
        codes = dict.fromkeys(self.common_classes, "COMMON")
        rare_codes = getattr(self.rare_model, "disease_ids", None)
        codes |= dict.fromkeys(rare_codes or [RARE_SLOT_CODE], "RARE")
        return codes

    # ------------------------------------------------------------ probabilities
    def _calibrated(self, name: str, proba: np.ndarray) -> np.ndarray:
        calibrator = self.calibrators.get(name)
        return proba if calibrator is None else calibrator.transform(proba)

    def _interval(self, name: str, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calibrator = self.calibrators.get(name)
        if calibrator is None:
            return p, p
        return calibrator.interval(p, self.interval_level)

    def predict_arrays(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Calibrated probabilities as arrays: ``common`` (n, K) = P(d | common) in
        ``common_classes`` order, ``p_rare`` (n,), ``differential`` (n, K + 1) = the common
        diseases then the rare slot (rows sum to 1), ``severity`` (n, 4)."""
        common = self._calibrated("common", self.common_model.predict_proba(X))
        if getattr(self, "knowledge_blend", None) is not None:
            common = self.knowledge_blend.combine(X, common)
        p_rare = self._p_rare(X)
        severity = self._calibrated("severity", self.severity_model.predict_proba(X))
        levels = [str(c) for c in self.severity_model.classes_]
        severity = np.column_stack([severity[:, levels.index(level)] for level in SEVERITY_LEVELS])
        return {
            "common_classes": np.asarray(self.common_classes),
            "common": common,
            "p_rare": p_rare,
            "differential": np.column_stack([common * (1.0 - p_rare)[:, None], p_rare]),
            "severity_levels": np.asarray(SEVERITY_LEVELS),
            "severity": severity,
        }

    def rare_disease_probabilities(
        self,
        X: pd.DataFrame,
        disease_ids: list[str],
        tables: dict[str, pd.DataFrame] | None = None,
    ) -> np.ndarray:
        """``(len(X), len(disease_ids))``: P(rare) · P(d | rare) of each named rare
        disease for every row, over all rare candidates (not truncated to the listed
        differential); zeros without a rare model. For per-disease AUROC."""
        probabilities_of = getattr(self.rare_model, "probabilities_of", None)
        if probabilities_of is None:
            return np.zeros((len(X), len(disease_ids)))
        return self._p_rare(X)[:, None] * probabilities_of(tables, X, list(disease_ids))

    def _p_rare(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(rare disease) of each row (the gate model)."""
        gate = self._calibrated("gate", self.gate_model.predict_proba(X))
        return gate[:, list(self.gate_model.classes_).index("RARE")]

    # ------------------------------------------------------------------ outputs
    def predict_features(
        self,
        X: pd.DataFrame,
        top_k: int = 10,
        explain: bool = False,
        tables: dict[str, pd.DataFrame] | None = None,
    ) -> list[dict[str, Any]]:
        """One prediction dict per row of ``X`` (index = encounter id); see the module
        docstring. ``explain`` adds the explanation of the top candidate."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        arrays = self.predict_arrays(X)
        common, p_rare = arrays["common"], arrays["p_rare"]
        classes = self.common_classes
        order = np.argsort(-common, axis=1, kind="stable")[:, : min(top_k, common.shape[1])]
        p_given = np.take_along_axis(common, order, axis=1)
        lo_given, hi_given = self._interval("common", p_given)
        lo_rare, hi_rare = self._interval("gate", p_rare)
        p_common = (1.0 - p_rare)[:, None] * p_given
        lo_common = (1.0 - hi_rare)[:, None] * lo_given
        hi_common = (1.0 - lo_rare)[:, None] * hi_given
        ranked = self._rank_rare(X, tables, p_rare, p_common, top_k)
        outputs = []
        for i in range(len(X)):
            entries = [
                _entry(
                    classes[j],
                    self.disease_names.get(classes[j], classes[j]),
                    "COMMON",
                    p_common[i, m],
                    (lo_common[i, m], hi_common[i, m]),
                )
                for m, j in enumerate(order[i])
            ]
            entries += _rare_entries(
                ranked[i] if ranked else None, p_rare[i], lo_rare[i], hi_rare[i]
            )
            entries.sort(key=lambda e: -e["probability"])
            severity = arrays["severity"][i]
            outputs.append(
                {
                    "encounter_id": str(X.index[i]),
                    "differential": entries[:top_k],
                    "p_rare": float(p_rare[i]),
                    "severity": {
                        "level": SEVERITY_LEVELS[int(np.argmax(severity))],
                        "probabilities": dict(
                            zip(SEVERITY_LEVELS, map(float, severity), strict=True)
                        ),
                    },
                    "explanation": None,
                }
            )
        scorer = getattr(self, "knowledge_scorer", None)
        if scorer is not None:
            flag_must_not_miss(
                outputs,
                knowledge_posterior(scorer, X),
                scorer,
                dict(zip(classes, range(len(classes)), strict=True)),
                (1.0 - p_rare)[:, None] * common,
                p_rare=p_rare,
                **(getattr(self, "must_not_miss", None) or {}),
            )
        if explain:
            self._explain(X, outputs)
            self._explain_rare(X, tables, outputs)
            if scorer is not None and tables is not None:
                explain_with_knowledge(scorer, tables, outputs)
        return outputs

    def _rank_rare(
        self,
        X: pd.DataFrame,
        tables: dict[str, pd.DataFrame] | None,
        p_rare: np.ndarray,
        p_common: np.ndarray,
        top_k: int,
    ) -> list[list[tuple[str, str, float]]] | None:
        """The rare model's candidates of each row, asked only for the rows where a rare
        candidate can enter the top ``top_k``: a rare entry's probability is at most
        P(rare), so when P(rare) is below the k-th common probability the listed
        differential is the same without them (the bulk of common patients). Below
        ``rare_rank_floor`` the unspecified rare slot is listed instead of named
        candidates (a knowledge-anchored common differential is peaked, so its k-th
        probability is often tiny). When ``top_k`` leaves room beyond every common
        disease, rare candidates displace none of them and are always named."""
        if self.rare_model is None:
            return None
        floor = float(getattr(self, "rare_rank_floor", 0.0))
        if p_common.shape[1] >= top_k:
            needed = np.flatnonzero(p_rare >= np.maximum(p_common[:, top_k - 1], floor))
        else:
            needed = np.arange(len(X))
        ranked: list[list[tuple[str, str, float]]] = [[] for _ in range(len(X))]
        if len(needed):
            for i, candidates in zip(
                needed, self.rare_model.rank(tables, X.iloc[needed]), strict=True
            ):
                ranked[i] = candidates
        return ranked

    def predict_tables(
        self, tables: dict[str, pd.DataFrame], top_k: int = 10, explain: bool = True
    ) -> list[dict[str, Any]]:
        """Predictions for warehouse-shaped ``tables`` (docs/data_contracts.md), one per
        row of ``tables["encounters"]``, in that order."""
        X = self.feature_builder.transform(tables)
        X = X.reindex(pd.Index(tables["encounters"]["encounter_id"].astype(str)))
        return self.predict_features(X, top_k=top_k, explain=explain, tables=tables)

    def predict_records(
        self, records: list[PatientRecord | dict[str, Any]], top_k: int = 10, explain: bool = True
    ) -> list[dict[str, Any]]:
        """Predictions for API records: validated and normalised first (SNOMED CT → HPO,
        canonical units, ICD-10 spelling); a bad field raises a ValueError naming it."""
        clean = normalise_records(records)
        if not clean:
            return []
        return self.predict_tables(records_to_tables(clean), top_k=top_k, explain=explain)

    # -------------------------------------------------------------- explanation
    def _explain(self, X: pd.DataFrame, outputs: list[dict[str, Any]]) -> None:
        """Fill ``explanation`` of each output for its top candidate."""
        classes = {str(c): j for j, c in enumerate(self.common_model.classes_)}
        rare_index = list(self.gate_model.classes_).index("RARE")
        names = list(getattr(self.common_model, "feature_names", self.feature_names))
        gate_names = list(getattr(self.gate_model, "feature_names", self.feature_names))
        common_positions = X.columns.get_indexer(names)
        gate_positions = X.columns.get_indexer(gate_names)
        for start in range(0, len(X), EXPLAIN_BLOCK):
            block = X.iloc[start : start + EXPLAIN_BLOCK]
            matrix = block.to_numpy(dtype=float)
            tops = [outputs[start + i]["differential"][0] for i in range(len(block))]
            is_common = np.asarray([t["category"] == "COMMON" for t in tops])
            unseen = np.asarray(
                [c and t["code"] not in classes for t, c in zip(tops, is_common, strict=True)]
            )
            is_common &= ~unseen
            common_values = gate_values = None
            if is_common.any():
                targets = [classes[t["code"]] for t, c in zip(tops, is_common, strict=True) if c]
                common_values = self.common_model.class_contributions(
                    block[is_common], np.asarray(targets)
                )
            if (~is_common).any():
                gate_values = self.gate_model.class_contributions(
                    block[~is_common], np.full(int((~is_common).sum()), rare_index)
                )
            c_row = g_row = 0
            for i, top in enumerate(tops):
                if unseen[i]:  # ranked by the catalogue knowledge alone
                    outputs[start + i]["explanation"] = {
                        "target": f"{top['name']} ({top['code']})",
                        "model": "knowledge",
                        "features": [],
                        "note": KNOWLEDGE_ONLY_NOTE,
                    }
                    continue
                if is_common[i]:
                    values = common_values[c_row, :-1]
                    row, used, model = matrix[i, common_positions], names, "common"
                    c_row += 1
                else:
                    values = gate_values[g_row, :-1]
                    row, used, model = matrix[i, gate_positions], gate_names, "gate"
                    g_row += 1
                features = top_contributions(
                    values, row, used, self.feature_labels, self.explain_top_n
                )
                outputs[start + i]["explanation"] = {
                    "target": f"{top['name']} ({top['code']})",
                    "model": model,
                    "features": features,
                    "note": None if features else NO_CONTRIBUTION_NOTE,
                }

    def _explain_rare(
        self,
        X: pd.DataFrame,
        tables: dict[str, pd.DataFrame] | None,
        outputs: list[dict[str, Any]],
    ) -> None:
        """Fill ``phenotypes`` of every listed differential entry: for a rare candidate
        of the rare model, the patient's phenotypes it matches, its frequent phenotypes
        the patient does not report and the evidence against it; None otherwise."""
        explain = getattr(self.rare_model, "explain_candidates", None)
        wanted_rows, wanted = [], []
        for i, output in enumerate(outputs):
            for entry in output["differential"]:
                entry["phenotypes"] = None
            codes = [e["code"] for e in output["differential"] if _is_rare_candidate(e)]
            if codes and explain is not None:
                wanted_rows.append(i)
                wanted.append(codes)
        if not wanted_rows:
            return
        found = explain(tables, X.iloc[wanted_rows], wanted)
        for i, explanations in zip(wanted_rows, found, strict=True):
            entries = [e for e in outputs[i]["differential"] if _is_rare_candidate(e)]
            for entry, explanation in zip(entries, explanations, strict=True):
                entry["phenotypes"] = explanation


def _is_rare_candidate(entry: dict[str, Any]) -> bool:
    """A named rare disease of the rare model (not the unspecified rare slot)."""
    return entry["category"] == "RARE" and entry["code"] != RARE_SLOT_CODE


def _entry(code: str, name: str, category: str, p: float, bounds: tuple[float, float]) -> dict:
    lo, hi = bounds
    return {
        "code": code,
        "name": name,
        "category": category,
        "probability": float(p),
        "interval": [float(min(lo, p)), float(max(hi, p))],
    }


def _rare_entries(
    candidates: list[tuple[str, str, float]] | None, p_rare: float, lo: float, hi: float
) -> list[dict]:
    """The rare slot, or P(rare) split among ``candidates`` in proportion to their scores."""
    if not candidates:
        return [_entry(RARE_SLOT_CODE, RARE_SLOT_NAME, "RARE", p_rare, (lo, hi))]
    scores = np.clip(np.asarray([float(c[2]) for c in candidates]), 0.0, None)
    shares = scores / scores.sum() if scores.sum() > 0 else np.full(len(scores), 1 / len(scores))
    return [
        _entry(str(code), str(name), "RARE", p_rare * s, (lo * s, hi * s))
        for (code, name, _), s in zip(candidates, shares, strict=True)
    ]
