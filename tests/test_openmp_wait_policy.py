"""OpenMP threads wait passively unless the environment says otherwise.

``disease_pipeline/__init__.py`` sets ``OMP_WAIT_POLICY=PASSIVE`` before any OpenMP
runtime loads: on a busy 2-core machine spinning XGBoost threads made a fit 10-18x slower
(scripts/benchmark_train.py). Each case runs in a fresh interpreter, because the runtime
reads the variable once, when it loads.
"""

from __future__ import annotations

import os

from tests.conftest import run_python

SCRIPT = (
    "import os, sys; import disease_pipeline; import xgboost; "
    "print(os.environ.get('OMP_WAIT_POLICY')); "
    "print(any('libgomp' in line for line in open('/proc/self/maps')))"
)


def _run(env: dict[str, str]) -> list[str]:
    done = run_python(SCRIPT, env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_the_package_sets_a_passive_wait_policy_before_openmp_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policy, gomp_loaded = _run(env)
    assert policy == "PASSIVE"
    assert gomp_loaded == "True"  # xgboost's OpenMP runtime loaded after the package


def test_an_explicit_wait_policy_is_kept():
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    assert _run(env)[0] == "ACTIVE"
