"""The edge predictor: one patient record in, the full predictor's answer out.

Combines the components as ``predictor.bundle.DiseasePredictor.predict_features``
does: the calibrated common-disease probabilities (blended with the knowledge
posterior), the calibrated gate P(rare), the rare model's candidates sharing P(rare)
(asked only when a rare entry can enter the top ``top_k``), the calibrated severity,
and the must-not-miss flags and severity cap of ``predictor.red_flags``. Probability
intervals and explanations are not part of the edge answer (docs/edge.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from disease_pipeline.core.levels import SEVERITY_LEVELS
from disease_pipeline.edge.features import FeatureRow
from disease_pipeline.edge.knowledge import KnowledgeScorer
from disease_pipeline.edge.models import DEFAULT_ENGINE, Classifier, blend, calibrate
from disease_pipeline.edge.numeric import softmax
from disease_pipeline.edge.ontology import Hpo
from disease_pipeline.edge.package import EdgePackage, load_package
from disease_pipeline.edge.rare import RareRanker
from disease_pipeline.edge.record import Patient, RecordRules
from disease_pipeline.predictor.probabilities import respect_critical

RARE_SLOT_CODE = "RARE"
RARE_SLOT_NAME = "Rare disease (unspecified)"


class EdgePredictor:
    """Everything a package holds, ready to answer (see module docstring); ``engine``
    evaluates the boosters (``edge.models.ENGINES``: ``exact``, the default, XGBoost's
    outputs bit for bit; ``onnx``, onnxruntime's tree ensembles)."""

    def __init__(self, package: EdgePackage, *, engine: str = DEFAULT_ENGINE) -> None:
        self.package = package
        self.engine = engine
        config, arrays = package.config, package.arrays
        self.config = config
        self.hpo = Hpo(arrays["ontology"])
        self.rules = RecordRules(config["record"], self.hpo)
        knowledge = (
            KnowledgeScorer(config["knowledge"], arrays["knowledge"], self.hpo)
            if config["knowledge"]
            else None
        )
        self.features = FeatureRow(config["features"], self.hpo, knowledge)
        models = arrays["models"]
        self.models = {
            name: Classifier(
                name, spec, models, arrays["trees"], sessions=package.sessions, engine=engine
            )
            for name, spec in config["models"].items()
        }
        self.rare = (
            RareRanker(config["rare"], arrays["rare"], package.sessions, self.hpo)
            if config["rare"]
            else None
        )
        self.classes: list[str] = list(config["common_classes"])

    @classmethod
    def load(
        cls, root: Path | str, *, verify: bool = True, engine: str = DEFAULT_ENGINE
    ) -> EdgePredictor:
        """The predictor of the package folder ``root``, its boosters run by ``engine``."""
        return cls(load_package(root, verify=verify), engine=engine)

    def _calibrated(self, name: str, proba: np.ndarray) -> np.ndarray:
        return calibrate(
            name, self.config["calibrators"][name], self.package.arrays["models"], proba
        )

    def probabilities(self, row: np.ndarray) -> dict[str, np.ndarray]:
        """``common`` (P(d | common) over :attr:`classes`), ``p_rare`` and ``severity``
        (in ``SEVERITY_LEVELS`` order) of feature rows (``predict_arrays``)."""
        names = self.features.names
        common = self._calibrated("common", self.models["common"].predict_proba(row))
        if self.config["blend"] is not None:
            common = blend(self.config["blend"], names, row, common)
        gate = self.models["gate"]
        p_rare = self._calibrated("gate", gate.predict_proba(row))[:, gate.classes.index("RARE")]
        severity_model = self.models["severity"]
        severity = self._calibrated("severity", severity_model.predict_proba(row))
        levels = severity_model.classes
        severity = np.column_stack([severity[:, levels.index(level)] for level in SEVERITY_LEVELS])
        return {"common": common, "p_rare": p_rare, "severity": severity}

    def predict(self, record: dict[str, Any] | Patient, top_k: int = 10) -> dict[str, Any]:
        """The ranked differential, P(rare) and severity of one patient record (a JSON
        object as ``records.PatientRecord``); raises ``EdgeInputError`` naming a bad field."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        patient = record if isinstance(record, Patient) else self.rules.patient(record)
        row = self.features.row(patient)[None, :]
        arrays = self.probabilities(row)
        common, p_rare = arrays["common"][0], float(arrays["p_rare"][0])
        order = np.argsort(-common, kind="stable")[: min(top_k, len(common))]
        p_common = (1.0 - p_rare) * common[order]
        names = self.config["disease_names"]
        entries = [
            _entry(self.classes[j], names.get(self.classes[j], self.classes[j]), "COMMON", p)
            for j, p in zip(order, p_common, strict=True)
        ]
        entries += _rare_entries(self._rank_rare(patient, p_rare, p_common, top_k), p_rare)
        entries.sort(key=lambda e: -e["probability"])
        severity = arrays["severity"][0]
        output = {
            "differential": entries[:top_k],
            "p_rare": p_rare,
            "severity": {
                "level": SEVERITY_LEVELS[int(np.argmax(severity))],
                "probabilities": dict(zip(SEVERITY_LEVELS, map(float, severity), strict=True)),
            },
            "notes": patient.notes,
        }
        self._flag_must_not_miss(output, row, (1.0 - p_rare) * common, p_rare)
        return output

    def _rank_rare(
        self, patient: Patient, p_rare: float, p_common: np.ndarray, top_k: int
    ) -> list[tuple[str, str, float]] | None:
        """``DiseasePredictor._rank_rare`` for one patient."""
        if self.rare is None:
            return None
        floor = self.config["rare_rank_floor"]
        if len(p_common) >= top_k and p_rare < max(p_common[top_k - 1], floor):
            return []
        return self.rare.rank(patient)

    def _flag_must_not_miss(
        self, output: dict[str, Any], row: np.ndarray, p_common: np.ndarray, p_rare: float
    ) -> None:
        """``red_flags.flag_must_not_miss`` for one output (in place)."""
        for entry in output["differential"]:
            entry["must_not_miss"] = False
            entry["rule_out"] = None
        flags = self.config["must_not_miss"]
        if flags is None or not flags["critical"]:
            return
        classes = flags["classes"]
        names = self.features.names
        columns = ["knowledge_" + c.replace(".", "_") for c in classes]
        if any(c not in names for c in columns):
            return
        posterior = softmax(row[0, [names.index(c) for c in columns]])
        plausible = {
            code: float(posterior[classes.index(code)])
            for code in flags["critical"]
            if posterior[classes.index(code)] >= flags["floor"]
        }
        listed = {e["code"]: e for e in output["differential"]}
        index = {c: j for j, c in enumerate(self.classes)}
        extra = []
        for code in sorted(plausible, key=lambda c: -plausible[c]):
            entry = listed.get(code)
            if entry is None:
                j = index.get(code)
                p = float(p_common[j]) if j is not None else plausible[code] * (1.0 - p_rare)
                entry = _entry(code, flags["names"][code], "COMMON", p)
                extra.append(entry)
            entry["must_not_miss"] = True
            entry["rule_out"] = flags["critical"][code]
        extra.sort(key=lambda e: -e["probability"])
        output["differential"].extend(extra)
        if plausible:
            worst = max(int(flags["tiers"][c]) for c in plausible)
            respect_critical(output["severity"], flags["low_cap"], worst, sum(plausible.values()))
            output["severity"]["note"] = (
                "a time-critical diagnosis remains plausible: "
                + ", ".join(flags["names"][c] for c in plausible)
            )


def _entry(code: str, name: str, category: str, p: float) -> dict[str, Any]:
    return {"code": code, "name": name, "category": category, "probability": float(p)}


def _rare_entries(candidates: list[tuple[str, str, float]] | None, p_rare: float) -> list[dict]:
    """The rare slot, or P(rare) split among ``candidates`` in proportion to their scores."""
    if not candidates:
        return [_entry(RARE_SLOT_CODE, RARE_SLOT_NAME, "RARE", p_rare)]
    scores = np.clip(np.asarray([float(c[2]) for c in candidates]), 0.0, None)
    shares = scores / scores.sum() if scores.sum() > 0 else np.full(len(scores), 1 / len(scores))
    return [
        _entry(str(code), str(name), "RARE", p_rare * s)
        for (code, name, _), s in zip(candidates, shares, strict=True)
    ]
