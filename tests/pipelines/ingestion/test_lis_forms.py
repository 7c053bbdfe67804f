"""LIS CSV and admission forms: unit conversion, code spelling, bad rows, duplicates."""

from __future__ import annotations

import pytest

from disease_pipeline.knowledge.catalogue import to_canonical
from disease_pipeline.pipelines.ingestion.nodes import parse_admission_forms, parse_lab_results

from . import builders as b


def _reasons(parsed) -> set[tuple]:
    q = parsed.quarantine
    return set(zip(q["line"], q["field"], q["reason"], strict=True))


def test_lab_units_are_converted_and_bad_rows_quarantined(lines_of, vocab, params):
    rows = [
        b.lab("e1", "2345-7", "5.5", "mmol/L"),  # glucose in mmol/L
        b.lab("e1", "2160-0", "1.1", "mg/dl"),  # creatinine, lower-case unit spelling
        b.lab("e1", "2345-7", "abc", "mg/dL"),  # not a number
        b.lab("e1", "2345-7", "90", "kg"),  # no conversion
        b.lab("e1", "9999-9", "90", "mg/dL"),  # unknown LOINC
        b.lab("e1", "2345-7", "90000", "mg/dL"),  # impossible
        {**b.lab("e1", "2823-3", "4.1", "mmol/L"), "collected_at": "05/01/2023 10:30"},
        b.lab("e1", "2345-7", "5.5", "mmol/L", accession="A2"),  # re-sent row, new accession
    ]
    text = b.lis_csv(rows) + "A9,MRN,e1,2345-7,glucose,5\n"  # 5 fields: malformed row
    parsed = parse_lab_results(lines_of("lis.csv", text), vocab, params)
    labs = parsed.tables["labs"]
    assert labs["value"].iloc[0] == pytest.approx(to_canonical("2345-7", 5.5, "mmol/L"))
    assert labs[["unit", "original_value", "original_unit"]].iloc[0].tolist() == [
        "mg/dL",
        5.5,
        "mmol/L",
    ]
    assert labs["unit"].iloc[1] == "mg/dL" and labs["original_unit"].iloc[1] == "mg/dl"
    assert labs["collected_at"].iloc[2] is None or str(labs["collected_at"].iloc[2]) in (
        "NaT",
        "None",
    )
    assert _reasons(parsed) == {
        (3, "value", "malformed_value"),
        (4, "unit", "unknown_unit"),
        (5, "loinc", "unknown_code"),
        (6, "value", "implausible_value"),
        (7, "collected_at", "malformed_date"),
        (9, "row", "malformed_row"),
    }
    assert parsed.ledger.set_index("line")["status"][8] == "duplicate"
    assert parsed.read == 9


def test_a_missing_column_quarantines_every_row_and_names_the_column(lines_of, vocab, params):
    columns = [c for c in b.LIS_COLUMNS if c != "unit"]
    text = b.lis_csv([b.lab("e1", "2345-7", "90", "mg/dL")] * 2, columns=columns)
    parsed = parse_lab_results(lines_of("lis.csv", text), vocab, params)
    assert "labs" not in parsed.tables
    assert parsed.quarantine[["line", "field", "reason"]].values.tolist() == [
        [1, "unit", "missing_column"],
        [2, "unit", "missing_column"],
    ]


def test_forms_normalise_codes_and_quarantine_only_the_bad_item(lines_of, vocab, params):
    symptoms = [
        {"code": "HP:0001945", "system": "HPO", "label": "Fever", "duration_days": 3},
        {"code": "HP0012735", "system": "HPO", "label": "Cough"},  # malformed id
    ]
    first = b.form("F-1", "e1", symptoms, ["e119", "i10", "J1"])  # J1: malformed ICD-10
    second = b.form("F-2", "e2", [], [], submitted_at="32/01/2023")
    resent = b.form("F-3", "e1", symptoms, ["e119", "i10", "J1"])  # same form, new id
    text = "\n".join([first, "{oops", second, resent]) + "\n"
    parsed = parse_admission_forms(lines_of("forms.jsonl", text), vocab, params)
    diagnoses = parsed.tables["diagnoses"]
    assert diagnoses["code"].tolist() == ["E11.9", "I10"]
    assert set(diagnoses["role"]) == {"comorbidity"}
    symptoms_out = parsed.tables["symptoms"]
    assert symptoms_out[["hpo_id", "onset_days", "source"]].values.tolist() == [
        ["HP:0001945", 3.0, "forms"]
    ]
    assert _reasons(parsed) == {
        (1, "reported_symptoms[1].code", "unknown_code"),
        (1, "comorbidities[2]", "unknown_code"),
        (2, "form", "malformed_json"),
        (3, "submitted_at", "malformed_date"),
    }
    assert parsed.ledger["status"].tolist() == ["quarantined"] * 3 + ["duplicate"]


def test_snomed_reported_symptom_maps_to_hpo(lines_of, vocab, params):
    snomed, hpo = next(iter(vocab.snomed_to_hpo.items()))
    line = b.form("F-1", "e1", [{"code": snomed, "system": "SNOMEDCT", "label": "x"}])
    parsed = parse_admission_forms(lines_of("forms.jsonl", line), vocab, params)
    row = parsed.tables["symptoms"].iloc[0]
    assert (row["hpo_id"], row["original_system"], row["original_code"]) == (
        hpo,
        "SNOMEDCT",
        snomed,
    )


def test_a_smoker_gets_the_tobacco_use_comorbidity_and_a_bad_flag_is_quarantined(
    lines_of, vocab, params
):
    """Smoking status is not dropped: ``smoker: true`` becomes the ICD-10 comorbidity of
    ``forms.smoker_code``; ``false`` adds nothing; anything else is quarantined by name."""
    lines = [
        b.form("F-1", "e1", [], ["i10"], smoker=True),
        b.form("F-2", "e2", [], [], smoker=False),
        b.form("F-3", "e3", [], [], smoker="sometimes"),
    ]
    parsed = parse_admission_forms(lines_of("forms.jsonl", "\n".join(lines) + "\n"), vocab, params)
    diagnoses = parsed.tables["diagnoses"]
    rows = diagnoses[["encounter_id", "code", "system", "role"]].values.tolist()
    assert rows == [["e1", "I10", "ICD10", "comorbidity"], ["e1", "Z72.0", "ICD10", "comorbidity"]]
    names = dict(zip(diagnoses["code"], diagnoses["name"], strict=True))
    assert names == {"I10": "Essential (primary) hypertension", "Z72.0": "Tobacco use"}
    assert _reasons(parsed) == {(3, "smoker", "malformed_value")}
    other = {**params, "forms": {**params["forms"], "smoker_code": "F17.210"}}
    parsed = parse_admission_forms(lines_of("forms.jsonl", lines[0] + "\n"), vocab, other)
    assert "F17.210" in parsed.tables["diagnoses"]["code"].tolist()
