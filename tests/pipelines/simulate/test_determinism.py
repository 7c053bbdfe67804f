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


def test_a_later_period_keeps_the_world_with_world_seed(test_params):
    """Another ``seed`` with ``world_seed`` at the first one's: other visits, but the same
    rare diseases and population symptom frequencies (the same hospital, later)."""
    from disease_pipeline.pipelines.simulate.symptoms import true_frequencies

    cfg = nodes.validate_parameters(test_params)
    later = nodes.validate_parameters(copy.deepcopy(test_params) | {"seed": cfg["seed"] + 1})
    kept = nodes.validate_parameters(later | {"world_seed": cfg["seed"]})
    common = nodes._catalogue(cfg)
    rare_first = nodes.select_rare_diseases(cfg)[0]["disease_id"].tolist()
    assert nodes.select_rare_diseases(kept)[0]["disease_id"].tolist() == rare_first
    assert nodes.select_rare_diseases(later)[0]["disease_id"].tolist() != rare_first
    for a, b in zip(true_frequencies(cfg, common), true_frequencies(kept, common), strict=True):
        assert (a == b).all()
    assert not nodes.simulate_population(kept)[1]["start_s"].equals(
        nodes.simulate_population(cfg)[1]["start_s"]
    )
    with pytest.raises(ValueError, match="simulate.world_seed"):
        nodes.validate_parameters(copy.deepcopy(test_params) | {"world_seed": -1})
