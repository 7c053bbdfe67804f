"""Fixtures of the features tests: synthetic warehouse tables and a fitted FeatureBuilder."""

from __future__ import annotations

import pytest

from disease_pipeline.pipelines.features.nodes import assemble_feature_tables
from disease_pipeline.predictor.features import FeatureBuilder
from tests.conftest import env_parameters
from tests.pipelines.features.synthetic import warehouse_tables

PRM = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


@pytest.fixture(scope="session")
def feature_params() -> dict:
    """``features`` parameters of the test environment."""
    return env_parameters("test")["features"]


@pytest.fixture(scope="session")
def warehouse() -> dict:
    """Synthetic ``prm_*`` tables."""
    return warehouse_tables(n_patients=80, seed=3)


@pytest.fixture(scope="session")
def tables(warehouse) -> dict:
    """The warehouse as FeatureBuilder tables (sex joined onto encounters)."""
    return assemble_feature_tables(**{name: warehouse[name] for name in PRM})


@pytest.fixture(scope="session")
def builder(tables, feature_params) -> FeatureBuilder:
    """A FeatureBuilder fitted on every non-registry encounter of the synthetic warehouse."""
    enc = tables["encounters"]
    ids = enc.loc[enc["source"] != "phenopacket", "encounter_id"]
    fit_tables = {k: v[v["encounter_id"].isin(ids)] for k, v in tables.items()}
    return FeatureBuilder(**feature_params["builder"]).fit(fit_tables)
