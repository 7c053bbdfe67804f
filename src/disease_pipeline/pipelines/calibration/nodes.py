"""Nodes of ``calibration``: choose and fit one calibrator per model, assemble the predictor.

For each model (common, gate, severity) the candidate methods are judged by the ECE of
cross-fitted predictions on ``model_input_calibration`` (folds by patient: each fold is
calibrated by a calibrator fitted on the others), so no method is chosen on the data it
was fitted on. The winner is then refitted on the whole calibration split.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from disease_pipeline.pipelines.calibration.plots import message_figure, reliability_figure
from disease_pipeline.pipelines.common_model.training import encode
from disease_pipeline.predictor.bundle import DiseasePredictor
from disease_pipeline.predictor.calibrators import (
    METHODS,
    Calibrator,
    cross_fitted,
    expected_calibration_error,
    fold_labels,
    make_calibrator,
)
from disease_pipeline.predictor.explanations import feature_labels
from disease_pipeline.predictor.knowledge_blend import KnowledgeBlend, fit_knowledge_blend
from disease_pipeline.predictor.red_flags import critical_diseases

logger = logging.getLogger(__name__)


def calibrate_model(
    model_input_calibration: pd.DataFrame,
    model: Any,
    params: dict[str, Any],
    target: dict[str, Any],
) -> tuple[Calibrator, dict[str, Any], Figure]:
    """Calibrator of ``model`` chosen by cross-fitted ECE, its report and reliability diagram.

    Args:
        params: ``calibration`` parameters (``methods``, ``n_folds``, ``n_bins``, ``seed``,
            ``min_rows``).
        target: ``label_column`` (rows whose label is one of ``model.classes_`` are used),
            ``ece`` (``top_label`` or ``classwise``) and ``title``.
    """
    methods = ["none", *[m for m in params["methods"] if m != "none"]]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"calibration.methods: unknown {unknown}; use {list(METHODS)}")
    classes = [str(c) for c in model.classes_]
    label = target["label_column"]
    if label not in model_input_calibration:
        raise ValueError(f"calibration.models: label column {label!r} not in the split")
    y = encode(model_input_calibration[label], classes)
    rows = model_input_calibration[y >= 0]
    y = y[y >= 0]
    n_bins, kind, title = int(params["n_bins"]), target["ece"], target["title"]
    n_folds = int(params["n_folds"])
    if len(rows) < max(int(params["min_rows"]), 2 * n_folds):
        logger.warning("calibration %s: %d rows only; left uncalibrated", title, len(rows))
        report = {"n_rows": len(rows), "chosen": "none", "skipped": "too few rows"}
        return Calibrator(), report, message_figure(title, f"{len(rows)} calibration rows only")
    proba = model.predict_proba(rows)
    folds = fold_labels(len(rows), rows["patient_id"].to_numpy(), n_folds, int(params["seed"]))
    curves = {m: cross_fitted(m, proba, y, folds) for m in methods}
    ece = {m: expected_calibration_error(curves[m], y, n_bins, kind) for m in methods}
    chosen = min(methods, key=lambda m: (ece[m], methods.index(m)))
    calibrator = make_calibrator(chosen).fit(proba, y).set_evidence(curves[chosen], n_bins)
    logger.info(
        "calibration %s (%d rows, %s ECE): %s → %s",
        title,
        len(rows),
        kind,
        ", ".join(f"{m}={v:.4f}" for m, v in ece.items()),
        chosen,
    )
    report = {
        "n_rows": len(rows),
        "ece_kind": kind,
        "n_bins": n_bins,
        "n_folds": n_folds,
        "ece": ece,
        "chosen": chosen,
    }
    figure = reliability_figure(title, curves, y, n_bins=n_bins, kind=kind, ece=ece, chosen=chosen)
    return calibrator, report, figure


def fit_blend(
    model_input_calibration: pd.DataFrame,
    common_model: Any,
    common_calibrator: Calibrator,
    feature_builder: Any,
    params: dict[str, Any],
) -> tuple[KnowledgeBlend, dict[str, Any]]:
    """The knowledge blend of the common model (``predictor.knowledge_blend``), its
    weights per modality pattern chosen on the calibration split (top-3, then log loss), and its
    report. Catalogue diseases the model never saw join the differential through the
    knowledge scorer of ``feature_builder``.

    Args:
        params: ``calibration.knowledge_blend``: ``grid``, ``min_rows``,
            ``min_knowledge_share`` and ``default_weights`` per modality pattern;
            ``protect_must_not_miss``: the modality patterns on which the catalogue's
            must-not-miss diseases never fall below their knowledge posterior.
    """
    classes = [str(c) for c in common_model.classes_]
    y = encode(model_input_calibration["label_disease"], classes)
    rows = model_input_calibration[y >= 0]
    proba = common_calibrator.transform(common_model.predict_proba(rows))
    scorer = getattr(feature_builder, "knowledge_scorer", None)
    blend = fit_knowledge_blend(
        rows,
        proba,
        y[y >= 0],
        classes,
        extra=list(scorer.classes) if scorer is not None else [],
        grid=[float(g) for g in params["grid"]],
        min_rows=int(params["min_rows"]),
        top3_tolerance=float(params.get("top3_tolerance", 0.005)),
        scales=tuple(float(t) for t in params.get("scales", [1.0])),
        min_knowledge_share={k: float(v) for k, v in params["min_knowledge_share"].items()},
        default_weights={k: tuple(map(float, v)) for k, v in params["default_weights"].items()},
        protected=sorted(critical_diseases(scorer)) if scorer is not None else [],
        protected_patterns=list(params.get("protect_must_not_miss", [])),
    )
    logger.info("knowledge blend weights: %s", blend.weights)
    return blend, blend.report


def collect_calibrators(
    *,
    common: Calibrator,
    gate: Calibrator,
    severity: Calibrator,
    common_report: dict[str, Any],
    gate_report: dict[str, Any],
    severity_report: dict[str, Any],
) -> tuple[dict[str, Calibrator], dict[str, Any]]:
    """``model_calibrators`` (model name → calibrator) and the ECE report per model and method."""
    calibrators = {"common": common, "gate": gate, "severity": severity}
    report = {"common": common_report, "gate": gate_report, "severity": severity_report}
    return calibrators, report


def assemble_predictor(
    feature_builder: Any,
    common_model: Any,
    gate_model: Any,
    severity_model: Any,
    calibrators: dict[str, Calibrator],
    *,
    params: dict[str, Any],
    rare_model: Any = None,
    knowledge_blend: KnowledgeBlend | None = None,
) -> DiseasePredictor:
    """The ``DiseasePredictor`` bundle, its models set to one thread (fastest per patient).

    Raises:
        ValueError: a model reads a feature the builder does not produce.
    """
    produced = set(feature_builder.feature_names)
    models = {"common": common_model, "gate": gate_model, "severity": severity_model}
    for name, model in models.items():
        missing = [f for f in getattr(model, "feature_names", []) if f not in produced]
        if missing:
            raise ValueError(
                f"{name}_model reads {len(missing)} feature(s) the feature_builder does not "
                f"produce, e.g. {missing[:5]}"
            )
        if hasattr(model, "set_threads"):
            model.set_threads(int(params["predict_threads"]))
    codes = [str(c) for c in common_model.classes_]
    names = disease_names(knowledge_blend.classes if knowledge_blend is not None else codes)
    return DiseasePredictor(
        feature_builder=feature_builder,
        common_model=common_model,
        gate_model=gate_model,
        severity_model=severity_model,
        calibrators=calibrators,
        disease_names=names,
        feature_labels=clinical_feature_labels(list(feature_builder.feature_names)),
        rare_model=rare_model,
        knowledge_blend=knowledge_blend,
        knowledge_scorer=getattr(feature_builder, "knowledge_scorer", None),
        must_not_miss=dict(params.get("must_not_miss") or {}),
        rare_rank_floor=float(params.get("rare_rank_floor", 0.0)),
        interval_level=float(params["interval_level"]),
        explain_top_n=int(params["explain_top_n"]),
        metadata={
            "calibration": {name: getattr(c, "method", "none") for name, c in calibrators.items()},
            "severity_model": type(severity_model).__name__,
            "n_common_diseases": len(names),
            "n_features": len(feature_builder.feature_names),
            "knowledge_blend": None if knowledge_blend is None else knowledge_blend.weights,
        },
    )


def disease_names(codes: list[str]) -> dict[str, str]:
    """ICD-10 code → name from the common-disease catalogue (the code when unknown)."""
    from disease_pipeline.knowledge.catalogue import load_common_diseases

    table = load_common_diseases()
    known = dict(zip(table["icd10"].astype(str), table["name"].astype(str), strict=True))
    return {code: known.get(code, code) for code in codes}


def clinical_feature_labels(names: list[str]) -> dict[str, str]:
    """Feature column → clinical words (HPO term names, LOINC names, catalogue diseases,
    ICD-10-CM names of the other comorbidities)."""
    from disease_pipeline.knowledge.catalogue import (
        icd10_name,
        load_common_diseases,
        load_lab_table,
    )
    from disease_pipeline.knowledge.hpo import load_ontology
    from disease_pipeline.predictor.explanations import comorbidity_code

    labs = load_lab_table()
    measurement = {
        str(r["short"]): str(r["name"]) for r in labs.to_dict("records") if r.get("short")
    }
    catalogue = load_common_diseases()
    diseases: dict[str, str] = {}
    for code, name in zip(catalogue["icd10"].astype(str), catalogue["name"], strict=True):
        diseases.setdefault(code, str(name))
        diseases.setdefault(code[:3], str(name))
    for name in names:
        if name.startswith("comorbidity_"):
            code = comorbidity_code(name)
            if code not in diseases and (named := icd10_name(code)):
                diseases[code] = named
    return feature_labels(names, load_ontology().names, measurement, diseases)
