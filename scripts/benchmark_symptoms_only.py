"""Symptom-only benchmark: the knowledge scorer, exact-match naive Bayes and the predictor.

Patients (HPO terms present/absent, age, sex; no vitals, no labs) are drawn per disease
from the catalogue itself and from a PERTURBED catalogue (``knowledge.knowledge_shift``:
frequencies jittered, 20 % of the terms replaced by an ontology neighbour, extra
unrelated terms), from a heavily perturbed one (80 % of the terms replaced, at most 5
present), from a visit-like one (half the terms replaced, frequencies jittered more,
each disease's age pattern moved and widened, three extra complaints drawn by how
often the catalogue uses them) and the classic textbook presentations
(``knowledge/data/classic_presentations.yaml``). Top-1/3/10 accuracy of each ranker,
with 95 % bootstrap intervals (patients resampled), every disease's top-10, and the
predictor's latency per single patient, go to
``data/08_reporting/benchmark_symptoms_only.json``.

    python scripts/benchmark_symptoms_only.py                         # data/06_models/predictor.pkl
    python scripts/benchmark_symptoms_only.py --predictor none --n-per-disease 20
    # an earlier catalogue and knowledge parameters, for a before/after comparison:
    python scripts/benchmark_symptoms_only.py --predictor none --catalogue old.yaml \\
        --param age_tail=0 --output data/08_reporting/benchmark_symptoms_only_before.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from disease_pipeline.knowledge.catalogue import common_diseases_table, load_common_diseases
from disease_pipeline.knowledge.common_scorer import CommonKnowledgeScorer, KnowledgeParams
from disease_pipeline.knowledge.knowledge_shift import perturbed_catalogue, sample_symptom_patients
from disease_pipeline.knowledge.naive_bayes import naive_bayes_log_posterior
from disease_pipeline.knowledge.presentations import load_classic_presentations

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KS = (1, 3, 10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictor", default="data/06_models/predictor.pkl")
    parser.add_argument("--n-per-disease", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--output", default="data/08_reporting/benchmark_symptoms_only.json")
    parser.add_argument(
        "--catalogue", default=None, help="a common_diseases.yaml to use instead of the package's"
    )
    parser.add_argument(
        "--patients-catalogue",
        default=None,
        help="draw the patients from this common_diseases.yaml (default: the scored catalogue), "
        "e.g. to score a revised catalogue's patients with an earlier one",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one common_model.knowledge parameter (a number; repeatable)",
    )
    return parser.parse_args(argv)


def knowledge_params(overrides: list[str] | None = None) -> dict:
    """``common_model.knowledge`` parameters with ``NAME=VALUE`` overrides."""
    text = (PROJECT_ROOT / "conf/base/parameters_common_model.yml").read_text("utf-8")
    params = dict(yaml.safe_load(text)["common_model"]["knowledge"])
    known = set(KnowledgeParams.__dataclass_fields__)
    for item in overrides or []:
        name, sep, value = item.partition("=")
        if not sep or name not in known:
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE, NAME one of {sorted(known)}")
        params[name] = float(value)
    return params


def load_catalogue(path: str | None) -> pd.DataFrame:
    """The package's catalogue, or the one in the YAML file at ``path``."""
    if path is None:
        return load_common_diseases()
    return common_diseases_table(yaml.safe_load(Path(path).read_text("utf-8")))


def ranks_from_scores(log_post: np.ndarray, classes: list[str], labels: pd.Series) -> np.ndarray:
    """1-based rank of each patient's true disease (ties broken pessimistically)."""
    index = {c: j for j, c in enumerate(classes)}
    truth = np.array([log_post[i, index[label]] for i, label in enumerate(labels)])
    return 1 + (log_post > truth[:, None]).sum(axis=1)


def ranks_from_predictor(predictor, patients: pd.DataFrame, batch: int = 500) -> np.ndarray:
    """Rank of the true disease in the predictor's ranked differential (11 = not listed)."""
    records = [
        {
            "age": float(p.age),
            "sex": p.sex,
            "symptoms": [{"code": t} for t in p.present]
            + [{"code": t, "present": False} for t in p.absent],
        }
        for p in patients.itertuples()
    ]
    ranks = []
    for start in range(0, len(records), batch):
        outputs = predictor.predict_records(records[start : start + batch], top_k=10, explain=False)
        for output, label in zip(
            outputs, patients["label"].iloc[start : start + batch], strict=True
        ):
            codes = [e["code"] for e in output["differential"][:10]]
            ranks.append(codes.index(label) + 1 if label in codes else 11)
    return np.asarray(ranks)


def summary(ranks: np.ndarray, labels: pd.Series, n_boot: int, seed: int) -> dict:
    """Top-k with 95 % bootstrap intervals, and per-disease top-10."""
    rng = np.random.default_rng(seed)
    out: dict = {"n_patients": len(ranks)}
    samples = rng.integers(0, len(ranks), size=(n_boot, len(ranks)))
    for k in KS:
        hit = ranks <= k
        boot = hit[samples].mean(axis=1)
        out[f"top{k}"] = {
            "value": round(float(hit.mean()), 4),
            "ci95": [
                round(float(np.quantile(boot, 0.025)), 4),
                round(float(np.quantile(boot, 0.975)), 4),
            ],
        }
    per_disease = pd.Series(ranks <= 10).groupby(labels.to_numpy()).mean()
    out["diseases_top10_below_0.5"] = sorted(per_disease[per_disease < 0.5].index.tolist())
    out["worst_top10"] = {k: round(float(v), 3) for k, v in per_disease.nsmallest(8).items()}
    out["per_disease_top10"] = {k: round(float(v), 3) for k, v in per_disease.items()}
    return out


def latency(predictor, patients: pd.DataFrame, n: int = 60) -> dict:
    """Milliseconds of ``predict_records`` on one patient (explanation on, one thread as
    the service runs), after one warm-up pass over the same patients."""
    from disease_pipeline.serving.runtime import limit_threads

    limit_threads(1)

    def record(p) -> dict:
        return {"age": float(p.age), "sex": p.sex, "symptoms": [{"code": t} for t in p.present]}

    rows = list(patients.sample(n=min(n, len(patients)), random_state=0).itertuples())
    for p in rows:
        predictor.predict_records([record(p)])
    times = []
    for p in rows:
        started = time.perf_counter()
        predictor.predict_records([record(p)])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "n": len(times),
        "p50_ms": round(float(np.median(times)), 2),
        "p95_ms": round(float(np.quantile(times, 0.95)), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    scored = load_catalogue(args.catalogue)
    params = knowledge_params(args.param)
    scorer = CommonKnowledgeScorer.from_catalogue(scored, **params)
    catalogue = (
        scored if args.patients_catalogue is None else load_catalogue(args.patients_catalogue)
    )
    predictor = None
    path = Path(args.predictor)
    if args.predictor != "none" and (PROJECT_ROOT / path).exists():
        with (PROJECT_ROOT / path).open("rb") as handle:
            predictor = pickle.load(handle)
    samples = {
        "catalogue": sample_symptom_patients(catalogue, args.n_per_disease, seed=args.seed),
        "perturbed_catalogue": sample_symptom_patients(
            perturbed_catalogue(catalogue, seed=args.seed),
            args.n_per_disease,
            seed=args.seed + 1,
            extra_terms_mean=1.5,
        ),
        # most terms replaced by a neighbour, short visits: exact matching breaks down here
        "perturbed_catalogue_heavy": sample_symptom_patients(
            perturbed_catalogue(catalogue, seed=args.seed + 2, replace_share=0.8),
            args.n_per_disease,
            seed=args.seed + 3,
            extra_terms_mean=2.0,
            max_present=5,
        ),
        # another source's picture: half the terms replaced, frequencies and age patterns
        # moved, common complaints of other diseases recorded beside the diagnosis
        "perturbed_catalogue_visit_like": sample_symptom_patients(
            perturbed_catalogue(
                catalogue,
                seed=args.seed + 4,
                replace_share=0.5,
                frequency_jitter=1.25,
                age_shift=0.75,
            ),
            args.n_per_disease,
            seed=args.seed + 5,
            extra_terms_mean=3.0,
            max_present=6,
            extra_by_usage=True,
        ),
        "classic_presentations": load_classic_presentations(),
    }
    report: dict = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python scripts/benchmark_symptoms_only.py "
        + f"--predictor {args.predictor} --n-per-disease {args.n_per_disease} --seed {args.seed}"
        + (f" --catalogue {args.catalogue}" if args.catalogue else "")
        + (f" --patients-catalogue {args.patients_catalogue}" if args.patients_catalogue else "")
        + "".join(f" --param {p}" for p in args.param),
        "n_diseases": len(catalogue),
        "catalogue": args.catalogue or "package",
        "patients_catalogue": args.patients_catalogue or args.catalogue or "package",
        "knowledge_params": params,
        "predictor": str(path) if predictor is not None else None,
        "results": {},
    }
    for name, patients in samples.items():
        age, sex = patients["age"].to_numpy(float), patients["sex"].to_numpy(object)
        rankers = {
            "knowledge_scorer": ranks_from_scores(
                scorer.log_posterior_terms(
                    list(patients["present"]), list(patients["absent"]), age, sex
                ),
                scorer.classes,
                patients["label"],
            ),
            "naive_bayes_exact_terms": ranks_from_scores(
                naive_bayes_log_posterior(
                    scorer, list(patients["present"]), list(patients["absent"]), age, sex
                ),
                scorer.classes,
                patients["label"],
            ),
        }
        if predictor is not None:
            rankers["predictor"] = ranks_from_predictor(predictor, patients)
        report["results"][name] = {
            ranker: summary(ranks, patients["label"], args.bootstrap, args.seed)
            for ranker, ranks in rankers.items()
        }
    if predictor is not None:
        report["predictor_latency_one_patient"] = latency(predictor, samples["catalogue"])
    output = PROJECT_ROOT / args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    for name, results in report["results"].items():
        for ranker, s in results.items():
            print(
                f"{name:30s} {ranker:24s} "
                + " ".join(f"top{k}={s[f'top{k}']['value']:.3f} {s[f'top{k}']['ci95']}" for k in KS)
                + f"  <0.5@10: {len(s['diseases_top10_below_0.5'])}"
            )
    if "predictor_latency_one_patient" in report:
        print("latency", report["predictor_latency_one_patient"])
    return report


if __name__ == "__main__":
    main()
