"""``kedro viz build`` works offline and shows every registered pipeline with its layers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

KEDRO = Path(sys.executable).with_name("kedro")


@pytest.fixture(scope="module")
def viz_api(tmp_path_factory) -> Path:
    """The ``api`` folder of a fresh ``kedro viz build`` (moved out of the project)."""
    build = PROJECT_ROOT / "build"
    shutil.rmtree(build, ignore_errors=True)
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [str(KEDRO), "viz", "build"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    target = tmp_path_factory.mktemp("viz") / "build"
    shutil.move(build, target)
    return target / "api"


@pytest.fixture(scope="module")
def catalog_layers() -> dict[str, str | None]:
    """Layer of every dataset declared in the catalog (default environment)."""
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        config = session.load_context().config_loader["catalog"]
    return {
        name: ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
        for name, entry in config.items()
        if isinstance(entry, dict) and not name.startswith("_")
    }


def registered() -> list[str]:
    bootstrap_project(PROJECT_ROOT)
    return sorted(pipelines)


def test_every_registered_pipeline_is_in_the_build(viz_api):
    main = json.loads((viz_api / "main").read_text())
    shown = {p["id"] for p in main["pipelines"]}
    assert set(registered()) <= shown
    assert {"train", "evaluation", "drift", "packaging"} <= shown


@pytest.mark.parametrize("name", registered())
def test_pipeline_is_drawn_with_layers(viz_api, catalog_layers, name):
    page = json.loads((viz_api / "pipelines" / name).read_text())
    assert page["layers"], (
        f"kedro-viz draws no layers for '{name}' (a dataset layer order that loops back, "
        "e.g. feature -> model_input -> feature, disables them)"
    )
    unlayered = sorted(
        node["name"]
        for node in page["nodes"]
        if node["type"] == "data" and node["name"] in catalog_layers and not node.get("layer")
    )
    assert not unlayered, f"catalog datasets of '{name}' without a kedro-viz layer: {unlayered}"
