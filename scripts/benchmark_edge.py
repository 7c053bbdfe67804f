"""Edge package figures: size on disk, latency per patient on one core, cold start, and
parity with the full predictor; written to data/08_reporting/benchmark_edge.json.

    python scripts/benchmark_edge.py --predictor data/06_models/predictor.pkl
    python scripts/benchmark_edge.py --predictor data/test/06_models/predictor.pkl \\
        --production-shape     # also: the package at conf/base's model sizes
    python scripts/benchmark_edge.py --engine exact    # one engine (default: both)

Targets (issue 18): package <= 50 MB, <= 100 ms per patient on one core, cold start
<= 2 s (a fresh ``python -m disease_pipeline.edge predict patient.json``: interpreter,
imports, package load with checksums, one answer). ``--production-shape`` re-exports
the package with conf/base's sizes where a test champion has conf/test's small ones: the
rare encoder (term_dim, hidden, out_dim) with random weights, and the common model
refitted on random rows with conf/base's ``n_estimators`` and ``max_depth`` and no early
stopping — size and latency only. Trees of random rows need not reach full depth, so
the report adds the bound for full-depth trees (the measured bytes per node of
``trees.npz`` and the boosters' ONNX files times rounds × classes × (2^(depth+1) − 1)
nodes).

Latency, cold start and parity are measured per engine of the runtime (``--engine``):
``exact`` (the boosters walked in numpy, the default) and ``onnx`` (the boosters'
ONNX files in onnxruntime); the parity adds, per booster, the largest difference of
the engine's margins and probabilities from XGBoost's own.
"""

from __future__ import annotations

import os

# one core, one thread: numpy's BLAS and onnxruntime (set before numpy loads)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _bench import machine, write_report  # noqa: E402

from disease_pipeline.edge.models import ENGINES  # noqa: E402
from disease_pipeline.edge.predict import EdgePredictor  # noqa: E402
from disease_pipeline.edge_export.patients import simulated_patients  # noqa: E402
from disease_pipeline.edge_export.writer import write_package  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"package_mb": 50.0, "latency_p95_ms": 100.0, "cold_start_s": 2.0}
TOLERANCE = 1e-4


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def latency(package: Path, patients: list[dict], engine: str) -> dict[str, float]:
    """Per-patient wall time of ``EdgePredictor.predict`` (record check included)."""
    edge = EdgePredictor.load(package, engine=engine)
    edge.predict(patients[0])  # warm caches of the first call
    times = []
    for record in patients:
        start = time.perf_counter()
        edge.predict(record)
        times.append(1000 * (time.perf_counter() - start))
    return {
        "patients": len(times),
        "mean_ms": round(statistics.fmean(times), 2),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "max_ms": round(max(times), 2),
    }


def cold_start(package: Path, patient: dict, runs: int, engine: str) -> dict[str, float]:
    """Wall time of a fresh CLI process answering one patient (median of ``runs``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "patient.json"
        path.write_text(json.dumps(patient), encoding="utf-8")
        command = [sys.executable, "-m", "disease_pipeline.edge", "predict", str(path)]
        command += ["--package", str(package), "--json", "--engine", engine]
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)  # noqa: S603
            times.append(time.perf_counter() - start)
    load_start = time.perf_counter()
    EdgePredictor.load(package, engine=engine)
    return {
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "load_in_process_s": round(time.perf_counter() - load_start, 3),
    }


def engine_margins(edge: EdgePredictor, spec: dict, booster, values: np.ndarray) -> np.ndarray:
    """The margins of one booster as the edge's engine computes them: the numpy trees,
    or the booster's ONNX file without its probability transform."""
    import onnxruntime as ort

    from disease_pipeline.edge.trees import margins
    from disease_pipeline.edge_export.models import onnx_margin_model

    if booster.ensemble is not None:
        return margins(booster.ensemble, values)
    data = onnx_margin_model((edge.package.root / spec["onnx"]).read_bytes())
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    raw = session.run(["probabilities"], {"X": values})[0]
    return raw[:, 1:] if raw.shape[1] == 2 else raw  # binary: [-margin, margin]


def margin_parity(predictor, edge: EdgePredictor, patients: list[dict]) -> dict[str, dict]:
    """Per booster: the largest difference between the edge engine's margins and
    probabilities and XGBoost's own (``output_margin=True``, ``predict_proba``) on the
    edge's feature rows of ``patients``, and how many values differ at all."""
    import xgboost as xgb

    rows = np.vstack([edge.features.row(edge.rules.patient(r)) for r in patients])
    out = {}
    for name, classifier in edge.models.items():
        model = getattr(predictor, f"{name}_model")
        values = rows[:, classifier.features].astype(np.float32)
        if hasattr(model, "inputs"):
            values = model.inputs(values)
        boosters = [model.model] if hasattr(model, "model") else getattr(model, "models", [])
        specs = (
            [classifier.config]
            if classifier.kind == "tree"
            else classifier.config.get("thresholds", [])
        )
        edge_boosters = iter(
            (spec, b) for spec, b in zip(specs, classifier.boosters, strict=True) if b is not None
        )
        for k, booster in enumerate(boosters):
            if isinstance(booster, float):
                continue
            spec, edge_booster = next(edge_boosters)
            ref = booster.get_booster().predict(xgb.DMatrix(values), output_margin=True)
            got = engine_margins(edge, spec, edge_booster, values)
            ref_p, got_p = booster.predict_proba(values), edge_booster.predict_proba(values)
            out[name if len(boosters) == 1 else f"{name}_{k}"] = {
                "trees": int(spec["trees"]["n_trees"]),
                "max_abs_margin_difference": float(np.abs(ref.reshape(got.shape) - got).max()),
                "margins_differing": int(np.sum(ref.reshape(got.shape) != got)),
                "max_abs_probability_difference": float(np.abs(ref_p - got_p).max()),
                "probabilities_differing": int(np.sum(ref_p != got_p)),
            }
    return out


def parity(predictor, package: Path, patients: list[dict], engines: list[str]) -> dict:
    """Per engine: top-5 agreement, the largest probability difference with the full
    predictor per output, and the boosters' margins against XGBoost's."""
    full = predictor.predict_records(patients, top_k=10, explain=False)
    return {engine: engine_parity(predictor, package, patients, full, engine) for engine in engines}


def engine_parity(predictor, package: Path, patients: list[dict], full: list, engine: str) -> dict:
    edge = EdgePredictor.load(package, engine=engine)
    same_top5 = same_list = same_level = 0
    worst = {"differential": 0.0, "p_rare": 0.0, "severity": 0.0}
    named_rare = over_tolerance = 0
    for ref, record in zip(full, patients, strict=True):
        got = edge.predict(record, top_k=10)
        codes = [e["code"] for e in ref["differential"]]
        mine = [e["code"] for e in got["differential"]]
        same_top5 += mine[:5] == codes[:5]
        same_list += mine == codes
        same_level += got["severity"]["level"] == ref["severity"]["level"]
        probability = {e["code"]: e["probability"] for e in got["differential"]}
        diffs = {
            "differential": [
                abs(e["probability"] - probability.get(e["code"], np.inf))
                for e in ref["differential"]
            ],
            "p_rare": [abs(ref["p_rare"] - got["p_rare"])],
            "severity": [
                abs(p - got["severity"]["probabilities"][k])
                for k, p in ref["severity"]["probabilities"].items()
            ],
        }
        for key, values in diffs.items():
            worst[key] = max(worst[key], *values)
        over_tolerance += max(max(values) for values in diffs.values()) > TOLERANCE
        named_rare += any(
            e["category"] == "RARE" and e["code"] != "RARE" for e in ref["differential"]
        )
    n = len(patients)
    largest = max(worst.values())
    return {
        "patients": n,
        "top5_identical": same_top5,
        "differential_identical": same_list,
        "severity_level_identical": same_level,
        "max_abs_probability_difference": float(largest),
        "max_abs_difference_by_output": {k: float(v) for k, v in worst.items()},
        "tolerance": TOLERANCE,
        "patients_over_tolerance": over_tolerance,
        "patients_with_named_rare_candidates": named_rare,
        "boosters": margin_parity(predictor, edge, patients),
        "met": same_top5 == n and largest <= TOLERANCE,
    }


def production_shape(predictor):
    """A copy of ``predictor`` at conf/base's sizes (see the module docstring)."""
    import torch
    import xgboost as xgb
    import yaml

    from disease_pipeline.rare.encoder import EncoderParams, PhenotypeEncoder, tower_arrays

    conf = ROOT / "conf" / "base"
    encoder = yaml.safe_load((conf / "parameters_rare_model.yml").read_text())["rare_model"]
    encoder = encoder["encoder"]
    trees = yaml.safe_load((conf / "parameters_common_model.yml").read_text())["common_model"]
    trees = trees["xgboost"]
    resized = copy.deepcopy(predictor)
    index = resized.rare_model.components.encoder
    n_terms = index.present_table.shape[0]
    torch.manual_seed(0)
    params = EncoderParams(
        term_dim=encoder["term_dim"], hidden=encoder["hidden"], out_dim=encoder["out_dim"]
    )
    index.present_table, index.absent_table, index.layers = tower_arrays(
        PhenotypeEncoder(n_terms, params).eval()
    )
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(index.prototype_vectors), params.out_dim))
    index.prototype_vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(
        np.float32
    )
    common = resized.common_model
    n_classes = (
        len(common.classes_) if common.output_columns is None else len(common.output_columns)
    )
    rows = rng.normal(size=(4000, len(common.feature_names))).astype(np.float32)
    labels = np.arange(len(rows)) % n_classes
    common.model = xgb.XGBClassifier(
        n_estimators=trees["n_estimators"],
        max_depth=trees["max_depth"],
        max_bin=trees["max_bin"],
        tree_method="hist",
        n_jobs=1,
    ).fit(rows, labels)
    common.prior_factor = None
    n_trees = common.model.get_booster().num_boosted_rounds() * n_classes
    shape = {
        "encoder": [params.term_dim, params.hidden, params.out_dim],
        "common_trees": n_trees,
        "common_max_depth": trees["max_depth"],
        "common_nodes": len(common.model.get_booster().trees_to_dataframe()),
        "common_full_depth_nodes": n_trees * (2 ** (trees["max_depth"] + 1) - 1),
    }
    return resized, shape


def booster_onnx_bytes(manifest: dict) -> int:
    """Bytes of the boosters' ONNX files (every ``.onnx`` but the rare encoder)."""
    return sum(
        facts["bytes"]
        for name, facts in manifest["files"].items()
        if name.endswith(".onnx") and name != "rare_encoder.onnx"
    )


def tree_nodes(config: dict) -> int:
    """Nodes of every booster of the package (``trees.npz``)."""
    specs = []
    for model in config["models"].values():
        specs += [model["trees"]] if "trees" in model else []
        specs += [t["trees"] for t in model.get("thresholds", []) if "trees" in t]
    return sum(int(spec["n_nodes"]) for spec in specs)


def measure(predictor, out: Path, patients: list[dict], runs: int, engines: list[str]) -> dict:
    start = time.perf_counter()
    manifest = write_package(predictor, out, model_version="benchmark", data_version="unknown")
    export_s = time.perf_counter() - start
    size = folder_bytes(out)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return {
        "export_s": round(export_s, 1),
        "package_bytes": size,
        "package_mb": round(size / 1e6, 2),
        "files_bytes": {k: v["bytes"] for k, v in manifest["files"].items()},
        "booster_onnx_bytes": booster_onnx_bytes(manifest),
        "tree_nodes": tree_nodes(config),
        "engines": {
            engine: {
                "latency_one_core": latency(out, patients, engine),
                "cold_start": cold_start(out, patients[0], runs, engine),
            }
            for engine in engines
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictor", type=Path, default=ROOT / "data/06_models/predictor.pkl")
    parser.add_argument("--out", type=Path, default=ROOT / "data/06_models/edge")
    parser.add_argument("--patients", type=int, default=200, help="latency sample")
    parser.add_argument("--parity", type=int, default=500, help="parity sample (0: skip)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--production-shape", action="store_true", help="see the docstring")
    parser.add_argument(
        "--engine",
        choices=[*ENGINES, "both"],
        default="both",
        help="the runtime engine(s) to measure (default: both)",
    )
    parser.add_argument(
        "--report", type=Path, default=ROOT / "data/08_reporting/benchmark_edge.json"
    )
    args = parser.parse_args()
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    with args.predictor.open("rb") as handle:
        predictor = pickle.load(handle)  # noqa: S301 - our own model
    patients = simulated_patients(max(args.patients, args.parity), seed=args.seed)
    result: dict = {
        "predictor": str(args.predictor),
        "machine": machine(),
        "load_average_1m_start": round(os.getloadavg()[0], 2),
        "one_core": True,
        "targets": TARGETS,
        "engines": engines,
        "package": measure(predictor, args.out, patients[: args.patients], args.cold_runs, engines),
    }
    if args.parity:
        result["parity"] = parity(predictor, args.out, patients[: args.parity], engines)
    if args.production_shape:
        resized, shape = production_shape(predictor)
        with tempfile.TemporaryDirectory() as tmp:
            sized = measure(
                resized,
                Path(tmp) / "edge",
                patients[: args.patients],
                args.cold_runs,
                engines,
            )
        tree_bytes = sized["files_bytes"]["trees.npz"] + sized["booster_onnx_bytes"]
        per_node = tree_bytes / sized["tree_nodes"]
        bound = sized["package_bytes"] + per_node * (
            shape["common_full_depth_nodes"] - shape["common_nodes"]
        )
        result["production_shape"] = {
            **shape,
            **sized,
            "package_mb_full_depth_bound": round(bound / 1e6, 2),
        }
    checked = [result["package"]] + ([result["production_shape"]] if args.production_shape else [])
    result["met"] = {
        "package_mb": all(
            m.get("package_mb_full_depth_bound", m["package_mb"]) <= TARGETS["package_mb"]
            for m in checked
        ),
        "latency_p95_ms": {
            engine: all(
                m["engines"][engine]["latency_one_core"]["p95_ms"] <= TARGETS["latency_p95_ms"]
                for m in checked
            )
            for engine in engines
        },
        "cold_start_s": {
            engine: all(
                m["engines"][engine]["cold_start"]["median_s"] <= TARGETS["cold_start_s"]
                for m in checked
            )
            for engine in engines
        },
        "parity": {engine: p["met"] for engine, p in result.get("parity", {}).items()},
    }
    result["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    write_report(args.report, result)


if __name__ == "__main__":
    main()
