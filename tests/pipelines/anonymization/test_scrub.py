"""Free-text scrubbing of notes and quarantined values."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.core.scrub import (
    identifier_tokens,
    scrub_text,
    scrub_tokens,
)
from tests.pipelines.anonymization.fixtures import int_tables

ANA = int_tables()["patients"].iloc[0].to_dict()


def test_own_identifiers_are_replaced_in_any_spelling():
    text = (
        "ANA MARÍA ruiz-delgado, dob March 14, 1958 (14/03/1958), mrn 7741203, "
        "tel 217.555.0143, lives on 412 Maple Street in Springfield."
    )
    out = scrub_text(text, ANA)
    for identifier in ("ANA", "MARÍA", "ruiz", "1958", "7741203", "555", "Maple", "Springfield"):
        assert identifier.lower() not in out.lower(), (identifier, out)
    assert out.count("[NAME]") >= 1 and "[DATE]" in out and "[MRN]" in out
    assert "[PHONE]" in out and "[ADDRESS]" in out and "[LOCATION]" in out


def test_clinical_content_survives_scrubbing():
    text = "Fever 38.9 for 3 days, SpO2 91 %, BP 130/85, glucose 5.5 mmol/L, 45 years old."
    assert scrub_text(text, ANA) == text


def test_generic_patterns_catch_unknown_identifiers():
    text = (
        "Contact j.doe@mail.com or +1 (555) 201-3344 on 2024-02-29T10:00:00Z; "
        "lives at 9 Elm Avenue; record MRN-99812345; 93-year-old."
    )
    out = scrub_text(text)
    assert out == (
        "Contact [EMAIL] or [PHONE] on [DATE]; lives at [ADDRESS]; record [ID]; [AGE 90+]-year-old."
    )


def test_missing_text_stays_missing():
    assert scrub_text(None, ANA) is None
    assert scrub_text(float("nan")) is None


def test_token_scrub_uses_every_patients_identifiers():
    tokens = identifier_tokens(int_tables()["patients"], ["given_name", "family_name", "mrn"])
    assert {"ana", "maría", "okafor", "mrn-7741203", "7741203"} <= tokens
    out = scrub_tokens("Parse error near 'Okafor' for walter, MRN-0098812 (value 12.5)", tokens)
    assert out == "Parse error near '[REDACTED]' for [REDACTED], [ID] (value 12.5)"


def test_token_scrub_ignores_missing_columns_and_values():
    patients = pd.DataFrame({"family_name": ["Li", None]})
    assert identifier_tokens(patients, ["family_name", "email"]) == frozenset({"li"})
