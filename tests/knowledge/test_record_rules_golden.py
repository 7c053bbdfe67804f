"""Valid records normalise exactly as before the single rule set (issue 14).

``tests/data/record_rules_golden.json`` holds 200 fixed, valid patient records (built
once from the features tests' synthetic warehouse, made harder with SNOMED CT codes,
obsolete and alternative HPO ids, lower-case and spaced codes, HPO ids newer than the
release, non-canonical units and unit spellings, ICD-10 spellings, unknown ages and
time zones) and what the checkers answered for them when the file was written: the
service's record and notes (``RecordNormaliser``) and the pyfunc's records
(``normalise_records``), which agreed. Normalised records identical ⇒ tables, features and answers
identical. Regenerate (only on purpose) with
``.venv/bin/python -m tests.knowledge.test_record_rules_golden``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from disease_pipeline.predictor.records_check import normalise_records
from disease_pipeline.records import PatientRecord
from disease_pipeline.serving.inputs import RecordNormaliser

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "record_rules_golden.json"
N_RECORDS = 200


def _inputs() -> list[dict[str, Any]]:
    """200 valid records as JSON (generated once; the file keeps them)."""
    from disease_pipeline.knowledge.catalogue import load_common_diseases, load_lab_table
    from disease_pipeline.knowledge.hpo import load_ontology
    from disease_pipeline.pipelines.monitor.replay import tables_to_records
    from tests.pipelines.features.synthetic import warehouse_tables

    onto = load_ontology()
    rng = random.Random(14)
    snomed = sorted(onto.snomed_to_hpo.items())
    replaced = sorted(onto.replaced_by.items())
    icd = sorted(load_common_diseases()["icd10"].astype(str))
    table = {row["loinc"]: row for row in load_lab_table().to_dict("records")}
    records, _ = tables_to_records(warehouse_tables(n_patients=120, seed=14, registry=0))
    out = []
    for record in records[:N_RECORDS]:
        data = record.model_dump(mode="json")
        for item in [*data["vitals"], *data["labs"]]:  # the warehouse's: canonical, plausible
            row = table[item["loinc"]]
            item["unit"] = row["canonical_unit"]
            low, high = float(row["plausible"]["min"]), float(row["plausible"]["max"])
            item["value"] = round(min(max(item["value"], low), high), 3)
        symptoms = data["symptoms"]
        for symptom in symptoms:
            draw = rng.random()
            if draw < 0.15:
                symptom["code"] = f" {symptom['code'].lower()} "
        if rng.random() < 0.4:
            code, _ = snomed[rng.randrange(len(snomed))]
            symptoms.append({"code": code, "system": "SNOMEDCT", "present": rng.random() < 0.8})
        if rng.random() < 0.3:
            old, _ = replaced[rng.randrange(len(replaced))]
            symptoms.append({"code": old, "severity": rng.choice([None, 1, 2, 3])})
        if rng.random() < 0.1:
            symptoms.append({"code": "HP:9999998"})  # well formed, newer than the release
        if rng.random() < 0.2:
            rng.shuffle(symptoms)
        for vital in data["vitals"]:
            if vital["loinc"] == "8310-5" and rng.random() < 0.4:
                vital["value"] = vital["value"] * 9 / 5 + 32
                vital["unit"] = rng.choice(["[degF]", "°F", "f"])
            elif vital["unit"] == "/min" and rng.random() < 0.2:
                vital["unit"] = "bpm"
            elif vital["unit"] == "mm[Hg]" and rng.random() < 0.2:
                vital["unit"] = "mmHg"
        for lab in data["labs"]:
            if lab["loinc"] == "2345-7" and rng.random() < 0.3:
                lab["value"] = lab["value"] / 18.016
                lab["unit"] = rng.choice(["mmol/L", "mmol/l"])
            elif lab["loinc"] == "2345-7" and rng.random() < 0.2:
                lab["unit"] = "mg/dl"
        if rng.random() < 0.4:
            code = icd[rng.randrange(len(icd))]
            data["comorbidities"].append(
                code.replace(".", "").lower() if rng.random() < 0.5 else code
            )
        if rng.random() < 0.1:
            data["age"] = None
        if rng.random() < 0.1:
            data["encounter_date"] = None
        elif rng.random() < 0.1 and data["encounter_date"]:
            data["encounter_date"] = data["encounter_date"][:19] + "+02:00"
        out.append(data)
    return out


def _answers(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    normaliser = RecordNormaliser()
    api = []
    for i, data in enumerate(inputs):
        clean, notes = normaliser.normalise(PatientRecord.model_validate(data), f"patients[{i}]")
        api.append({"record": clean.model_dump(mode="json"), "notes": notes})
    pyfunc = [r.model_dump(mode="json") for r in normalise_records(inputs)]
    return {"api": api, "pyfunc": pyfunc}


def write_golden() -> None:
    inputs = _inputs()
    answers = _answers(inputs)
    records = [a["record"] for a in answers["api"]]
    assert records == answers["pyfunc"], "the service and the pyfunc disagree on valid input"
    golden = {"inputs": inputs, "records": records, "notes": [a["notes"] for a in answers["api"]]}
    GOLDEN.write_text(json.dumps(golden, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_valid_records_normalise_as_the_golden_file(golden):
    """The service's records and notes, and the pyfunc's records, are those of the file
    (written by the three checkers before the single rule set)."""
    assert len(golden["inputs"]) == N_RECORDS
    answers = _answers(golden["inputs"])
    for i, answer in enumerate(answers["api"]):
        assert answer["record"] == golden["records"][i], f"service record {i} changed"
        assert answer["notes"] == golden["notes"][i], f"service notes of record {i} changed"
    for i, record in enumerate(answers["pyfunc"]):
        assert record == golden["records"][i], f"pyfunc record {i} changed"


if __name__ == "__main__":
    write_golden()
