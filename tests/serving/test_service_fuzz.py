"""Generated requests against the real service: a valid patient always gets a
prediction; a patient with one bad field gets a 4xx naming that field; nothing gets a
500 (issue: "never a 500 and never a silent guess").

Valid patients are drawn by hypothesis from the knowledge base (HPO ids, SNOMED CT
concepts mapped to HPO, LOINC codes with plausible values in their canonical unit,
ICD-10 comorbidities, dates); a corrupted patient is a valid one with one mutation
(unknown or malformed code, wrong system, unit of another test, implausible or
non-finite value, impossible date, wrong type, empty symptom list, unknown field).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disease_pipeline.knowledge.catalogue import load_lab_table
from disease_pipeline.knowledge.hpo import load_ontology
from tests.serving.conftest import client

pytestmark = [pytest.mark.slow, pytest.mark.server]

_ONTOLOGY = load_ontology()
_LABS = load_lab_table().to_dict("records")
HPO_IDS = sorted(_ONTOLOGY.names)[::997][:40]
SNOMED_IDS = sorted(_ONTOLOGY.snomed_to_hpo)[::53][:20]
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

symptom = st.one_of(
    st.fixed_dictionaries(
        {"code": st.sampled_from(HPO_IDS)},
        optional={"system": st.just("HPO")},
    ),
    st.fixed_dictionaries({"code": st.sampled_from(SNOMED_IDS), "system": st.just("SNOMEDCT")}),
).flatmap(
    lambda base: st.fixed_dictionaries(
        {k: st.just(v) for k, v in base.items()},
        optional={
            "present": st.booleans(),
            "severity": st.one_of(st.none(), st.integers(1, 3)),
            "onset_days": st.one_of(st.none(), st.floats(0, 3650)),
        },
    )
)


def measurement(kind: str) -> st.SearchStrategy[dict]:
    """A plausible value of a vital sign or lab, in its canonical unit."""
    rows = [row for row in _LABS if row["kind"] == kind]
    return st.sampled_from(rows).flatmap(
        lambda row: st.fixed_dictionaries(
            {
                "loinc": st.just(row["loinc"]),
                "value": st.floats(row["plausible"]["min"], row["plausible"]["max"]),
                "unit": st.just(row["canonical_unit"]),
            }
        )
    )


valid_patient = st.fixed_dictionaries(
    {
        "age": st.one_of(st.integers(0, 120), st.floats(0, 120)),
        "symptoms": st.lists(symptom, min_size=1, max_size=5),
    },
    optional={
        "patient_id": st.text(min_size=1, max_size=20),
        "sex": st.sampled_from(["female", "male", "other", "unknown"]),
        "encounter_date": st.sampled_from(
            ["2024-03-01T10:00:00", "2023-12-24T23:30:00+02:00", "1990-07-01T00:00:00Z"]
        ),
        "vitals": st.lists(measurement("vital"), max_size=3),
        "labs": st.lists(measurement("lab"), max_size=3),
        "comorbidities": st.lists(st.sampled_from(["I10", "e119", "J45.909", "Z72.0"]), max_size=3),
        "note": st.text(max_size=40),
    },
)

#: A mutation: (patient, a random text) → (bad patient, the field a refusal must name).
Mutation = Callable[[dict, str], tuple[dict, str]]


def _set(path: str, value) -> Mutation:
    def mutate(record: dict, _: str) -> tuple[dict, str]:
        *parents, last = path.split(".")
        target = record
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
        return record, path.replace(".0", "[0]")

    return mutate


def _with_vital(field: str, value) -> Mutation:
    def mutate(record: dict, _: str) -> tuple[dict, str]:
        vital = {"loinc": "8867-4", "value": 80.0, "unit": "/min", field: value}
        record["vitals"] = [vital]
        return record, f"vitals[0].{field}"

    return mutate


def _garbage_code(record: dict, text: str) -> tuple[dict, str]:
    record["symptoms"][0] = {"code": f"X{text}", "system": "HPO"}
    return record, "symptoms[0].code"


def _garbage_comorbidity(record: dict, text: str) -> tuple[dict, str]:
    record["comorbidities"] = [f"not an icd code {text}"]
    return record, "comorbidities[0]"


def _unknown_field(record: dict, _: str) -> tuple[dict, str]:
    record["colour"] = "red"
    return record, "colour"


MUTATIONS: list[Mutation] = [
    _set("age", -1),
    _set("age", 121),
    _set("age", math.nan),
    _set("age", math.inf),
    _set("age", "forty"),
    _set("symptoms", []),
    _set("symptoms.0.code", "HP:99999"),  # malformed (a well-formed unknown id is ignored)
    _set("symptoms.0.system", "ICD10"),
    _set("symptoms.0.severity", 7),
    _set("symptoms.0.onset_days", -3),
    _set("encounter_date", "0001-01-01T00:00:00"),
    _set("encounter_date", "9999-12-31T23:59:59"),
    _set("encounter_date", "yesterday"),
    _with_vital("loinc", "9999-9"),
    _with_vital("unit", "mg/dL"),
    _with_vital("value", 9000.0),
    _with_vital("value", math.nan),
    _with_vital("value", "fast"),
    _with_vital("loinc", "2345-7"),  # glucose is a lab, not a vital
    _garbage_code,
    _garbage_comorbidity,
    _unknown_field,
]

corrupted_patient = st.tuples(valid_patient, st.sampled_from(MUTATIONS), st.text(max_size=8)).map(
    lambda drawn: drawn[1](copy.deepcopy(drawn[0]), drawn[2])
)


@pytest.fixture(scope="module")
def clinician(service, tokens):
    with client(service, tokens["clinician"]) as http:
        yield http


def post(http, path: str, payload: dict):
    # allow_nan: a client may send NaN/Infinity literals; the service must refuse them
    body = json.dumps(payload, allow_nan=True).encode()
    return http.post(path, content=body, headers={"Content-Type": "application/json"})


def check_predictions(response, count: int) -> None:
    assert response.status_code == 200, response.text[:800]
    body = response.json()
    predictions = body.get("predictions", [body])
    assert len(predictions) == count
    for prediction in predictions:
        probabilities = [d["probability"] for d in prediction["differential"]]
        assert probabilities and probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 and math.isfinite(p) for p in probabilities)
        assert prediction["severity"]["level"] in {"low", "moderate", "high", "critical"}


def named_fields(response) -> list[str]:
    """The fields a 4xx names, as dotted paths (``patient.labs[0].unit``)."""
    assert response.status_code in (400, 422), (response.status_code, response.text[:800])
    body = response.json()
    assert body["error"] and body["detail"], body
    names = []
    for item in body["detail"]:
        if item.get("field"):
            names.append(item["field"])
            continue
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        names.append(path.lstrip("."))
    return names


@settings(SETTINGS, max_examples=60)
@given(record=valid_patient, top_k=st.one_of(st.none(), st.integers(1, 50)))
def test_a_valid_generated_patient_always_gets_a_prediction(clinician, record, top_k):
    payload = {"patient": record} | ({} if top_k is None else {"top_k": top_k})
    check_predictions(post(clinician, "/predict", payload), 1)


@settings(SETTINGS, max_examples=120)
@given(case=corrupted_patient)
def test_one_bad_field_gets_a_4xx_naming_it_never_a_500(clinician, case):
    record, field = case
    response = post(clinician, "/predict", {"patient": record})
    names = named_fields(response)
    assert any(name.endswith(f"patient.{field}") for name in names), (field, names)


@settings(SETTINGS, max_examples=30)
@given(
    records=st.lists(valid_patient, min_size=1, max_size=4),
    bad=st.one_of(st.none(), corrupted_patient),
    position=st.integers(0, 4),
)
def test_a_batch_predicts_every_valid_patient_and_names_the_bad_one(
    clinician, records, bad, position
):
    if bad is None:
        check_predictions(post(clinician, "/predict_batch", {"patients": records}), len(records))
        return
    record, field = bad
    position = min(position, len(records))
    records = [*records[:position], record, *records[position:]]
    response = post(clinician, "/predict_batch", {"patients": records})
    assert response.status_code == 200, response.text[:800]
    entries = response.json()["predictions"]
    refused = entries.pop(position)
    assert refused["status"] in (400, 422) and refused["index"] == position
    names = [d["field"] for d in refused["detail"]]
    assert any(name.endswith(f"patients[{position}].{field}") for name in names), (field, names)
    for entry in entries:  # the neighbours are predicted
        probabilities = [d["probability"] for d in entry["differential"]]
        assert probabilities and probabilities == sorted(probabilities, reverse=True)
