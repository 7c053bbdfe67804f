"""The catalogue knowledge scorer (``CommonKnowledgeScorer``) as edge arrays.

Per-term log likelihood ratios are computed here, by the scorer itself, for every HPO
phenotype term (present) and every catalogue term (absent); identical rows are stored
once. Priors are stored as their per-disease constants (the age pattern's normal mass
needs scipy's ``ndtr``: computed here once).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from disease_pipeline.knowledge import common_priors as priors
from disease_pipeline.knowledge.hpo import Ontology


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return unique, inverse.ravel().astype(np.int32)


def term_arrays(scorer: Any, onto: Ontology, hpo_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Log LR rows of present terms (every phenotype term of ``hpo_ids``) and absent
    terms (every term the catalogue propagates to); ``-1``: the term is not scored."""
    n = len(hpo_ids)
    present_index = np.full(n, -1, np.int32)
    phenotype = [i for i, t in enumerate(hpo_ids) if onto.is_phenotype(str(t))]
    rows = np.stack([scorer.term_log_ratio(str(hpo_ids[i]), present=True) for i in phenotype])
    present_rows, inverse = _unique_rows(rows)
    present_index[phenotype] = inverse
    absent_index = np.full(n, -1, np.int32)
    position = {str(t): i for i, t in enumerate(hpo_ids)}
    scored = [position[t] for t in scorer.term_index if t in position]
    absent = np.stack([scorer.term_log_ratio(str(hpo_ids[i]), present=False) for i in scored])
    absent_rows, inverse = _unique_rows(absent)
    absent_index[scored] = inverse
    return {
        "present_index": present_index,
        "present_rows": present_rows,
        "absent_index": absent_index,
        "absent_rows": absent_rows,
    }


def knowledge_arrays(scorer: Any, onto: Ontology, hpo_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Every array :mod:`disease_pipeline.edge.knowledge` reads (see module docstring)."""
    p, cat = scorer.params, scorer.catalogue
    spec = cat["age"].to_list()
    mean = np.array([s["mean"] for s in spec], float)
    sd = np.array([max(float(s["sd"]), 0.05) for s in spec], float)
    low = np.array([s["min"] for s in spec], float)
    high = np.array([s["max"] for s in spec], float) + 1.0
    season = cat["seasonality"].to_list()
    m = scorer.measurements
    return {
        "log_prevalence": priors.log_prevalence(cat, p.prevalence_weight),
        "age_mean": mean,
        "age_sd": sd,
        "age_low": low,
        "age_high": high,
        "age_mass": np.maximum(ndtr((high - mean) / sd) - ndtr((low - mean) / sd), 1e-9),
        "male_share": np.clip(cat["male_share"].to_numpy(float), p.sex_floor, 1.0 - p.sex_floor),
        "season_peak": np.array([s["peak_month"] for s in season], float),
        "season_amplitude": np.array([s["amplitude"] for s in season], float),
        "measure_loinc": np.asarray(m.loinc),
        "measure_mean": m.mean,
        "measure_sd": m.sd,
        "healthy_mean": m.healthy_mean,
        "healthy_sd": m.healthy_sd,
        **term_arrays(scorer, onto, hpo_ids),
    }


def knowledge_config(scorer: Any) -> dict[str, Any]:
    """The scorer's knobs and classes (JSON-ready)."""
    p = scorer.params
    return {
        "classes": list(scorer.classes),
        "age_weight": p.age_weight,
        "age_outside": p.age_outside,
        "age_tail": p.age_tail,
        "sex_weight": p.sex_weight,
        "season_weight": p.season_weight,
        "season_floor": p.season_floor,
        "measurement_weight": p.measurement_weight,
        "outlier_share": scorer.measurements.outlier_share,
        "outlier_width": scorer.measurements.outlier_width,
    }


def must_not_miss_config(scorer: Any, settings: dict[str, float]) -> dict[str, Any]:
    """Names, severity tiers and rule-out texts of the catalogue (``predictor.red_flags``)."""
    from disease_pipeline.predictor.red_flags import critical_diseases

    tiers = dict(zip(scorer.classes, map(int, scorer.catalogue["severity_tier"]), strict=True))
    return {
        "classes": list(scorer.classes),
        "names": dict(scorer.names),
        "tiers": tiers,
        "critical": critical_diseases(scorer),
        "floor": float(settings.get("floor", 0.02)),
        "low_cap": float(settings.get("low_cap", 0.4)),
    }
