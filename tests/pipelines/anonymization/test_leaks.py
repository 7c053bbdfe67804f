"""The leak finder itself: it must find what is there and ignore vocabulary."""

from __future__ import annotations

import pandas as pd

from tests.pipelines.anonymization.leaks import LeakFinder

IDENTIFIERS = pd.DataFrame(
    {
        "kind": ["family_name", "given_name", "postal_code", "phone"],
        "value": ["Wilson", "Ana", "62704", "(217) 555-0143"],
    }
)


def test_finds_planted_identifiers_in_tables_and_text():
    finder = LeakFinder(IDENTIFIERS)
    frames = {"notes": pd.DataFrame({"text": ["Seen: Ana, fever", "call (217) 555-0143"]})}
    assert sorted(finder.in_frames(frames)) == ["notes.text: given_name", "notes.text: phone"]
    assert finder.in_text("log", "zip 62704 written") == ["log: postal_code"]


def test_ignores_vocabulary_case_and_substrings_of_other_tokens():
    finder = LeakFinder(IDENTIFIERS)
    frames = {
        "diagnoses": pd.DataFrame({"name": ["Wilson disease"]}),
        "notes": pd.DataFrame({"text": ["banana; Anatomy; ana (lower case is not the name)"]}),
        "ids": pd.DataFrame({"patient_id": ["a162704f", "962704"]}),
    }
    assert finder.in_frames(frames) == []


def test_zip_codes_are_not_found_inside_numbers_or_codes():
    finder = LeakFinder(IDENTIFIERS)
    assert finder.in_text("t", "value 62704.0, LOINC 62704-5, ORPHA:62704, 162704") == []
    assert finder.in_text("t", "lives in 62704.") == ["t: postal_code"]
