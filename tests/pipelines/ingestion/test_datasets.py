"""TextLinesDataset and OptionalDataset: raw files that may be bad or absent."""

from __future__ import annotations

import pandas as pd

from disease_pipeline.datasets import OptionalDataset, TextLinesDataset


def test_lines_keep_their_numbers_and_bad_bytes_are_flagged(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_bytes(b'{"a": 1}\r\n\xff\xfe broken\n\n{"b": 2}\n')
    loaded = TextLinesDataset(filepath=str(path)).load()
    assert loaded.error is None
    assert loaded.lines[0] == '{"a": 1}'  # CRLF tolerated
    assert loaded.lines[3] == '{"b": 2}'  # line 4, the blank line 3 kept in place
    assert loaded.undecodable == frozenset({2})
    assert len(loaded.lines) == 4  # no phantom line after the final newline


def test_missing_file_is_reported_not_raised(tmp_path):
    loaded = TextLinesDataset(filepath=str(tmp_path / "absent.csv")).load()
    assert loaded.lines == []
    assert "absent.csv" in loaded.error or "FileNotFound" in loaded.error


def test_save_then_load_round_trips(tmp_path):
    dataset = TextLinesDataset(filepath=str(tmp_path / "sub" / "lines.txt"))
    dataset.save(["one", "two"])
    assert dataset.exists()
    assert dataset.load().lines == ["one", "two"]


def test_optional_dataset_gives_none_when_absent_and_data_when_present(tmp_path):
    config = {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "truth.csv")}
    optional = OptionalDataset(dataset=config)
    assert optional.load() is None
    optional.save(pd.DataFrame({"line": [3]}))
    assert optional.load()["line"].tolist() == [3]
