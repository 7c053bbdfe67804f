"""One patient's feature row, as ``predictor.features.FeatureBuilder.transform`` builds it.

Blocks in the builder's column order: sex, the DFS aggregations (the shared
``predictor.reductions.aggregate``), temporal features, NEWS2/qSOFA (the shared
``predictor.feature_scores``), symptom counts per organ system and their interactions,
comorbidity flags, HPO phenotype vectors (present terms propagated to their ancestors,
excluded terms to their descendants), optional missing-lab indicators and the
knowledge block.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.edge.knowledge import KnowledgeScorer
from disease_pipeline.edge.ontology import Hpo
from disease_pipeline.edge.record import Patient
from disease_pipeline.predictor.feature_scores import SCORE_COLUMNS, clinical_scores
from disease_pipeline.predictor.reductions import aggregate, reduce_groups

DAYS_PER_YEAR = 365.25


class Spec:
    """One DFS aggregation (``feature_dfs.AggSpec``'s fields)."""

    def __init__(
        self, name: str, child: str, primitive: str, column: str | None, where: str | None
    ):
        self.name, self.child, self.primitive = name, child, primitive
        self.column, self.where = column, where


class FeatureRow:
    """Feature rows of patients for a package's ``config["features"]``."""

    def __init__(self, config: dict[str, Any], hpo: Hpo, knowledge: KnowledgeScorer | None):
        self.config = config
        self.hpo = hpo
        self.knowledge = knowledge
        self.names: list[str] = list(config["names"])
        self.specs = [Spec(*s) for s in config["specs"]]
        self.present_vocab = {t: i for i, t in enumerate(config["phenotype_terms"])}
        self.group_vocab = {t: i for i, t in enumerate(config["groups"])}
        self.comorbidity_vocab = {t: i for i, t in enumerate(config["comorbidity_codes"])}
        self.lab_vocab = {t: i for i, t in enumerate(config["lab_vocab"])}
        self.excluded_ancestors = [set(hpo.ancestors(t)) for t in config["excluded_terms"]]

    def _columns(self, term: str, vocab: dict[str, int]) -> list[int]:
        return [vocab[a] for a in self.hpo.ancestors(term) if a in vocab]

    def _children(self, patient: Patient) -> dict[str, dict[str, np.ndarray]]:
        symptoms = patient.symptoms
        present = np.array([s.present for s in symptoms], dtype=bool)

        def measured(readings: list[tuple[str, float]]) -> dict[str, np.ndarray]:
            return {
                "codes": np.zeros(len(readings), dtype=int),
                "loinc": np.array([r[0] for r in readings], dtype=object),
                "value": np.array([r[1] for r in readings], dtype=float),
            }

        return {
            "symptoms": {
                "codes": np.zeros(len(symptoms), dtype=int),
                "hpo_id": np.array([s.hpo_id for s in symptoms], dtype=object),
                "present": present.astype(float),
                "excluded": (~present).astype(float),
                "severity": np.array([s.severity for s in symptoms], dtype=float),
                "onset_days": np.array([s.onset_days for s in symptoms], dtype=float),
            },
            "vitals": measured(patient.vitals),
            "labs": measured(patient.labs),
            "comorbidities": {
                "codes": np.zeros(len(patient.comorbidities), dtype=int),
                "code": np.array(
                    [c.upper().replace(".", "")[:3] for c in patient.comorbidities], dtype=object
                ),
            },
        }

    def row(self, patient: Patient) -> np.ndarray:
        """The patient's features, in :attr:`names` order (float64)."""
        c = self.config
        children = self._children(patient)
        sym = children["symptoms"]
        age = np.array([patient.age], dtype=float)
        max_onset = reduce_groups("max", sym["codes"], sym["onset_days"], 1)
        min_onset = reduce_groups("min", sym["codes"], sym["onset_days"], 1)
        onset_known = ~np.isnan(max_onset)
        day = patient.start.timetuple().tm_yday
        angle = 2 * np.pi * (np.array([day], dtype=float) - 1) / DAYS_PER_YEAR
        vitals = children["vitals"]
        scores = clinical_scores(
            vitals["codes"], vitals["loinc"], vitals["value"], 1, c["news2_loinc"]
        )
        present_terms = [s.hpo_id for s in patient.symptoms if s.present]
        excluded_terms = [s.hpo_id for s in patient.symptoms if not s.present]
        groups = np.zeros(len(self.group_vocab))
        for term in present_terms:
            for j in self._columns(term, self.group_vocab):
                groups[j] += 1.0
        max_severity = reduce_groups("max", sym["codes"], sym["severity"], 1)
        comorbidity_count = float(len(patient.comorbidities))
        comorbidity = np.zeros(len(self.comorbidity_vocab))
        for code in children["comorbidities"]["code"]:
            if code in self.comorbidity_vocab:
                comorbidity[self.comorbidity_vocab[code]] = 1.0
        phenotypes = np.zeros(len(self.present_vocab))
        for term in present_terms:
            phenotypes[self._columns(term, self.present_vocab)] = 1.0
        excluded = np.zeros(len(self.excluded_ancestors))
        for term in excluded_terms:
            for j, ancestors in enumerate(self.excluded_ancestors):
                if term in ancestors:
                    excluded[j] = 1.0
        blocks = [
            np.array([patient.sex == "female", patient.sex == "male"], dtype=float),
            aggregate(self.specs, age, children, 1)[0],
            np.array(
                [
                    float(patient.start.month),
                    np.sin(angle)[0],
                    np.cos(angle)[0],
                    (max_onset - min_onset)[0],
                    np.where(onset_known, max_onset <= c["acute_onset_days"], np.nan)[0],
                    np.where(onset_known, max_onset >= c["chronic_onset_days"], np.nan)[0],
                ]
            ),
            np.array([scores[name][0] for name in SCORE_COLUMNS]),
            groups,
            age * max_severity,
            groups * comorbidity_count,
            comorbidity,
            phenotypes,
            excluded,
        ]
        if c["missing_indicators"]:
            missing = np.ones(len(self.lab_vocab))
            for loinc, _ in patient.labs:
                if loinc in self.lab_vocab:
                    missing[self.lab_vocab[loinc]] = 0.0
            blocks.append(missing)
        if c["knowledge"]:
            flags = [float(len(patient.vitals) > 0), float(len(patient.labs) > 0)]
            blocks.append(np.concatenate([self.knowledge.log_posterior(patient), flags]))
        out = np.concatenate([np.asarray(b, dtype=float).ravel() for b in blocks])
        if out.shape[0] != len(self.names):
            raise RuntimeError("edge features: blocks and names are out of step")
        return out
