"""FHIR and CDS Hooks answers of the clinician service over HTTP on this machine.

Starts ``bentoml serve`` on loopback with a throw-away configuration that trusts an
EHR whose key pair is made here, then

- sends the CDS Hooks ``patient-view`` specification-style examples
  (tests/data/cds_hooks) and ``--bundles`` simulated FHIR bundles (the ``simulate``
  pipeline's ``bundles.ndjson``, with its injected faults) to ``/fhir/predict`` and,
  as prefetch, to the hook; every answer is checked: cards and discovery against the
  JSON schemas written from the CDS Hooks 2.0 specification, ``RiskAssessment`` and
  ``OperationOutcome`` against the FHIR R4B models; a 5xx is a violation too;
- measures the hook's latency with prefetch (sequential calls, JWT signed beforehand):
  p50/p95/p99 against the 50 ms p95 target, and ``/fhir/predict``'s;
- keeps, for the record, the discovery document, the cards of the chest-pain patient of
  the common-disease issue (58-year-old man, chest pain and dyspnoea, nothing else) and
  of a published rare-disease case (tests/data/phenopackets), and the answers to a JWT
  with a bad signature, the wrong audience and an expiry in the past.

Figures go to ``data/08_reporting/benchmark_fhir.json``::

    BENTOML_HOME=data/test/bentoml python scripts/benchmark_fhir.py   # test-size model
    python scripts/benchmark_fhir.py --bundles 1000 --latency-calls 300
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment
from jsonschema import Draft202012Validator, FormatChecker
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disease_pipeline.serving.process import ServiceProcess, free_port, write_config  # noqa: E402
from tests.serving.ehr import SigningEhr, cds_settings  # noqa: E402

CDS_DATA = ROOT / "tests" / "data" / "cds_hooks"
SERVICE_ID = "disease-pipeline-differential"
TARGETS = {"cds_hook_p95_ms": 50.0, "schema_violations": 0}
RARE_CASE = ROOT / "tests" / "data" / "phenopackets" / "COL6A2" / "PMID_20106987_UC15.json"
HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"


def born(years: float) -> str:
    """The birth date of someone ``years`` old today."""
    return (date.today() - timedelta(days=round(years * 365.25))).isoformat()


def observation(index: int, code: str, present: bool = True) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"obs-{index}",
        "status": "final",
        "code": {"coding": [{"system": HPO_SYSTEM, "code": code}]},
        "valueBoolean": present,
    }


def example_bundles() -> dict[str, tuple[dict, str | None]]:
    """The chest-pain patient and the published rare case as bundles (and the case's
    disease id)."""
    chest = [
        {
            "resourceType": "Patient",
            "id": "chest-pain-58",
            "gender": "male",
            "birthDate": "1966-01-15",
        },
        observation(0, "HP:0100749"),
        observation(1, "HP:0002094"),
    ]
    packet = json.loads(RARE_CASE.read_text(encoding="utf-8"))
    rare = [
        {
            "resourceType": "Patient",
            "id": "col6a2-case",
            "gender": "female",
            "birthDate": "2014-01-01",
        }
    ]
    rare += [
        observation(i, f["type"]["id"], not f.get("excluded", False))
        for i, f in enumerate(packet["phenotypicFeatures"])
    ]

    def as_bundle(resources: list[dict]) -> dict:
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }

    return {
        "chest_pain": (as_bundle(chest), None),
        "rare_case": (as_bundle(rare), packet["diseases"][0]["term"]["id"]),
    }


def validator(name: str) -> Draft202012Validator:
    document = json.loads((CDS_DATA / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(document, format_checker=FormatChecker())


def hook_request(bundle: dict) -> dict:
    """A patient-view call whose prefetch holds the bundle's resources."""
    resources = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]
    resources = [r for r in resources if isinstance(r, dict)]
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    encounter = next((r for r in resources if r.get("resourceType") == "Encounter"), {})

    def searchset(kind: str) -> dict:
        found = [{"resource": r} for r in resources if r.get("resourceType") == kind]
        return {"resourceType": "Bundle", "type": "searchset", "entry": found}

    context = {"userId": "Practitioner/bench", "patientId": str((patient or {}).get("id"))}
    if encounter.get("id"):
        context["encounterId"] = str(encounter["id"])
    prefetch = {"conditions": searchset("Condition"), "observations": searchset("Observation")}
    if patient is not None:
        prefetch["patient"] = patient
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch,
    }


class Checker:
    """Counts answers and schema violations (with the first few, for the report)."""

    def __init__(self) -> None:
        self.response = validator("response")
        self.counts: dict[str, int] = {}
        self.violations: list[str] = []

    def bad(self, what: str, problem: str) -> None:
        self.violations.append(f"{what}: {problem}"[:300])

    def fhir(self, what: str, answer: httpx.Response) -> None:
        key = f"fhir_predict_{answer.status_code}"
        self.counts[key] = self.counts.get(key, 0) + 1
        try:
            if answer.status_code == 200:
                RiskAssessment.model_validate(answer.json()["riskAssessment"])
            elif answer.status_code in (400, 422):
                OperationOutcome.model_validate(answer.json())
            else:
                self.bad(what, f"status {answer.status_code}: {answer.text[:200]}")
        except Exception as error:  # noqa: BLE001 - every failure is a violation
            self.bad(what, f"{type(error).__name__}: {error}")

    def cards(self, what: str, answer: httpx.Response, allowed=(200,)) -> None:
        key = f"cds_hook_{answer.status_code}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if answer.status_code not in allowed:
            self.bad(what, f"status {answer.status_code}: {answer.text[:200]}")
            return
        if answer.status_code == 200:
            for error in self.response.iter_errors(answer.json()):
                self.bad(what, f"{list(error.path)}: {error.message}")


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=1000, help="simulated bundles checked")
    parser.add_argument("--latency-calls", type=int, default=300, help="timed hook calls")
    parser.add_argument(
        "--source",
        default=str(ROOT / "data" / "01_raw" / "fhir" / "bundles.ndjson"),
        help="NDJSON of the simulate pipeline's bundles",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "data" / "08_reporting" / "benchmark_fhir.json")
    )
    args = parser.parse_args()
    lines = []
    with open(args.source, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                lines.append(line)
            if len(lines) >= args.bundles:
                break
    ehr = SigningEhr()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench_fhir_") as tmp:
        folder = Path(tmp)
        port = free_port()
        audience = f"http://127.0.0.1:{port}/cds-services"
        config = write_config(
            folder,
            {"clinician": token},
            cds_hooks=cds_settings(ehr, ehr.write_jwks(folder), audience),
        )
        server = ServiceProcess(
            config=config,
            log=folder / "serve.log",
            private_home=folder / "bentoml",
            cwd=ROOT,
            port=port,
        ).start()
        checker = Checker()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            hook = f"{server.url}/cds-services/{SERVICE_ID}"
            # two kept-alive connections, as an EHR keeps one: the service token's
            # client, and the hook's (a new JWT in each call's header)
            with (
                httpx.Client(base_url=server.url, headers=headers, timeout=120) as http,
                httpx.Client(timeout=120) as ehr_http,
            ):
                discovery = http.get("/cds-services").json()
                for error in validator("discovery").iter_errors(discovery):
                    checker.bad("discovery", error.message)

                def call(body: dict) -> httpx.Response:
                    jwt_header = {"Authorization": f"Bearer {ehr.token(audience)}"}
                    return ehr_http.post(hook, json=body, headers=jwt_header)

                for path in sorted(CDS_DATA.glob("patient-view-*.json")):
                    example = json.loads(path.read_text(encoding="utf-8"))
                    checker.cards(path.name, call(example), allowed=(200, 412))
                usable = []
                for index, line in enumerate(tqdm(lines, desc="simulated bundles")):
                    answer = http.post(
                        "/fhir/predict",
                        content=line.encode(),
                        headers={"Content-Type": "application/json"},
                    )
                    checker.fhir(f"bundle {index}", answer)
                    bundle = json.loads(line)
                    cards = call(hook_request(bundle))
                    checker.cards(f"hook {index}", cards, allowed=(200, 412))
                    if answer.status_code == 200:
                        usable.append(bundle)
                examples = {"discovery": discovery}
                for name, (bundle, disease) in example_bundles().items():
                    cards = call(hook_request(bundle))
                    checker.cards(name, cards)
                    answer = http.post("/fhir/predict", params={"top_k": 50}, json=bundle)
                    checker.fhir(name, answer)
                    examples[name] = {"card": cards.json()["cards"][0], "disease": disease}
                    if answer.status_code == 200:
                        body = answer.json()
                        codes = [e["code"] for e in body["prediction"]["differential"]]
                        examples[name]["risk_assessment_top3"] = body["riskAssessment"][
                            "prediction"
                        ][:3]
                        rank = codes.index(disease) + 1 if disease in codes else None
                        examples[name]["disease_rank_in_top50"] = rank
                body = hook_request(example_bundles()["chest_pain"][0])
                stranger = SigningEhr(kid=ehr.kid)
                rejected = {
                    "bad_signature": stranger.token(audience),
                    "wrong_audience": ehr.token("https://elsewhere.test.invalid/cds-services"),
                    "expired": ehr.token(audience, now=time.time() - 900),
                }
                examples["jwt_rejections"] = {}
                for name, jwt_token in rejected.items():
                    answer = ehr_http.post(
                        hook, json=body, headers={"Authorization": f"Bearer {jwt_token}"}
                    )
                    examples["jwt_rejections"][name] = {
                        "status": answer.status_code,
                        **answer.json(),
                    }
                hook_ms, fhir_ms = [], []
                for i in tqdm(range(args.latency_calls), desc="latency"):
                    bundle = usable[i % len(usable)]
                    body = json.dumps(hook_request(bundle)).encode()
                    jwt_header = {
                        "Authorization": f"Bearer {ehr.token(audience)}",
                        "Content-Type": "application/json",
                    }
                    started = time.perf_counter()
                    answer = ehr_http.post(hook, content=body, headers=jwt_header)
                    hook_ms.append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
                    encoded = json.dumps(bundle).encode()
                    started = time.perf_counter()
                    answer = http.post(
                        "/fhir/predict",
                        content=encoded,
                        headers={"Content-Type": "application/json"},
                    )
                    fhir_ms.append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
        finally:
            server.stop()
    hook_latency = percentiles(hook_ms)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "source": str(args.source),
        "bundles_checked": len(lines),
        "answers": checker.counts,
        "schema_violations": len(checker.violations),
        "first_violations": checker.violations[:20],
        "cds_hook_latency": hook_latency,
        "fhir_predict_latency": percentiles(fhir_ms),
        "targets": TARGETS,
        "examples": examples,
        "met": {
            "cds_hook_p95_ms": hook_latency["p95_ms"] <= TARGETS["cds_hook_p95_ms"],
            "schema_violations": not checker.violations,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
