"""The rare-disease hybrid for one patient, in numpy (+ the encoder in ONNX).

Ports of ``rare.terms.clean_terms``, the component scorers of ``rare.components``
(``rare.scorer.LikelihoodRatioScorer``, ``rare.similarity.OneSidedResnik``, the
featuriser of ``rare.encoder``), the hybrid logits ``w · x_d`` and
``rare.model.RareDiseaseModel.rank``: the top candidates among the RARE ones with
their probability P(d | rare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from disease_pipeline.edge.ontology import Hpo
from disease_pipeline.edge.record import Patient
from disease_pipeline.edge.trees import TreeEnsemble, load_ensemble, margins

SEXES = ("female", "male")
AGE_SCALE_YEARS = 100.0


@dataclass(frozen=True)
class RareInput:
    """Cleaned term indices (the model's term space), age and sex."""

    present: np.ndarray
    excluded: np.ndarray
    age: float | None
    sex: str


class Csc:
    """Columns of a sparse matrix as index arrays (``scorer._ColumnWalker``)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray | None = None):
        self.indptr, self.indices, self.data = indptr, indices, data

    def rows(self, j: int) -> np.ndarray:
        return self.indices[self.indptr[j] : self.indptr[j + 1]]

    def values(self, j: int) -> np.ndarray:
        return self.data[self.indptr[j] : self.indptr[j + 1]]


class RareRanker:
    """The package's rare model (``config["rare"]``, ``rare.npz``, the encoder ONNX)."""

    def __init__(self, config: dict[str, Any], a: dict[str, np.ndarray], sessions: dict, hpo: Hpo):
        self.config = config
        self.hpo = hpo
        self.index = {str(t): i for i, t in enumerate(a["space_ids"].tolist())}
        self.anc_indptr, self.anc_indices = a["space_anc_indptr"], a["space_anc_indices"]
        freq_ptr = a.get("lr_freq_indptr", a["lr_ratio_indptr"])
        freq_ind = a.get("lr_freq_indices", a["lr_ratio_indices"])
        self.ratio = Csc(a["lr_ratio_indptr"], a["lr_ratio_indices"], a["lr_ratio_data"])
        self.freq = Csc(freq_ptr, freq_ind, a["lr_freq_data"])
        # ``LikelihoodRatioScorer._ancestors_above_noise``
        ratio_ptr, ratio_data = a["lr_ratio_indptr"], a["lr_ratio_data"]
        peak = np.zeros(len(ratio_ptr) - 1, dtype=ratio_data.dtype)
        filled = np.diff(ratio_ptr) > 0
        peak[filled] = np.maximum.reduceat(ratio_data, ratio_ptr[:-1][filled])
        self.above_noise = peak * config["lr_ancestor_discount"] > config["lr_noise"]
        self.nots = Csc(a["lr_not_indptr"], a["lr_not_indices"])
        self.background = a["lr_background"]
        self.resnik = Csc(a["resnik_indptr"], a["resnik_indices"])
        self.cases = Csc(a["cases_indptr"], a["cases_indices"])
        self.ic, self.cases_ic = a["resnik_ic"], a["cases_ic"]
        self.descendants = Csc(a["resnik_desc_indptr"], a["resnik_desc_indices"])
        self.exact = Csc(a["resnik_exact_indptr"], a["resnik_exact_indices"])
        self.direct_mean = Float32Csr(
            a["resnik_dm_indptr"], a["resnik_dm_indices"], a["resnik_dm_data"]
        )
        self.n_direct = len(a["resnik_direct_terms"])
        self.has_cases, self.not_omim = a["has_cases"], a["not_omim"]
        self.has_published = a["has_published"]
        self.weights = a["weights"]
        self.columns, self.ids, self.names = a["rare_columns"], a["rare_ids"], a["rare_names"]
        self.primary = a.get("equivalence_primary")
        self.n = int(config["n_candidates"])
        self.encoder: ort.InferenceSession | None = (
            sessions[config["encoder"]] if config["encoder"] else None
        )
        self.encoder_ic = a.get("encoder_ic")
        rerank = config.get("rerank")
        self.reranker: TreeEnsemble | None = (
            None if rerank is None else load_ensemble(rerank, a, rerank["prefix"])
        )

    # ---- input ----------------------------------------------------------------------
    def ancestors(self, i: int) -> np.ndarray:
        return self.anc_indices[self.anc_indptr[i] : self.anc_indptr[i + 1]]

    def _term(self, raw: str) -> int | None:
        code = str(raw).strip()
        mapped = self.hpo.snomed.get(code) if code.isdigit() else self.hpo.resolve(code.upper())
        return None if mapped is None else self.index.get(mapped)

    def patient_input(self, patient: Patient) -> RareInput | None:
        """``clean_terms`` of the patient's terms; None without a usable present term."""
        present: list[int] = []
        for s in patient.symptoms:
            i = self._term(s.hpo_id) if s.present else None
            if i is not None and i not in present:
                present.append(i)
        if not present:
            return None
        implied = set(np.concatenate([self.ancestors(i) for i in present]).tolist())
        excluded: list[int] = []
        for s in patient.symptoms:
            i = None if s.present else self._term(s.hpo_id)
            if i is not None and i not in excluded and i not in implied:
                excluded.append(i)
        age = None if math.isnan(patient.age) else float(patient.age)
        return RareInput(
            np.array(present, np.int64), np.array(excluded, np.int64), age, patient.sex
        )

    # ---- components -----------------------------------------------------------------
    def _present_ratio(self, term: int) -> np.ndarray:
        c = self.config
        best = np.full(self.n, c["lr_noise"])
        ancestors = self.ancestors(term)
        for a in ancestors:
            if a != term and not self.above_noise[a]:  # cannot beat the noise floor
                continue
            rows = self.ratio.rows(a)
            if len(rows):
                scale = 1.0 if a == term else c["lr_ancestor_discount"]
                best[rows] = np.maximum(best[rows], self.ratio.values(a) * scale)
        for a in ancestors:
            rows = self.nots.rows(a)
            if len(rows):
                best[rows] = c["lr_not_annotated"]
        return best

    def _excluded_ratio(self, term: int) -> np.ndarray:
        absent = np.ones(self.n)
        rows = self.freq.rows(term)
        absent[rows] = np.maximum(1.0 - self.freq.values(term), self.config["lr_excluded_floor"])
        return absent / (1.0 - self.background[term])

    def _best_match(self, csc: Csc, ic: np.ndarray, term: int) -> np.ndarray:
        ancestors = self.ancestors(term)
        row = np.zeros(self.n, dtype=np.float32)
        for a in ancestors[np.argsort(ic[ancestors], kind="stable")]:
            row[csc.rows(a)] = ic[a]
        return row

    def _resnik(self, csc: Csc, ic: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = np.stack([self._best_match(csc, ic, int(t)) for t in terms])
        share = raw / np.maximum(ic[terms], 1e-6)[:, None]
        return raw.mean(axis=0, dtype=np.float64), share.mean(axis=0)

    def _disease_side(self, present: np.ndarray) -> np.ndarray:
        best = np.zeros(self.n_direct, dtype=np.float32)
        union = np.unique(np.concatenate([self.ancestors(int(i)) for i in present]))
        for a in union[np.argsort(self.ic[union], kind="stable")]:
            best[self.descendants.rows(a)] = self.ic[a]
        return self.direct_mean.matvec(best).astype(np.float64)

    def _exact_share(self, present: np.ndarray) -> np.ndarray:
        """``OneSidedResnik.exact_share``: the IC share of the present terms annotated
        exactly to each candidate (term rows of the term × candidate matrix)."""
        present = np.unique(present)
        weight = self.ic[present]
        weight = weight / max(float(weight.sum()), 1e-9)
        out = np.zeros(self.n)
        for term, w in zip(present.tolist(), weight.tolist(), strict=True):
            out[self.exact.rows(int(term))] += w
        return out

    def _considered_share(self, excluded: np.ndarray) -> np.ndarray:
        """``OneSidedResnik.considered_share``: the IC share of the excluded terms in
        each candidate's annotated spectrum (columns of the propagated annotations)."""
        out = np.zeros(self.n)
        excluded = np.unique(excluded)
        total = float(self.ic[excluded].sum()) if len(excluded) else 0.0
        if total <= 0:
            return out
        for term in excluded.tolist():
            out[self.resnik.rows(int(term))] += self.ic[term] / total
        return out

    def _similarity(self, x: RareInput) -> np.ndarray:
        n_terms = len(self.index)
        prop = np.unique(np.concatenate([self.ancestors(int(i)) for i in x.present]))
        weights = self.encoder_ic[prop]
        present = np.zeros((1, n_terms), dtype=np.float32)
        present[0, prop] = weights / max(float(weights.sum()), 1e-6)
        excluded = np.zeros((1, n_terms), dtype=np.float32)
        excluded[0, x.excluded] = 1.0 / max(len(x.excluded), 1)
        known = x.age is not None and not math.isnan(x.age)
        extra = np.array(
            [
                [
                    min(x.age, 120.0) / AGE_SCALE_YEARS if known else 0.0,
                    1.0 if known else 0.0,
                    *(1.0 if x.sex == sex else 0.0 for sex in SEXES),
                ]
            ],
            dtype=np.float32,
        )
        feeds = {"present": present, "excluded": excluded, "extra": extra}
        return self.encoder.run(["similarity"], feeds)[0][0]

    def columns_of(self, x: RareInput):
        """``(name, column)`` of every hybrid feature, in ``rare.hybrid.FEATURES`` order."""
        terms = np.unique(x.present)
        present = np.log(np.stack([self._present_ratio(int(t)) for t in terms]))
        floor = float(np.log(self.config["robust_floor"]))
        yield "knowledge_present", present.sum(axis=0)
        if len(x.excluded):
            excluded = np.unique(x.excluded)
            rows = np.log(np.stack([self._excluded_ratio(int(t)) for t in excluded]))
            yield "knowledge_excluded", rows.sum(axis=0)
        else:
            yield "knowledge_excluded", np.zeros(self.n)
        similarity = self._similarity(x) if self.encoder is not None else np.zeros(self.n)
        yield "encoder", similarity
        resnik, share = self._resnik(self.resnik, self.ic, x.present)
        yield "resnik_one_sided", resnik
        yield "matched_share", share
        yield "knowledge_robust", np.maximum(present, floor).sum(axis=0)
        unpublished = self.has_cases - self.has_published
        yield "unpublished_cases", unpublished
        yield "encoder_if_unpublished", similarity * unpublished
        yield "not_omim", self.not_omim
        resnik_cases = self._resnik(self.cases, self.cases_ic, x.present)[0]
        yield "resnik_unpublished", resnik_cases * unpublished
        yield "disease_side", self._disease_side(x.present)
        yield "exact_share", self._exact_share(x.present)
        yield "considered_share", self._considered_share(x.excluded)
        yield "published_cases", self.has_published
        yield "encoder_if_published", similarity * self.has_published
        yield "resnik_published", resnik_cases * self.has_published

    def logits(self, x: RareInput) -> np.ndarray:
        """Hybrid logits of every candidate, accumulated in feature order, the
        strongest re-ranked by the trees (``rare.components.Components.logits_batch``)."""
        position = {name: j for j, name in enumerate(self.config["features"])}
        out = np.zeros(self.n)
        kept: list[np.ndarray] = []
        for name, column in self.columns_of(x):
            w = float(self.weights[position[name]])
            if w:
                out += w * column
            if self.reranker is not None and name in self.config["rerank"]["features"]:
                kept.append(np.broadcast_to(column, out.shape))
        if self.reranker is None:
            return out
        # ``rare.hybrid.reranked``: the trees' margin on the strongest candidates
        k = min(int(self.config["rerank"]["top"]), self.n)
        rows = np.argpartition(-out, k - 1)[:k]
        values = np.column_stack([c[rows] for c in kept]).astype(np.float32)
        out[rows] += margins(self.reranker, values)[:, 0]
        return out

    def rank(self, patient: Patient) -> list[tuple[str, str, float]]:
        """Top ``serving_top_k`` RARE candidates ``(id, name, P(d | rare))``; empty
        without a usable present term (``RareDiseaseModel.rank``)."""
        x = self.patient_input(patient)
        if x is None:
            return []
        logits = self.logits(x)
        if len(self.columns) != logits.shape[0]:
            logits = np.take(logits, self.columns)
        if self.primary is not None:
            logits = _grouped(logits, self.primary, self.columns)
        logits /= self.config["temperature"]
        peak = logits.max()
        log_norm = peak + np.log(np.exp(logits - peak).sum())
        k = min(int(self.config["serving_top_k"]), len(self.columns))
        top = np.argsort(-logits, kind="stable")[:k]
        probability = np.exp(logits[top] - log_norm)
        return list(
            zip(self.ids[top].tolist(), self.names[top].tolist(), probability.tolist(), strict=True)
        )


def _grouped(logits: np.ndarray, primary: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``EquivalenceGroups.apply`` on one patient's RARE logits."""
    out = logits.copy()
    members = np.flatnonzero(primary != np.arange(len(primary)))
    if len(members) == 0:
        return out
    heads = np.searchsorted(columns, primary[members])
    members = np.searchsorted(columns, members)
    np.maximum.at(out, heads, logits[members])
    out[members] = -np.inf
    return out


class Float32Csr:
    """``csr @ x`` accumulated in float32, each row's products added in index order
    (what scipy's ``csr_matvec`` does for float32 operands, so the same numbers)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        lengths = np.diff(indptr)
        order = np.argsort(-lengths, kind="stable")
        depth = int(lengths.max()) if len(lengths) else 0
        #: rows with more than k products, for every k (a prefix of ``order``)
        self.active = [order[: int((lengths > k).sum())] for k in range(depth)]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        products = self.data * x[self.indices]
        out = np.zeros(len(self.indptr) - 1, dtype=np.float32)
        starts = self.indptr[:-1]
        for k, rows in enumerate(self.active):
            out[rows] += products[starts[rows] + k]
        return out
