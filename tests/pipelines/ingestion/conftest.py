"""Fixtures of the ingestion tests: parameters, the vocabulary and raw-file readers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from disease_pipeline.datasets import TextLines, TextLinesDataset
from disease_pipeline.fhir.vocabulary import Vocabulary
from disease_pipeline.pipelines.ingestion.nodes import build_vocabulary

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_PHENOPACKETS = PROJECT_ROOT / "tests" / "data" / "phenopackets"


def base_parameters() -> dict:
    """``ingestion:`` of conf/base, serial, reading the sample phenopackets."""
    text = (PROJECT_ROOT / "conf" / "base" / "parameters_ingestion.yml").read_text()
    params = yaml.safe_load(text)["ingestion"]
    params["fhir"]["n_workers"] = 1
    params["phenopackets"]["folder"] = str(SAMPLE_PHENOPACKETS)
    return params


@pytest.fixture
def params() -> dict:
    return copy.deepcopy(base_parameters())


@pytest.fixture(scope="session")
def vocab() -> Vocabulary:
    return build_vocabulary(base_parameters())


@pytest.fixture
def lines_of(tmp_path):
    """Write text to a file under tmp_path and read it back through TextLinesDataset."""

    def _read(name: str, text: str | bytes) -> TextLines:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return TextLinesDataset(filepath=str(path)).load()

    return _read
