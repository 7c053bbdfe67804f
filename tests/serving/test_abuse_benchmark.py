"""Fuzzed and oversize requests against a real service: no 5xx, memory reported.

Runs ``scripts/benchmark_abuse.py`` once per kind against the test model (small batches);
the memory bound itself is a figure of the benchmark's report, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import BENTOML_HOME

pytestmark = [pytest.mark.slow, pytest.mark.server]

KINDS = {
    "random_bytes", "deep_nesting", "huge_string", "wrong_types", "bad_batch", "many_terms",
    "oversize_declared", "oversize_streamed", "valid_batch",
}  # fmt: skip


def test_fuzzed_and_oversize_requests_get_4xx_never_5xx(trained_store, tmp_path):
    out = tmp_path / "abuse.json"
    subprocess.run(
        [sys.executable, "scripts/benchmark_abuse.py", "--rounds", "1", "--max-batch", "20",
         "--bentoml-home", str(BENTOML_HOME), "--output", str(out)],
        cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    report = json.loads(out.read_text())
    codes = report["status_codes"]
    assert set(codes) == KINDS
    assert report["server_errors"] == 0, codes
    assert report["dropped_connections"] == 0, codes
    # bodies above the limit are refused before they are parsed, announced or streamed
    assert codes["oversize_declared"] == {"413": 1}
    assert codes["oversize_streamed"] == {"413": 1}
    # what is not JSON, or not a patient, is refused as a client error
    for kind in ("random_bytes", "deep_nesting", "huge_string", "wrong_types"):
        assert all(code.startswith("4") for code in codes[kind]), (kind, codes[kind])
    # a batch of refused patients is answered patient by patient; a valid one predicted
    assert codes["valid_batch"] == {"200": 1}
    memory = report["memory_mb"]
    assert 0 < memory["at_rest"] <= memory["peak"]
