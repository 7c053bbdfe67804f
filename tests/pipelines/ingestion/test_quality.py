"""Conservation check and scoring against the simulator's ground truth."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.fhir.vocabulary import Reject
from disease_pipeline.pipelines.ingestion.ledger import QUARANTINE_COLUMNS, Collector, RecordResult
from disease_pipeline.pipelines.ingestion.quality import conservation, score

SCORING = {"scored_sources": ["fhir", "lis"], "min_recall": 0.99, "max_false_quarantine": 0.001}


def _source() -> Collector:
    collector = Collector("lis", "lab.csv")
    collector.count_read(3)
    collector.record(1, -1, "A1", RecordResult())
    collector.reject(2, -1, "A2", Reject("unit", "kg", "unknown_unit"))
    collector.record(3, -1, "A3", RecordResult(), duplicate=True)
    return collector


def test_conservation_holds_for_a_consistent_source():
    parsed = _source().result()
    counts = conservation([parsed], parsed.quarantine)
    assert counts["sources"]["lis"] == {"read": 3, "accepted": 1, "quarantined": 1, "duplicate": 1}


def test_conservation_raises_when_a_record_is_lost():
    collector = _source()
    collector.count_read()  # a 4th record read but never given a status
    parsed = collector.result()
    with pytest.raises(ValueError, match="lis: 4 records read"):
        conservation([parsed], parsed.quarantine)


def test_conservation_raises_when_quarantine_rows_go_missing():
    parsed = _source().result()
    with pytest.raises(ValueError, match="without a quarantine row"):
        conservation([parsed], pd.DataFrame(columns=QUARANTINE_COLUMNS))


def _ledger(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["source", "line", "entry", "status"])
    return frame.assign(file="f", record_id=None)


def test_scoring_matches_entries_lines_and_counts_false_quarantines():
    ledger = _ledger(
        [("fhir", 1, 0, "accepted"), ("fhir", 1, 1, "quarantined"),  # injected error found
         ("fhir", 2, -1, "quarantined"),  # whole line quarantined: covers entry 3
         ("fhir", 3, 0, "accepted"), ("fhir", 3, 1, "duplicate"),  # duplicate found
         ("lis", 1, -1, "accepted"),  # injected error missed
         ("lis", 2, -1, "quarantined"),  # clean record wrongly quarantined
         ("lis", 3, -1, "accepted"), ("phenopacket", 0, -1, "quarantined")]  # not scored
    )  # fmt: skip
    truth = pd.DataFrame(
        [("fhir", 1, 1, "error", "code"), ("fhir", 2, 3, "error", "value"),
         ("fhir", 3, 1, "duplicate", "Observation"), ("lis", 1, -1, "error", "unit")],
        columns=["source", "line", "entry", "kind", "field"],
    )  # fmt: skip
    result = score(ledger, truth, SCORING)
    assert (result["errors_injected"], result["errors_found"]) == (3, 2)
    assert result["duplicate_recall"] == 1.0
    assert (result["clean_records"], result["clean_quarantined"]) == (4, 1)
    assert result["false_quarantine_share"] == 0.25 and not result["meets_targets"]
    assert result["missed_examples"][0]["source"] == "lis"


def test_no_ground_truth_is_not_an_error():
    assert score(_ledger([]), None, SCORING)["available"] is False


def test_ground_truth_without_required_columns_is_named():
    with pytest.raises(ValueError, match="missing column.*kind"):
        score(_ledger([]), pd.DataFrame({"source": [], "line": [], "entry": []}), SCORING)
