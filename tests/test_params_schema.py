"""The parameter schemas (``disease_pipeline.params``) and the hook that applies them.

Every environment's parameters validate; a wrong type, an unknown key or a missing key
fails naming its key path; a run with a bad ``--params`` override stops before its first
node with that message.
"""

from __future__ import annotations

import copy
import typing
from typing import Any

import mlflow
import pytest
from kedro.framework.hooks import hook_impl
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from omegaconf import OmegaConf
from pydantic import BaseModel

from disease_pipeline.hooks import ParameterSchemaHook
from disease_pipeline.params import (
    PARAMETER_MODELS,
    ParameterSchemaError,
    parameter_problems,
    validate_parameters,
)
from tests.conftest import PROJECT_ROOT, env_parameters

ENVIRONMENTS = ["local", "test", "spark", "snowflake"]


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict[str, Any]]:
    """Every environment's parameters as Kedro loads them (read once per module)."""
    return {env: env_parameters(env) for env in ENVIRONMENTS}


def problems_after(params: dict[str, Any], path: str, value: Any) -> list[str]:
    """The problems of ``params`` with the dotted ``path`` set to ``value`` (a copy)."""
    changed = copy.deepcopy(params)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return parameter_problems(changed)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_validates(loaded, env):
    assert parameter_problems(loaded[env]) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_parameter_block_has_a_schema(loaded, env):
    assert sorted(set(loaded[env]) - set(PARAMETER_MODELS)) == []


def test_a_wrong_type_names_its_key_path_and_the_expected_type(loaded):
    params = loaded["test"]
    assert problems_after(params, "common_model.xgboost.n_estimators", "abc") == [
        "parameters common_model.xgboost.n_estimators: expected an integer, got 'abc'"
    ]
    assert problems_after(params, "rare_model.validation.enabled", "yes") == [
        "parameters rare_model.validation.enabled: expected a boolean (true or false), got 'yes'"
    ]
    assert problems_after(params, "calibration.methods", ["isotonic", "beta"]) == [
        "parameters calibration.methods[1]: expected one of 'none', 'isotonic', 'platt' or "
        "'temperature', got 'beta'"
    ]


def test_a_number_is_never_read_from_a_string(loaded):
    """Nodes get the dict as loaded: "0.3" would reach them as a string."""
    assert problems_after(loaded["test"], "simulate.rare.share", "0.3") == [
        "parameters simulate.rare.share: expected a number, got '0.3'"
    ]


def test_an_integer_is_a_valid_float(loaded):
    assert problems_after(loaded["test"], "common_model.xgboost.learning_rate", 1) == []


def test_an_unknown_key_is_named_with_the_closest_known_one(loaded):
    changed = copy.deepcopy(loaded["test"])
    changed["common_model"]["xgboost"]["n_estimator"] = 10
    assert parameter_problems(changed) == [
        "parameters common_model.xgboost.n_estimator: unknown key (did you mean 'n_estimators'?)"
    ]


def test_a_missing_key_is_named(loaded):
    changed = copy.deepcopy(loaded["local"])
    del changed["drift"]["psi_bins"]
    assert parameter_problems(changed) == ["parameters drift.psi_bins: missing key"]


def test_ranges_of_counts_and_shares(loaded):
    params = loaded["local"]
    assert problems_after(params, "rare_model.validation.workers", 0) == [
        "parameters rare_model.validation.workers: expected a value ≥ 1, got 0"
    ]
    assert problems_after(params, "simulate.errors.rate", 1.5) == [
        "parameters simulate.errors.rate: expected a value ≤ 1.0, got 1.5"
    ]


def test_every_failure_is_reported_at_once(loaded):
    changed = copy.deepcopy(loaded["test"])
    changed["monitor"]["window_days"] = "week"
    changed["screen"]["alerts"]["rules"]["severity"]["enabled"] = 1
    with pytest.raises(ParameterSchemaError) as caught:
        validate_parameters(changed)
    assert caught.value.problems == [
        "parameters monitor.window_days: expected a number, got 'week'",
        "parameters screen.alerts.rules.severity.enabled: expected a boolean (true or false), "
        "got 1",
    ]
    assert "invalid parameters (2 problems" in str(caught.value)


def test_optional_blocks_and_runtime_only_keys(loaded):
    """``screen_engine.spark`` exists only in the spark environment; a block without a
    schema (a runtime-only key read by the catalog) is left alone; a missing block is
    not an error."""
    assert "spark" not in loaded["local"]["screen_engine"]
    assert "spark" in loaded["spark"]["screen_engine"]
    assert parameter_problems({"screen_webhook_url": "https://pager.example.org/hook"}) == []
    assert parameter_problems({"drift": loaded["local"]["drift"]}) == []


def test_an_optional_key_may_be_left_out_but_not_set_to_null(loaded):
    """A gate criterion's ``bound`` is optional (the gate's default applies); XGBoost's
    own knobs may be added to a block and are checked like the others."""
    params = loaded["test"]
    assert "bound" not in params["evaluation"]["gate"]["criteria"]["latency"]
    assert problems_after(params, "evaluation.gate.criteria.latency.bound", None) == [
        "parameters evaluation.gate.criteria.latency.bound: expected one of 'value' or "
        "'interval', got None"
    ]
    assert problems_after(params, "common_model.xgboost.gamma", 1.0) == []
    assert problems_after(params, "evaluation.cv.xgboost.random_state", 1) == [
        "parameters evaluation.cv.xgboost.random_state: unknown key"
    ]


def test_defaults_live_in_the_yaml_only():
    """A field is required, or an optional key whose absence the nodes handle (None)."""
    seen: set[type[BaseModel]] = set()
    defaults = []
    for model in PARAMETER_MODELS.values():
        for owner, name, field in _fields(model, seen):
            if not field.is_required() and field.default is not None:
                defaults.append(f"{owner.__name__}.{name}")
    assert defaults == []


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]):
    """Every field of ``model`` and of the schema models below it (records aside)."""
    if model in seen or not model.__module__.startswith("disease_pipeline.params"):
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        yield model, name, field
        for inner in _models_in(field.annotation):
            yield from _fields(inner, seen)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


class _FakeContext:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params


def test_the_hook_lets_valid_parameters_through(loaded):
    hook = ParameterSchemaHook()
    hook.after_context_created(_FakeContext(loaded["local"]))
    hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)


class _NoNodeMayRun:
    """Fails any node before it runs (if the schema hook let the run through)."""

    def __init__(self) -> None:
        self.nodes: list[str] = []

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self.nodes.append(node.name)
        raise RuntimeError(f"node {node.name} ran")


def test_a_run_with_a_bad_override_fails_before_any_node():
    """``kedro run --params common_model.xgboost.n_estimators=abc``: the override, parsed
    as Kedro's CLI parses it, reaches the hook through the session's runtime params."""
    runtime = OmegaConf.to_container(
        OmegaConf.from_dotlist(["common_model.xgboost.n_estimators=abc", "drift.psi_bins=10"])
    )
    bootstrap_project(PROJECT_ROOT)
    spy = _NoNodeMayRun()
    with KedroSession.create(project_path=PROJECT_ROOT, env="test", runtime_params=runtime) as s:
        s._hook_manager.register(spy)  # the session's own hook manager
        try:
            with pytest.raises(ParameterSchemaError) as caught:
                s.run(pipeline_names=["drift"])
        finally:
            s._hook_manager.unregister(spy)
    assert caught.value.problems == [
        "parameters common_model.xgboost.n_estimators: expected an integer, got 'abc'"
    ]
    assert spy.nodes == []
    assert mlflow.active_run() is None  # refused before kedro-mlflow started a run
