"""The FHIR vocabulary, built once from the knowledge base and conf/base's ingestion
parameters (the file the service reads)."""

from __future__ import annotations

import pytest

from disease_pipeline.fhir.vocabulary import Vocabulary, read_parameters
from tests.conftest import PROJECT_ROOT

PARAMETERS = PROJECT_ROOT / "conf" / "base" / "parameters_ingestion.yml"


@pytest.fixture(scope="session")
def fhir_vocab() -> Vocabulary:
    return Vocabulary.from_knowledge(read_parameters(PARAMETERS))
