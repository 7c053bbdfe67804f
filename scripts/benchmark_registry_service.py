"""Published rare-disease cases sent to the real service as a clinician would send them.

Every GA4GH phenopacket of a folder becomes a ``PatientRecord`` with the case's HPO ids
exactly as published (present and excluded, no replacement of obsolete or newer ids),
its age at the last encounter when the case gives one (``null`` otherwise) and its sex.
The records go to ``POST /predict_batch`` of a real ``bentoml serve`` (loopback, a
throw-away configuration and token), in batches. Counted: batches refused whole,
patients refused (with their field errors), answers whose ``input_notes`` report ids the
model's HPO release does not know (and those that read a newer release's term as its
nearest ancestor) or an unknown age; and, on the answered patients, the
share with P(rare) >= 0.5 and how often the case's disease is first / in the top 10 of
the differential (equivalent ids of a grouped candidate count). The trained model has
seen these cases (the registry trains the rare model and half of it the gate), so the
hit rates check the served path end to end, not generalisation: the unseen-disease
figures are the rare validation's (``08_reporting/rare_model_validation.md``).

Figures go to ``data/08_reporting/benchmark_registry_service.json``::

    python scripts/benchmark_registry_service.py                       # ../shared phenopackets
    python scripts/benchmark_registry_service.py --folder tests/data/phenopackets \\
        --bentoml-home data/test/bentoml                                 # the test model
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disease_pipeline.pipelines.ingestion.phenopackets import iso_age_days  # noqa: E402
from disease_pipeline.serving.process import ServiceProcess, write_config  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "phenopackets"
SEXES = {"MALE": "male", "FEMALE": "female", "OTHER_SEX": "other"}


def case_record(packet: dict[str, Any]) -> tuple[dict, str | None]:
    """The clinician's request for one phenopacket, and the case's disease id."""
    subject = packet.get("subject") or {}
    days = iso_age_days(
        ((subject.get("timeAtLastEncounter") or {}).get("age") or {}).get("iso8601duration")
    )
    symptoms = [
        {"code": feature["type"]["id"], "present": not feature.get("excluded", False)}
        for feature in packet.get("phenotypicFeatures") or []
        if (feature.get("type") or {}).get("id", "").startswith("HP:")
    ]
    record = {
        "age": None if days is None else round(min(days / 365.25, 120.0), 2),
        "sex": SEXES.get(str(subject.get("sex") or ""), "unknown"),
        "symptoms": symptoms,
    }
    diseases = [
        (d.get("term") or {}).get("id") for d in packet.get("diseases") or [] if d.get("term")
    ]
    for interpretation in packet.get("interpretations") or []:
        disease = ((interpretation or {}).get("diagnosis") or {}).get("disease") or {}
        diseases.insert(0, disease.get("id"))
    return record, next((d for d in diseases if d), None)


def load_cases(folder: Path) -> list[tuple[str, dict, str | None]]:
    """``(file, record, disease id)`` of every ``*.json`` phenopacket under ``folder``."""
    cases = []
    for path in sorted(folder.rglob("*.json")):
        packet = json.loads(path.read_text(encoding="utf-8"))
        record, disease = case_record(packet)
        cases.append((str(path.relative_to(folder)), record, disease))
    return cases


def tally(cases, answers: list[dict | None]) -> dict[str, Any]:
    """Counts and shares over the answers (None: the batch was refused whole)."""
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    hits1 = hits10 = answered = gated = 0
    for (_, record, disease), answer in zip(cases, answers, strict=True):
        counts["patients"] += 1
        counts["age_unknown_sent"] += record["age"] is None
        if answer is None:
            counts["in_refused_batches"] += 1
            continue
        if "error" in answer:
            counts["refused"] += 1
            for detail in answer.get("detail") or [{"field": "?", "msg": answer["error"]}]:
                errors[f"{detail.get('field')}: {detail.get('msg')}"[:120]] += 1
            continue
        answered += 1
        notes = " ".join(answer.get("input_notes") or [])
        counts["answers_noting_unknown_terms"] += "HPO release" in notes
        counts["answers_reading_newer_terms_as_ancestors"] += "nearest ancestor" in notes
        counts["answers_noting_unknown_age"] += "age: unknown" in notes
        gated += float(answer.get("p_rare") or 0.0) >= 0.5
        listed = []
        for entry in answer.get("differential") or []:
            listed.append({entry.get("code"), *(entry.get("equivalent_ids") or [])})
        hits1 += bool(listed) and disease in listed[0]
        hits10 += any(disease in codes for codes in listed[:10])
    counts["answered"] = answered
    return {
        "counts": dict(counts),
        "refusal_reasons": dict(errors.most_common(20)),
        "share_p_rare_at_least_0_5": round(gated / answered, 4) if answered else None,
        "served_top1": round(hits1 / answered, 4) if answered else None,
        "served_top10": round(hits10 / answered, 4) if answered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = SHARED if SHARED.is_dir() else ROOT / "data" / "01_raw" / "phenopackets"
    parser.add_argument("--folder", default=str(default))
    parser.add_argument("--batch", type=int, default=250, help="patients per /predict_batch")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--bentoml-home", default=None, help="BentoML store ($BENTOML_HOME)")
    parser.add_argument(
        "--out", default=str(ROOT / "data" / "08_reporting" / "benchmark_registry_service.json")
    )
    args = parser.parse_args()
    cases = load_cases(Path(args.folder))
    if not cases:
        raise SystemExit(f"--folder: no phenopacket (*.json) under {args.folder}")
    token = secrets.token_urlsafe(24)
    answers: list[dict | None] = []
    whole_batch_errors: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_registry_") as tmp:
        folder = Path(tmp)
        server = ServiceProcess(
            config=write_config(folder, {"clinician": token}),
            log=folder / "serve.log",
            bentoml_home=Path(args.bentoml_home) if args.bentoml_home else None,
            private_home=folder / "bentoml",
            cwd=ROOT,
        ).start()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as http:
                for start in tqdm(range(0, len(cases), args.batch), desc="/predict_batch"):
                    chunk = cases[start : start + args.batch]
                    body = {"patients": [record for _, record, _ in chunk], "top_k": args.top_k}
                    response = http.post("/predict_batch", json=body)
                    if response.status_code == 200:
                        answers.extend(response.json()["predictions"])
                    else:
                        answers.extend([None] * len(chunk))
                        whole_batch_errors.append(
                            {"status": response.status_code, "body": response.text[:500]}
                        )
        finally:
            server.stop()
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "folder": args.folder,
        "batch": args.batch,
        "top_k": args.top_k,
        "batches_refused_whole": len(whole_batch_errors),
        "whole_batch_errors": whole_batch_errors[:5],
        **tally(cases, answers),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
