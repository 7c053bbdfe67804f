"""Feature building shared by training and serving: :class:`FeatureBuilder`.

``tables`` is a dict of warehouse-shaped frames (docs/data_contracts.md, "Feature
building"): ``encounters`` (``encounter_id, start, age_years, sex``), ``symptoms``
(``encounter_id, hpo_id, present, severity, onset_days``), ``vitals`` and ``labs``
(``encounter_id, loinc, value`` in canonical units) and ``diagnoses`` (``encounter_id,
code, role``; only ``role == "comorbidity"`` rows are read, so the label never leaks).

Feature blocks, in column order: demographics; featuretools DFS aggregations (saved
definitions, vectorised in :meth:`FeatureBuilder.transform`); temporal features;
NEWS2/qSOFA; symptom counts per organ system and their interactions with age and
comorbidities; comorbidity flags; HPO phenotype vectors (present terms propagated to
their ancestors, ``hpo_<id>``; excluded terms propagated to their descendants,
``hpo_not_<id>``); optional ``missing_<lab>`` indicators; with ``knowledge`` parameters,
the catalogue knowledge scorer's log posterior per disease and the measured-modality
flags (``predictor.feature_knowledge``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from disease_pipeline.knowledge.hpo import PHENOTYPIC_ABNORMALITY, load_ontology
from disease_pipeline.predictor.feature_dfs import (
    build_entityset,
    calculate_with_featuretools,
    feature_label,
    specs_from_features,
    synthesise,
)
from disease_pipeline.predictor.feature_knowledge import knowledge_block, knowledge_names
from disease_pipeline.predictor.feature_scores import NEWS2_VITALS, SCORE_COLUMNS, clinical_scores
from disease_pipeline.predictor.feature_tables import Prepared, pair_matrix, prepare_tables
from disease_pipeline.predictor.reductions import aggregate, reduce_groups

logger = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.25


class FeatureBuilder:
    """Fits feature vocabularies and DFS definitions on training tables; transforms any tables.

    Args:
        dfs: featuretools settings: ``max_depth``, ``agg_primitives``, ``where_primitives``,
            ``primitive_options``.
        min_term_count: an HPO term enters the vocabulary when it occurs in at least this
            many training encounters (also applies to LOINC codes and comorbidities).
        max_phenotype_terms: size cap of the present-term vocabulary (most frequent first).
        max_excluded_terms: size cap of the excluded-term vocabulary.
        max_comorbidity_codes: size cap of the ICD-10 category flags.
        symptom_groups: group name → HPO id; symptoms are counted per group.
        news2_loinc: NEWS2 vital (``resp_rate``, ``spo2``, ``systolic_bp``, ``heart_rate``,
            ``temperature``) → LOINC code or list of codes.
        acute_onset_days / chronic_onset_days: thresholds of the progression flags.
        missing_indicators: add ``missing_<lab>`` columns.
        knowledge: ``common_model.knowledge`` parameters of the catalogue knowledge scorer
            (None: no knowledge block).
    """

    def __init__(
        self,
        *,
        dfs: dict,
        min_term_count: int,
        max_phenotype_terms: int,
        max_excluded_terms: int,
        max_comorbidity_codes: int,
        symptom_groups: dict[str, str],
        news2_loinc: dict[str, str | list[str]],
        acute_onset_days: float = 7,
        chronic_onset_days: float = 90,
        missing_indicators: bool = False,
        knowledge: dict | None = None,
    ) -> None:
        for name, value in (
            ("min_term_count", min_term_count),
            ("max_phenotype_terms", max_phenotype_terms),
            ("max_excluded_terms", max_excluded_terms),
            ("max_comorbidity_codes", max_comorbidity_codes),
        ):
            if not isinstance(value, int) or value < (1 if name == "min_term_count" else 0):
                raise ValueError(
                    f"features.builder.{name}: expected a non-negative int, got {value!r}"
                )
        missing = [v for v in NEWS2_VITALS if v not in news2_loinc]
        if missing:
            raise ValueError(f"features.builder.news2_loinc: missing vitals {missing}")
        onto = load_ontology()
        unknown = {g: t for g, t in symptom_groups.items() if t not in onto}
        if unknown:
            raise ValueError(f"features.builder.symptom_groups: unknown HPO ids {unknown}")
        self.dfs = dict(dfs)
        self.min_term_count = min_term_count
        self.max_phenotype_terms = max_phenotype_terms
        self.max_excluded_terms = max_excluded_terms
        self.max_comorbidity_codes = max_comorbidity_codes
        self.symptom_groups = dict(symptom_groups)
        self.news2_loinc = {
            v: [c] if isinstance(c, str) else list(c) for v, c in news2_loinc.items()
        }
        self.acute_onset_days = float(acute_onset_days)
        self.chronic_onset_days = float(chronic_onset_days)
        self.missing_indicators = bool(missing_indicators)
        self.knowledge = dict(knowledge) if knowledge is not None else None
        self.feature_names: list[str] = []
        self._lookups: dict[str, Callable[[str], np.ndarray]] = {}
        self._names: list[str] = []

    # ------------------------------------------------------------------ fitting
    def fit(self, tables: dict[str, pd.DataFrame]) -> FeatureBuilder:
        """Choose vocabularies and DFS definitions on the (training) ``tables``."""
        prep = prepare_tables(tables)
        if prep.n == 0:
            raise ValueError("FeatureBuilder.fit: no encounters to fit on")
        onto = load_ontology()
        self.ontology_version = onto.version
        self.knowledge_scorer = None
        if self.knowledge is not None:
            from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer

            self.knowledge_scorer = CommonKnowledgeScorer.from_catalogue(**self.knowledge)
        self.loinc_vocab = {
            child: self._frequent(prep.children[child], "loinc", None)
            for child in ("vitals", "labs")
        }
        self.loinc_labels = _loinc_labels()
        entityset = build_entityset(
            prep.encounter_ids, prep.age, prep.sex, prep.children, self.loinc_vocab
        )
        features = synthesise(entityset, self.dfs)
        import featuretools as ft

        self.feature_definitions: str = ft.save_features(features)
        self.specs = specs_from_features(features, self.loinc_labels)
        sym = prep.children["symptoms"]
        present = sym["present"] == 1.0
        pairs = pd.DataFrame({"code": sym["codes"][present], "term": sym["hpo_id"][present]})
        pairs = pairs.drop_duplicates()
        ancestors = {
            term: [
                a
                for a in onto.ancestors(term)
                if onto.is_phenotype(a) and a != PHENOTYPIC_ABNORMALITY
            ]
            for term in pairs["term"].unique()
        }
        pairs["term"] = pairs["term"].map(ancestors)
        self.phenotype_terms = self._top_terms(pairs.explode("term"), self.max_phenotype_terms)
        excluded = pd.DataFrame({"code": sym["codes"][~present], "term": sym["hpo_id"][~present]})
        excluded = excluded[excluded["term"].map(lambda t: t in onto)]
        self.excluded_terms = self._top_terms(excluded, self.max_excluded_terms)
        self.comorbidity_codes = self._frequent(
            prep.children["comorbidities"], "code", self.max_comorbidity_codes
        )
        self._lookups, self._names = {}, []
        self.feature_names = list(self._column_names())
        logger.info(
            "FeatureBuilder fitted on %d encounters: %d features (%d DFS, %d phenotype terms, "
            "%d excluded terms)",
            prep.n,
            len(self.feature_names),
            len(self.specs),
            len(self.phenotype_terms),
            len(self.excluded_terms),
        )
        return self

    def _top_terms(self, pairs: pd.DataFrame, cap: int | None) -> list[str]:
        """Terms of ``pairs`` (``code``, ``term``) seen in >= ``min_term_count`` encounters,
        the ``cap`` most frequent (ties by id), returned sorted."""
        counts = pairs.dropna().drop_duplicates()["term"].value_counts()
        counts = counts[counts >= self.min_term_count]
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return sorted(str(term) for term, _ in ranked[:cap])

    def _frequent(self, arrays: dict[str, np.ndarray], column: str, cap: int | None) -> list[str]:
        return self._top_terms(pd.DataFrame({"code": arrays["codes"], "term": arrays[column]}), cap)

    # --------------------------------------------------------------- transforms
    def transform(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Feature matrix (index ``encounter_id``, float columns :attr:`feature_names`).

        Vectorised numpy; never calls featuretools.
        """
        self._check_fitted()
        prep = prepare_tables(tables)
        dfs_block = aggregate(self.specs, prep.age, prep.children, prep.n)
        return self._assemble(prep, dfs_block, tables)

    def transform_featuretools(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Same as :meth:`transform`, the DFS block computed by ``ft.calculate_feature_matrix``."""
        self._check_fitted()
        prep = prepare_tables(tables)
        entityset = build_entityset(prep.encounter_ids, prep.age, prep.sex, prep.children)
        dfs_block = calculate_with_featuretools(
            self.feature_definitions, self.specs, entityset, prep.encounter_ids
        )
        return self._assemble(prep, dfs_block, tables)

    def _check_fitted(self) -> None:
        if not hasattr(self, "specs"):
            raise RuntimeError("FeatureBuilder is not fitted: call fit(tables) first")

    def _column_names(self) -> list[str]:
        """Column names of every block in :meth:`_assemble` order (cached)."""
        if self._names:
            return self._names
        groups = list(self.symptom_groups)
        names = [
            "sex_female",
            "sex_male",
            *(s.name for s in self.specs),
            *("month", "season_sin", "season_cos", "onset_spread_days"),
            *("acute_onset", "chronic_onset"),
            *SCORE_COLUMNS,
            *(f"symptoms_{g}_count" for g in groups),
            "age_x_max_severity",
            *(f"comorbidities_x_{g}" for g in groups),
            *(f"comorbidity_{feature_label(c)}" for c in self.comorbidity_codes),
            *(f"hpo_{feature_label(t)}" for t in self.phenotype_terms),
            *(f"hpo_not_{feature_label(t)}" for t in self.excluded_terms),
        ]
        if self.missing_indicators:
            names += [
                f"missing_{self.loinc_labels.get(c) or feature_label(c)}"
                for c in self.loinc_vocab["labs"]
            ]
        if getattr(self, "knowledge_scorer", None) is not None:
            names += knowledge_names(self.knowledge_scorer)
        duplicated = sorted({c for c in names if names.count(c) > 1})
        if duplicated:
            raise ValueError(f"FeatureBuilder: duplicated feature names {duplicated}")
        self._names = names
        return names

    def _assemble(
        self, prep: Prepared, dfs_block: np.ndarray, tables: dict[str, pd.DataFrame]
    ) -> pd.DataFrame:
        n, sym = prep.n, prep.children["symptoms"]
        present = sym["present"] == 1.0
        p_codes, p_terms = sym["codes"][present], sym["hpo_id"][present]
        max_onset = reduce_groups("max", sym["codes"], sym["onset_days"], n)
        min_onset = reduce_groups("min", sym["codes"], sym["onset_days"], n)
        onset_known = ~np.isnan(max_onset)
        angle = 2 * np.pi * (prep.start.dayofyear.to_numpy(dtype=float) - 1) / DAYS_PER_YEAR
        vitals = prep.children["vitals"]
        scores = clinical_scores(
            vitals["codes"], vitals["loinc"], vitals["value"], n, self.news2_loinc
        )
        group_counts = pair_matrix(
            p_codes, p_terms, n, len(self.symptom_groups), self._lookup("groups"), binary=False
        )
        max_severity = reduce_groups("max", sym["codes"], sym["severity"], n)
        comorbidities = prep.children["comorbidities"]
        comorbidity_count = reduce_groups("count", comorbidities["codes"], None, n)
        blocks = [
            np.column_stack([prep.sex == "female", prep.sex == "male"]),
            dfs_block,
            np.column_stack(
                [
                    prep.start.month.to_numpy(dtype=float),
                    np.sin(angle),
                    np.cos(angle),
                    max_onset - min_onset,
                    np.where(onset_known, max_onset <= self.acute_onset_days, np.nan),
                    np.where(onset_known, max_onset >= self.chronic_onset_days, np.nan),
                ]
            ),
            np.column_stack([scores[c] for c in SCORE_COLUMNS]),
            group_counts,
            (prep.age * max_severity)[:, None],
            group_counts * comorbidity_count[:, None],
            pair_matrix(
                comorbidities["codes"],
                comorbidities["code"],
                n,
                len(self.comorbidity_codes),
                self._lookup("comorbidities"),
            ),
            pair_matrix(p_codes, p_terms, n, len(self.phenotype_terms), self._lookup("present")),
            pair_matrix(
                sym["codes"][~present],
                sym["hpo_id"][~present],
                n,
                len(self.excluded_terms),
                self._lookup("excluded"),
            ),
        ]
        if self.missing_indicators:
            labs = prep.children["labs"]
            vocab = self.loinc_vocab["labs"]
            blocks.append(
                1.0 - pair_matrix(labs["codes"], labs["loinc"], n, len(vocab), self._lookup("labs"))
            )
        if getattr(self, "knowledge_scorer", None) is not None:
            blocks.append(knowledge_block(self.knowledge_scorer, tables, prep.encounter_ids))
        matrix = np.column_stack([np.asarray(block, dtype=float) for block in blocks])
        columns = self._column_names()
        if matrix.shape[1] != len(columns):
            raise RuntimeError("FeatureBuilder: feature blocks and names are out of step")
        return pd.DataFrame(matrix, index=prep.encounter_ids, columns=columns)

    def _lookup(self, kind: str):
        """Cached ``term → column positions`` for one vocabulary kind."""
        if kind not in self._lookups:
            self._lookups[kind] = self._make_lookup(kind)
        return self._lookups[kind]

    def _make_lookup(self, kind: str):
        onto = load_ontology()
        if kind == "excluded":
            terms = self.excluded_terms

            def compute(term: str) -> list[int]:
                return [i for i, v in enumerate(terms) if term in onto.ancestors(v)]

        else:
            vocab_list = {
                "present": self.phenotype_terms,
                "groups": list(self.symptom_groups.values()),
                "comorbidities": self.comorbidity_codes,
            }.get(kind) or self.loinc_vocab.get(kind, [])
            vocab = {t: i for i, t in enumerate(vocab_list)}
            propagate = kind in ("present", "groups")

            def compute(term: str) -> list[int]:
                keys = onto.ancestors(term) if propagate else (term,)
                return [vocab[a] for a in keys if a in vocab]

        cache: dict[str, np.ndarray] = {}

        def lookup(term: str) -> np.ndarray:
            if term not in cache:
                cache[term] = np.asarray(compute(term), dtype=int)
            return cache[term]

        return lookup

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lookups"] = {}
        return state


def _loinc_labels() -> dict[str, str]:
    """LOINC code → ``short`` label of the LOINC table (empty when the table is unavailable)."""
    try:
        from disease_pipeline.knowledge.catalogue import load_lab_table

        table = load_lab_table()
    except (ImportError, FileNotFoundError) as error:  # pragma: no cover - fallback
        logger.warning("LOINC table unavailable (%s): features named by LOINC code", error)
        return {}
    if "short" not in table:
        return {}
    return {str(r.loinc): feature_label(r.short) for r in table.itertuples() if r.short}
