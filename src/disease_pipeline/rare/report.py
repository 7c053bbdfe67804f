"""Human-readable reports of the rare model: validation tables and latency."""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np

from disease_pipeline.rare.cases import Case
from disease_pipeline.rare.model import RareDiseaseModel, patient_input

METHOD_LABELS = {
    "hybrid": "Hybrid (learned, calibrated)",
    "knowledge": "Knowledge scorer alone (likelihood ratio)",
    "encoder": "Encoder alone (prototypes)",
    "resnik_bma": "Resnik best-match average (baseline)",
}


def _table(metrics: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| method | top-1 | top-3 | top-10 | MRR | n |", "|---|---|---|---|---|---|"]
    for method, m in metrics.items():
        lines.append(
            f"| {METHOD_LABELS.get(method, method)} | {m['top1']:.3f} | {m['top3']:.3f} "
            f"| {m['top10']:.3f} | {m['mrr']:.3f} | {m['n']} |"
        )
    return lines


def validation_markdown(result: dict[str, Any]) -> str:
    """The validation JSON rendered as a markdown page."""
    lines = [
        "# Rare-disease model — validation on real published cases",
        "",
        f"{result['cases']} registry cases (GA4GH phenopackets) of {result['diseases']} "
        "diseases; the true disease is ranked among ALL candidates (every HPO-annotated "
        "disease plus the common catalogue).",
        "",
        "- cases whose true disease has no HPO annotation: "
        f"**{result['cases_truth_not_annotated']}** ({result['diseases_not_annotated']} "
        "diseases) — the knowledge scorer and the Resnik baseline cannot rank them; only "
        "known cases (few-shot) can",
        f"- cases without any usable HPO term: {result['cases_without_usable_terms']} "
        "(counted as misses)",
        "",
    ]
    for name, block in result["protocols"].items():
        if name == "unseen":
            lines += [
                "## Protocol 1 — unseen diseases (leave-disease-out folds)",
                "",
                f"{len(block['folds'])} folds; no case of an evaluated disease is used "
                "anywhere in fitting (support, validation, encoder fine-tuning).",
            ]
        else:
            lines += [
                f"## Protocol 2 — few-shot, k = {block['k']}",
                "",
                f"{block['k']} support case(s) per disease with more than {block['k']} "
                f"cases; {block['test_cases']} cases of {block['test_diseases']} "
                "diseases tested.",
            ]
        lines += ["", *_table(block["metrics"]), ""]
    lines += [f"Run time: {result.get('seconds', '?')} s.", ""]
    return "\n".join(lines)


def latency_report(model: RareDiseaseModel, sample: list[Case]) -> dict[str, Any]:
    """Median/p95 milliseconds per patient against all candidates: the knowledge scorer
    alone, and the full ``rank_patient`` (hybrid, top 10 with explanations)."""
    knowledge, full = [], []
    for case in sample:
        patient = patient_input(model.space, case)
        start = time.perf_counter()
        model.components.knowledge_score(patient)
        knowledge.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        model.rank_patient(case.present, case.excluded, case.age, case.sex, top_k=10)
        full.append(1000 * (time.perf_counter() - start))

    def _stats(values: list[float]) -> dict[str, float]:
        return {
            "median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(np.max(values)), 2),
        }

    return {
        "patients": len(sample),
        "candidates": len(model.candidates),
        "mean_present_terms": round(float(np.mean([len(c.present) for c in sample])), 1),
        "knowledge_scorer": _stats(knowledge),
        "rank_patient_top10_with_explanations": _stats(full),
        "target_knowledge_ms": 20.0,
        "model_megabytes": round(len(pickle.dumps(model)) / 2**20, 1),
    }
