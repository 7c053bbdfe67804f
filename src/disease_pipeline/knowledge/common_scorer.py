"""Likelihood-ratio knowledge scorer over the common-disease catalogue.

For a disease ``d`` and a term ``t``, ``F[d, t]`` is the catalogue frequency of ``t``
under ``d`` propagated to ``t``'s ancestors (by max): a patient who reports a less
specific term than the annotated one ("Abdominal pain" for "Right lower quadrant
pain") matches fully. A reported term ``q`` matches ``d`` with

    M(d, q) = max( F[d, q],  max_{a ∈ anc(q), a ≠ q} λ · (n(q) / n(a))^γ · F[d, a] )

where ``n(t)`` counts the HPO-annotated diseases annotated with ``t`` or a descendant:
a more specific term ("Podagra" for an annotated "Joint pain") or a sibling (through
their common parent) counts, discounted by how much more specific ``q`` is than the
term it matched through. Ancestors annotated in more than ``max_ancestor_share`` of
all diseases are too general to match through. A term of a group of findings that
clinicians record interchangeably (``data/related_findings.yaml``: fatigue / asthenia /
lethargy, dizziness / presyncope, …) also matches a disease annotated with another
member ``r`` at ``ρ · F[d, r]`` (``related_match``). The noise model keeps an unexplained
term from sinking a disease: ``P(q | d) = (1 − η) · M(d, q) + η · b(q)`` with ``b(q)``
the mean of ``M(·, q)`` over the catalogue, so ``LR(q | d) = (1 − η) M / b + η``.

A term reported ABSENT (``present = False``) contributes ``(1 − F[d, e]) / (1 − b(e))``
(floored); a term that is simply not reported contributes nothing. Priors: prevalence
(tempered by ``prevalence_weight``), age, sex and season (see ``common_priors``); vitals
and labs through the catalogue's shifts (``common_measurements``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import logsumexp

from disease_pipeline.knowledge import common_priors as priors
from disease_pipeline.knowledge.catalogue import (
    load_common_diseases,
    load_lab_table,
    load_related_findings,
)
from disease_pipeline.knowledge.common_measurements import (
    MeasurementModel,
    build_measurement_model,
    measurement_log_likelihood,
)
from disease_pipeline.knowledge.hpo import PHENOTYPIC_ABNORMALITY, load_ontology
from disease_pipeline.knowledge.term_usage import annotated_disease_total, annotation_counts


def str_values(values: pd.Series | pd.Index) -> np.ndarray:
    """``values.astype(str)`` as a numpy object array; without the pandas conversion
    (tens of microseconds per call) when every value is already a ``str``."""
    array = values.to_numpy()
    if array.dtype == object and all(type(v) is str for v in array):
        return array
    return np.asarray(values.astype(str), dtype=object)


def months(start: pd.Series) -> np.ndarray:
    """``start.dt.month`` as floats (NaN for a missing date); computed on the numpy
    values for a time-zone-naive column (the pandas accessor costs ~0.1 ms a call)."""
    values = start.to_numpy()
    if values.dtype.kind != "M":  # time-zone-aware: the month of the local time
        return start.dt.month.to_numpy(dtype=float, na_value=np.nan)
    out = (values.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(float)
    out[np.isnat(values)] = np.nan
    return out


@dataclass(frozen=True)
class KnowledgeParams:
    """Knobs of :class:`CommonKnowledgeScorer` (``common_model.knowledge`` parameters)."""

    noise: float = 0.2  # η
    evidence_weight: float = 1.0  # τ: temper on the summed log LRs of present terms
    partial_match: float = 0.3  # λ
    related_match: float = 0.0  # ρ: credit of a match through a related finding (0 = off)
    specificity_power: float = 0.75  # γ
    max_ancestor_share: float = 0.2
    background_floor: float = 0.002
    absent_floor: float = 0.05
    prevalence_weight: float = 0.25
    age_weight: float = 1.0
    age_outside: float = 0.02
    age_tail: float = 0.0
    sex_weight: float = 1.0
    sex_floor: float = 0.002
    season_weight: float = 0.5
    season_floor: float = 0.05
    measurement_weight: float = 0.5
    acuity_sd: float = 0.5
    measurement_outlier_share: float = 0.2
    measurement_outlier_width: float = 4.0

    def __setstate__(self, state: dict) -> None:
        """Unpickle, giving knobs added since the pickle was made their (neutral) default."""
        for field in fields(self):
            object.__setattr__(self, field.name, state.get(field.name, field.default))

    def __post_init__(self) -> None:
        for name in ("noise", "partial_match", "max_ancestor_share", "absent_floor"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"parameter common_model.knowledge.{name} must be in (0, 1]")
        if self.age_tail >= 1:
            raise ValueError("parameter common_model.knowledge.age_tail must be < 1")
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"parameter common_model.knowledge.{name} must be >= 0")


class CommonKnowledgeScorer:
    """Log posterior of every catalogue disease from symptoms, age, sex, season, vitals, labs."""

    def __init__(
        self,
        catalogue: pd.DataFrame,
        params: KnowledgeParams,
        counts: dict[str, int],
        n_annotated: int,
        measurements: MeasurementModel,
    ) -> None:
        onto = load_ontology()
        self.params = params
        self.catalogue = catalogue.reset_index(drop=True)
        self.classes: list[str] = [str(c) for c in self.catalogue["icd10"]]
        self.names: dict[str, str] = dict(
            zip(self.classes, map(str, self.catalogue["name"]), strict=True)
        )
        self.measurements = measurements
        self._counts = counts
        self._n_annotated = max(int(n_annotated), 1)
        self.ontology_version = onto.version
        direct: dict[tuple[int, str], float] = {}
        for d, symptoms in enumerate(self.catalogue["symptoms"]):
            for s in symptoms or []:
                term = onto.resolve(str(s["hpo"])) or str(s["hpo"])
                direct[d, term] = max(direct.get((d, term), 0.0), float(s["frequency"]))
        self.direct = direct
        terms = sorted(
            {
                a
                for (_, t) in direct
                for a in onto.ancestors(t)
                if a != PHENOTYPIC_ABNORMALITY and onto.is_phenotype(a)
            }
        )
        self.term_index = {t: j for j, t in enumerate(terms)}
        propagated = np.zeros((len(self.classes), len(terms)))
        for (d, t), f in direct.items():
            cols = [self.term_index[a] for a in onto.ancestors(t) if a in self.term_index]
            propagated[d, cols] = np.maximum(propagated[d, cols], f)
        self.propagated = propagated
        self._rows: dict[tuple[str, bool], np.ndarray] = {}
        self._related = load_related_findings() if params.related_match > 0 else {}

    @classmethod
    def from_catalogue(
        cls, catalogue: pd.DataFrame | None = None, **params: Any
    ) -> CommonKnowledgeScorer:
        """Build from the catalogue table (default: ``load_common_diseases()``) and the
        ``common_model.knowledge`` parameters. Diseases of the RARE category are kept."""
        table = load_common_diseases() if catalogue is None else catalogue
        knobs = KnowledgeParams(**params)
        measurements = build_measurement_model(
            table,
            load_lab_table(),
            acuity_sd=knobs.acuity_sd,
            outlier_share=knobs.measurement_outlier_share,
            outlier_width=knobs.measurement_outlier_width,
        )
        return cls(table, knobs, annotation_counts(), annotated_disease_total(), measurements)

    # ------------------------------------------------------------- term ratios
    @property
    def n_classes(self) -> int:
        """Number of diseases scored."""
        return len(self.classes)

    def match(self, term: str) -> np.ndarray:
        """``M(·, q)``: probability-like match of a present term with every disease."""
        onto = load_ontology()
        p = self.params
        best = np.zeros(self.n_classes)
        if term in self.term_index:
            best = self.propagated[:, self.term_index[term]].copy()
        n_term = self._counts.get(term, 0) + 1
        for a in onto.ancestors(term):
            j = self.term_index.get(a)
            if j is None or a == term:
                continue
            n_anc = self._counts.get(a, 0) + 1
            if n_anc > p.max_ancestor_share * self._n_annotated:
                continue
            weight = p.partial_match * min(n_term / n_anc, 1.0) ** p.specificity_power
            best = np.maximum(best, weight * self.propagated[:, j])
        for other in self._related.get(term, ()):
            j = self.term_index.get(other)
            if j is not None:
                best = np.maximum(best, p.related_match * self.propagated[:, j])
        return best

    def term_log_ratio(self, term: str, *, present: bool) -> np.ndarray:
        """Log LR of one term (already resolved to a live HPO id) for every disease."""
        key = (term, present)
        row = self._rows.get(key)
        if row is not None:
            return row
        p = self.params
        if present:
            m = self.match(term)
            b = max(float(m.mean()), p.background_floor)
            row = p.evidence_weight * np.log((1.0 - p.noise) * m / b + p.noise)
        else:
            f = self.propagated[:, self.term_index[term]] if term in self.term_index else None
            if f is None:
                row = np.zeros(self.n_classes)
            else:
                absent = np.maximum(1.0 - (1.0 - p.noise) * f, p.absent_floor)
                row = np.log(absent / max(float(absent.mean()), p.absent_floor))
        if len(self._rows) < 4096:
            self._rows[key] = row
        return row

    def term_table(self, terms: list[str], *, present: bool) -> np.ndarray:
        """``(len(terms), n_classes)`` log LRs."""
        if not terms:
            return np.zeros((0, self.n_classes))
        return np.stack([self.term_log_ratio(t, present=present) for t in terms])

    def _summed(self, term_lists: list[list[str]], *, present: bool) -> np.ndarray:
        """Row i = sum of the log LRs of patient i's terms (each distinct term once)."""
        cleaned = [sorted(set(self._resolve(terms))) for terms in term_lists]
        flat = [t for terms in cleaned for t in terms]
        if not flat:
            return np.zeros((len(term_lists), self.n_classes))
        if len(cleaned) == 1:  # one patient (the service's usual request): no membership matrix
            return self.term_table(flat, present=present).sum(axis=0, keepdims=True)
        unique, position = np.unique(np.asarray(flat, dtype=object), return_inverse=True)
        rows = np.repeat(np.arange(len(cleaned)), [len(t) for t in cleaned])
        membership = sp.csr_matrix(
            (np.ones(len(flat)), (rows, position.ravel())), shape=(len(cleaned), len(unique))
        )
        return np.asarray(membership @ self.term_table(list(unique), present=present))

    @staticmethod
    def _resolve(terms: list[str]) -> list[str]:
        onto = load_ontology()
        out = []
        for raw in terms:
            term = onto.resolve(str(raw).strip().upper())
            if term is not None and onto.is_phenotype(term):
                out.append(term)
        return out

    # ---------------------------------------------------------------- scoring
    def log_prior(
        self, age: np.ndarray, sex: np.ndarray, month: np.ndarray | None = None
    ) -> np.ndarray:
        """``(n, n_classes)`` log prior factors: prevalence, age, sex and season."""
        p, cat = self.params, self.catalogue
        n = len(age)
        month = np.full(n, np.nan) if month is None else np.asarray(month, float)
        return (
            priors.log_prevalence(cat, p.prevalence_weight)[None, :]
            + p.age_weight * priors.log_age_factor(cat, age, p.age_outside, p.age_tail)
            + p.sex_weight * priors.log_sex_factor(cat, sex, p.sex_floor)
            + p.season_weight * priors.log_season_factor(cat, month, p.season_floor)
        )

    def log_posterior_terms(
        self,
        present: list[list[str]],
        absent: list[list[str]] | None,
        age: np.ndarray,
        sex: np.ndarray,
        month: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n, n_classes)`` normalised log posterior from HPO terms, age and sex."""
        absent = absent if absent is not None else [[] for _ in present]
        age = np.asarray(age, dtype=float)
        score = (
            self.log_prior(age, np.asarray(sex, dtype=object), month)
            + self._summed(present, present=True)
            + self._summed(absent, present=False)
        )
        return score - logsumexp(score, axis=1, keepdims=True)

    def log_posterior(self, tables: dict[str, pd.DataFrame]) -> np.ndarray:
        """``(n_encounters, n_classes)`` normalised log posterior for warehouse-shaped
        ``tables`` (``encounters`` with ``encounter_id, age_years, sex`` and optionally
        ``start``; ``symptoms``; optionally ``vitals`` and ``labs`` in canonical units),
        one row per row of ``tables["encounters"]``, in that order."""
        parts = self.evidence(tables)
        score = sum(parts.values())
        return score - logsumexp(score, axis=1, keepdims=True)

    def evidence(self, tables: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
        """The log factors of :meth:`log_posterior` by source: ``prior``, ``present``,
        ``absent`` and ``measurements`` (each ``(n_encounters, n_classes)``)."""
        enc = tables["encounters"]
        ids = enc["encounter_id"].to_numpy().astype(str)
        position = {e: i for i, e in enumerate(ids)}
        n = len(ids)
        present: list[list[str]] = [[] for _ in range(n)]
        absent: list[list[str]] = [[] for _ in range(n)]
        sym = tables.get("symptoms")
        if sym is not None and len(sym):
            for eid, term, flag in zip(
                sym["encounter_id"].to_numpy().astype(str),
                sym["hpo_id"].to_numpy().astype(str),
                sym["present"].to_numpy(),
                strict=True,
            ):
                i = position.get(eid)
                if i is not None:
                    (present if bool(flag) else absent)[i].append(term)
        month = np.full(n, np.nan)
        if "start" in enc:
            start = enc["start"]
            if not pd.api.types.is_datetime64_any_dtype(start):
                start = pd.to_datetime(start, errors="coerce", utc=True, format="mixed")
            month = months(start)
        sex = enc["sex"].fillna("unknown").to_numpy() if "sex" in enc else np.full(n, "unknown")
        age = pd.to_numeric(enc["age_years"], errors="coerce").to_numpy(float)
        measured = np.zeros((n, self.n_classes))
        for table in ("vitals", "labs"):
            frame = tables.get(table)
            if frame is None or not len(frame):
                continue
            codes = np.fromiter(
                (position.get(e, -1) for e in str_values(frame["encounter_id"])), dtype=np.int64
            )
            measured += measurement_log_likelihood(
                self.measurements,
                codes,
                str_values(frame["loinc"]),
                pd.to_numeric(frame["value"], errors="coerce").to_numpy(float),
                n,
            )
        return {
            "prior": self.log_prior(age, sex.astype(object), month),
            "present": self._summed(present, present=True),
            "absent": self._summed(absent, present=False),
            "measurements": self.params.measurement_weight * measured,
        }

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_rows"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_related" not in state:  # pickled before related findings existed
            self._related = load_related_findings() if self.params.related_match > 0 else {}
