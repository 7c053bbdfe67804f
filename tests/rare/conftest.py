"""Fixtures of the rare-model library tests: knowledge, the 60 bundled registry cases
(through the ingestion parser) and one small fitted model (conf/test sizes)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import pytest
import yaml

from disease_pipeline.pipelines.rare_model.registry import ingest_phenopackets
from disease_pipeline.rare.cases import Case, cases_from_frame
from disease_pipeline.rare.fit import Knowledge, RareModelParams, fit_rare_model, load_knowledge
from tests.conftest import env_parameters

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PHENOPACKETS = PROJECT_ROOT / "tests" / "data" / "phenopackets"


def conf(env: str, name: str) -> dict:
    """The blocks of one parameters file of conf/base as ``env`` loads them (conf/base
    merged with the environment's files)."""
    blocks = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / name).read_text(encoding="utf-8"))
    loaded = env_parameters(env)
    return {block: loaded[block] for block in blocks}


@pytest.fixture(scope="session")
def base() -> Knowledge:
    return load_knowledge()


@cache
def sample_registry_frame() -> pd.DataFrame:
    """The 60 bundled phenopackets in the ``feat_registry_cases`` shape (+ disease_name)."""
    frame, counts = ingest_phenopackets(
        SAMPLE_PHENOPACKETS,
        conf("base", "parameters_ingestion.yml")["ingestion"],
        conf("base", "parameters_anonymization.yml")["anonymization"],
    )
    assert counts["files"] == 60
    return frame


@pytest.fixture(scope="session")
def registry_frame() -> pd.DataFrame:
    return sample_registry_frame().copy()


@pytest.fixture(scope="session")
def cases(base, registry_frame) -> list[Case]:
    parsed, _ = cases_from_frame(
        registry_frame, base.ontology, base.space, "registry",
        id_column="encounter_id", disease_column="label_disease",
    )  # fmt: skip
    return parsed


@pytest.fixture(scope="session")
def test_params() -> RareModelParams:
    return RareModelParams.from_dict(conf("test", "parameters_rare_model.yml")["rare_model"])


@pytest.fixture(scope="session")
def fitted(base, cases, test_params):
    """(model, report) fitted on the 60 bundled cases with the test sizes."""
    return fit_rare_model(base, cases, [], test_params)
