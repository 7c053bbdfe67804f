"""Same seed → byte-identical files; another seed → different data."""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys

import pandas as pd
import pytest

from disease_pipeline.pipelines.simulate import nodes
from tests.conftest import PROJECT_ROOT
from tests.pipelines.simulate.conftest import OUTPUT_FILES


def _digests() -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in OUTPUT_FILES}


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files(simulated):
    """A second run, in another process with another string-hash seed, rewrites the same bytes."""
    first = _digests()
    env = dict(os.environ, PYTHONHASHSEED="12345", KEDRO_DISABLE_TELEMETRY="true")
    command = [sys.executable, "-m", "kedro", "run", "--pipeline=simulate", "--env=test"]
    done = subprocess.run(
        command, check=False, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _digests() == first


def test_another_seed_gives_other_patients_and_encounters(test_params):
    cfg = nodes.validate_parameters(test_params)
    other = copy.deepcopy(cfg)
    other["seed"] = cfg["seed"] + 1
    patients_a, visits_a = nodes.simulate_population(cfg)
    patients_b, visits_b = nodes.simulate_population(other)
    assert not patients_a["mrn"].equals(patients_b["mrn"])
    assert not visits_a["start_s"].equals(visits_b["start_s"])
    again, _ = nodes.simulate_population(copy.deepcopy(cfg))
    pd.testing.assert_frame_equal(patients_a, again)
