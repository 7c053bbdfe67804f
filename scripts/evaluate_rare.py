"""Real-case validation of the rare-disease model on a folder of GA4GH phenopackets.

Reproduces ``08_reporting/rare_model_validation.{json,md}`` (both protocols: unseen
diseases by leave-disease-out folds, few-shot with k support cases; plus, from the
PubMed reference each phenopacket names, new publications of known diseases; the hybrid, the LR
knowledge scorer, the encoder and the one-sided / symmetric Resnik baselines, with
disease-cluster bootstrap intervals, paired differences and a per-disease breakdown)
and the latency benchmark ``rare_model_latency.json`` outside Kedro, on any
phenopacket folder::

    python scripts/evaluate_rare.py /work/shared/data/phenopackets   # ~10 CPU-minutes
    python scripts/evaluate_rare.py tests/data/phenopackets --env test   # ~2 minutes

The phenopackets go through the ingestion pipeline's parser; parameters are the
``rare_model`` and ``ingestion`` parameters of conf/base, overlaid by ``--env``.
Common-disease pre-training uses patients sampled from the catalogue (no simulated
encounters here).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def load_parameters(env: str | None) -> dict:
    """``rare_model``, ``ingestion`` and ``anonymization`` parameters of conf/base,
    top-level keys replaced by those of ``conf/<env>`` (Kedro's default merge)."""
    params: dict = {}
    for folder in ["base", *([env] if env else [])]:
        for name in (
            "parameters_ingestion.yml",
            "parameters_rare_model.yml",
            "parameters_anonymization.yml",
        ):
            path = PROJECT_ROOT / "conf" / folder / name
            if path.is_file():
                params |= yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return params


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run both protocols and the benchmark, write the reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="data/01_raw/phenopackets")
    parser.add_argument("--out", default="data/08_reporting", help="report folder")
    parser.add_argument("--env", default=None, help="conf/<env> overlay, e.g. test")
    parser.add_argument("--folds", type=int, default=None, help="leave-disease-out folds")
    parser.add_argument("--shots", type=int, nargs="*", default=None, help="few-shot k values")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from disease_pipeline.pipelines.rare_model.registry import (
        ingest_phenopackets,
        phenopacket_publications,
    )
    from disease_pipeline.rare.cases import cases_from_frame
    from disease_pipeline.rare.evaluation import run_validation
    from disease_pipeline.rare.fit import RareModelParams, fit_rare_model, load_knowledge
    from disease_pipeline.rare.report import latency_report, validation_markdown

    params = load_parameters(args.env)
    rare_params = params["rare_model"]
    options = rare_params.get("validation", {})
    folds = args.folds or int(options.get("folds", 5))
    shots = args.shots if args.shots is not None else list(options.get("shots", [1, 3]))
    frame, counts = ingest_phenopackets(
        Path(args.folder), params["ingestion"], params["anonymization"]
    )
    logging.info("ingested %s", counts)
    base = load_knowledge()
    cases, stats = cases_from_frame(
        frame,
        base.ontology,
        base.space,
        "registry",
        id_column="encounter_id",
        disease_column="label_disease",
        keep_empty=True,
    )
    publications = phenopacket_publications(args.folder)
    logging.info("%d phenopackets name their publication", len(publications))
    config = RareModelParams.from_dict(rare_params)
    result = run_validation(
        base,
        cases,
        [],
        config,
        n_folds=folds,
        shots=shots,
        workers=int(options.get("workers", 1)),
        publications=publications,
    )
    result["ingestion"] = counts | {"term_cleaning": stats}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rare_model_validation.json").write_text(json.dumps(result, indent=2))
    (out / "rare_model_validation.md").write_text(validation_markdown(result))

    usable = [c for c in cases if c.present]
    model, _ = fit_rare_model(base, usable, [], config)
    rng = np.random.default_rng(0)
    n = int(rare_params.get("benchmark", {}).get("patients", 200))
    sample = [usable[i] for i in rng.choice(len(usable), size=min(n, len(usable)), replace=False)]
    latency = latency_report(model, sample)
    (out / "rare_model_latency.json").write_text(json.dumps(latency, indent=2))
    print(validation_markdown(result))
    print(json.dumps(latency, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
