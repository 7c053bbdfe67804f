"""Published cases sent to a real service as a clinician would: nothing well-formed refused.

Runs ``scripts/benchmark_registry_service.py`` on the sample phenopackets against the
test model: every case goes to ``/predict_batch`` with its HPO ids as published, its age
when known (``null`` otherwise) and its sex.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import BENTOML_HOME, PHENOPACKETS

pytestmark = [pytest.mark.slow, pytest.mark.server]


def test_published_cases_are_answered_through_predict_batch(trained_store, tmp_path):
    out = tmp_path / "registry_service.json"
    subprocess.run(
        [
            sys.executable,
            "scripts/benchmark_registry_service.py",
            "--folder",
            str(PHENOPACKETS),
            "--bentoml-home",
            str(BENTOML_HOME),
            "--batch",
            "25",
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    report = json.loads(out.read_text())
    counts = report["counts"]
    cases = len(list(PHENOPACKETS.rglob("*.json")))
    assert counts["patients"] == cases
    assert report["batches_refused_whole"] == 0
    assert counts.get("refused", 0) == 0, report["refusal_reasons"]
    assert counts["answered"] == cases
    # a case without a known age is answered, with a note saying so
    assert counts.get("answers_noting_unknown_age", 0) == counts.get("age_unknown_sent", 0)
    assert 0.0 <= report["served_top10"] <= 1.0
