"""Fixtures of the rare_model pipeline test (shared with tests/rare)."""

from __future__ import annotations

import pandas as pd
import pytest

from disease_pipeline.rare.fit import Knowledge, load_knowledge
from tests.rare.conftest import sample_registry_frame


@pytest.fixture(scope="session")
def base() -> Knowledge:
    return load_knowledge()


@pytest.fixture(scope="session")
def registry_frame() -> pd.DataFrame:
    return sample_registry_frame().copy()
