"""``kedro run --params block.key=value`` overrides one key and keeps the rest of the block,
in an environment with its own file for the block (``test``: simulate) and without one
(``test``: monitor; ``local`` for every block)."""

from __future__ import annotations

import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT


def params(env: str, runtime: dict) -> dict:
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=env, runtime_params=runtime) as s:
        return s.load_context().params


@pytest.mark.parametrize("env", ["test", "local"])
def test_one_overridden_key_keeps_the_rest_of_its_block(env):
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_monitor.yml").read_text())
    loaded = params(env, {"monitor": {"window_days": 1}, "simulate": {"seed": 11}})
    assert loaded["monitor"]["window_days"] == 1
    assert loaded["monitor"] == base["monitor"] | {"window_days": 1}
    assert loaded["simulate"]["seed"] == 11
    expected = 600 if env == "test" else 50_000  # the environment's own simulate block
    assert loaded["simulate"]["n_encounters"] == expected
