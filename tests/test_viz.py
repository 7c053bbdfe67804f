"""``kedro viz build`` works offline and shows every registered pipeline with its layers,
each pipeline folder as one collapsible modular pipeline (the registry's namespaces).

kedro-viz 12.5 builds a modular pipeline from the nodes' namespace: the box's children are
its nodes and the datasets made and used only inside it; its inputs and outputs (also the
reports nobody reads) are drawn outside, linked to the box."""

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

from disease_pipeline.pipeline_registry import TRAIN_STAGES
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


#: pages kedro-viz draws without layer bands once the pipelines are boxes: it computes the
#: layer order on the graph WITH the boxes, every input of a box before every output, and
#: these hold a box whose inputs and outputs span two layers both ways (retrain_check:
#: reporting_monitoring_summary (reporting) in, prm_feedback_encounters (primary) out, and
#: primary in, reporting out; screen: the previous screenings and alerts; retrain: the
#: evaluation box, whose prm_evaluation_tables the comparison reads). Their datasets keep
#: their layers.
LAYERS_OFF_BY_BOXES = {"retrain", "retrain_check", "screen"}


def registered() -> list[str]:
    bootstrap_project(PROJECT_ROOT)
    return sorted(pipelines)


def expected_boxes(name: str) -> set[str]:
    """The pipeline folders (namespaces) of a registered pipeline: a folder is one box,
    ``train`` its stages, ``retrain`` the stages up to drift and ``retrain``."""
    if name in ("train", "__default__"):
        return set(TRAIN_STAGES)
    if name == "retrain":
        return {*TRAIN_STAGES[: TRAIN_STAGES.index("packaging")], "retrain"}
    return {name}


def test_every_registered_pipeline_is_in_the_build(viz_api):
    main = json.loads((viz_api / "main").read_text())
    shown = {p["id"] for p in main["pipelines"]}
    assert set(registered()) <= shown
    assert {"train", "evaluation", "drift", "packaging"} <= shown


@pytest.mark.parametrize("name", registered())
def test_pipeline_is_drawn_with_layers(viz_api, catalog_layers, name):
    page = json.loads((viz_api / "pipelines" / name).read_text())
    assert page["layers"] or name in LAYERS_OFF_BY_BOXES, (
        f"kedro-viz draws no layers for '{name}' (a dataset layer order that loops back, "
        "e.g. feature -> model_input -> feature, disables them; so does a modular pipeline "
        "with an input of a later layer than one of its outputs)"
    )
    unlayered = sorted(
        node["name"]
        for node in page["nodes"]
        if node["type"] == "data" and node["name"] in catalog_layers and not node.get("layer")
    )
    assert not unlayered, f"catalog datasets of '{name}' without a kedro-viz layer: {unlayered}"


def boxes(page: dict) -> set[str]:
    """The modular pipelines of a page (kedro-viz's artificial root left out)."""
    return set(page["modular_pipelines"]) - {"__root__"}


@pytest.mark.parametrize("name", registered())
def test_pipeline_opens_on_one_box_per_pipeline_folder(viz_api, name):
    page = json.loads((viz_api / "pipelines" / name).read_text())
    expected = expected_boxes(name)
    assert boxes(page) == expected
    root = page["modular_pipelines"]["__root__"]["children"]
    assert {c["id"] for c in root if c["type"] == "modularPipeline"} == expected
    assert not [c["id"] for c in root if c["type"] == "task"], "a node outside every box"
    for node in page["nodes"]:
        if node["type"] == "task":
            assert len(node["modular_pipelines"]) == 1, node["name"]
            assert node["modular_pipelines"][0] in expected, node["name"]


def test_the_default_page_is_the_training_stages_as_boxes(viz_api):
    main = json.loads((viz_api / "main").read_text())
    assert main["selected_pipeline"] == "__default__"
    assert boxes(main) == set(TRAIN_STAGES)
    assert main["layers"]
    inside = {c["id"] for c in main["modular_pipelines"]["features"]["children"]}
    data = {n["name"]: n["id"] for n in main["nodes"] if n["type"] == "data"}
    # made and used only inside features: in its box; read by the models: outside
    assert data["feat_labels"] in inside
    assert data["model_input_train"] not in inside
