"""The catalogue knowledge scorer's log posterior for one patient, in numpy.

The port of ``knowledge.common_scorer.CommonKnowledgeScorer.evidence`` (priors,
present and absent terms, vitals and labs; ``common_priors``,
``common_measurements``): per-term log likelihood ratios come precomputed in
``knowledge.npz``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from disease_pipeline.edge.numeric import logsumexp
from disease_pipeline.edge.ontology import Hpo
from disease_pipeline.edge.record import Patient


class KnowledgeScorer:
    """Log posterior over the catalogue diseases (``config["knowledge"]``)."""

    def __init__(self, config: dict[str, Any], arrays: dict[str, np.ndarray], hpo: Hpo) -> None:
        self.config = config
        self.a = arrays
        self.hpo = hpo
        self.classes: list[str] = list(config["classes"])
        self.items = {str(c): j for j, c in enumerate(arrays["measure_loinc"].tolist())}

    def _terms(self, terms: list[str], present: bool) -> np.ndarray:
        """Sum of the log LRs of the distinct phenotype terms (sorted, as the scorer)."""
        cleaned = []
        for raw in terms:
            term = self.hpo.resolve(str(raw).strip().upper())
            if term is not None and self.hpo.is_phenotype(term):
                cleaned.append(term)
        cleaned = sorted(set(cleaned))
        if not cleaned:
            return np.zeros(len(self.classes))
        key = "present" if present else "absent"
        index, table = self.a[f"{key}_index"], self.a[f"{key}_rows"]
        zero = np.zeros(len(self.classes))
        rows = []
        for term in cleaned:
            j = index[self.hpo.position[term]]
            rows.append(table[j] if j >= 0 else zero)
        return np.stack(rows).sum(axis=0)

    def log_prior(self, age: float, sex: str, month: float) -> np.ndarray:
        """Prevalence, age, sex and season log factors (``common_priors``)."""
        c, a = self.config, self.a
        low, high = a["age_low"], a["age_high"]
        if np.isnan(age):
            age_factor = np.zeros(len(self.classes))
        else:
            clipped = np.clip(age, low, high)
            z = (clipped - a["age_mean"]) / a["age_sd"]
            normal = np.exp(-0.5 * z**2) / (a["age_sd"] * a["age_mass"] * np.sqrt(2 * np.pi))
            tail = c["age_tail"]
            log_density = np.log((1.0 - tail) * normal + tail / (high - low))
            inside = (age >= low) & (age <= high)
            log_density = np.where(inside, log_density, log_density + np.log(c["age_outside"]))
            age_factor = log_density - log_density.mean()
        share = a["male_share"]
        if sex == "male":
            sex_factor = np.log(share / 0.5)
        elif sex == "female":
            sex_factor = np.log((1.0 - share) / 0.5)
        else:
            sex_factor = np.zeros(len(self.classes))
        if np.isnan(month):
            season = np.zeros(len(self.classes))
        else:
            angle = 2 * np.pi * (month - a["season_peak"]) / 12.0
            factor = 1.0 + a["season_amplitude"] * np.cos(angle)
            season = np.log(np.maximum(factor, c["season_floor"]))
        return (
            a["log_prevalence"]
            + c["age_weight"] * age_factor
            + c["sex_weight"] * sex_factor
            + c["season_weight"] * season
        )

    def _measurements(self, readings: list[tuple[str, float]]) -> np.ndarray:
        """Summed per-reading log densities (repeated items: their mean), each reading
        normalised over the diseases (``measurement_log_likelihood``)."""
        out = np.zeros(len(self.classes))
        seen: dict[int, list[float]] = {}
        for loinc, value in readings:
            item = self.items.get(str(loinc), -1)
            if item >= 0 and not np.isnan(value):
                seen.setdefault(item, []).append(value)
        if not seen:
            return out
        a, c = self.a, self.config
        for item in sorted(seen):  # item order, as the scorer sums them
            value = _kahan_mean(seen[item])
            main = _log_normal(value, a["measure_mean"][item], a["measure_sd"][item]) + np.log(
                1.0 - c["outlier_share"]
            )
            wide_sd = c["outlier_width"] * a["healthy_sd"][item]
            wide = _log_normal(value, a["healthy_mean"][item], wide_sd) + np.log(c["outlier_share"])
            row = np.logaddexp(main, wide)
            out += row - logsumexp(row)
        return out

    def log_posterior(self, patient: Patient) -> np.ndarray:
        """Normalised log posterior over :attr:`classes` (as ``CommonKnowledgeScorer``)."""
        present = [s.hpo_id for s in patient.symptoms if s.present]
        absent = [s.hpo_id for s in patient.symptoms if not s.present]
        measured = self._measurements(patient.vitals) + self._measurements(patient.labs)
        score = (
            0
            + self.log_prior(patient.age, patient.sex, float(patient.start.month))
            + self._terms(present, True)
            + self._terms(absent, False)
            + self.config["measurement_weight"] * measured
        )
        return score - logsumexp(score)


def _log_normal(x: float, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def _kahan_mean(values: list[float]) -> float:
    """Compensated sum / count: pandas' group mean (``common_measurements.pair_means``)."""
    total = compensation = 0.0
    for value in values:
        y = value - compensation
        t = total + y
        c = (t - total) - y
        compensation = 0.0 if np.isnan(c) else c
        total = t
    return total / len(values)
