"""Typed parameters: one pydantic model per top-level block of ``conf/*/parameters_*.yml``.

The models give each key its type (and, where obvious, its range) and forbid unknown
keys; the values themselves — defaults included — live in the YAML only.
``disease_pipeline.hooks.ParameterSchemaHook`` validates a run's parameters (YAML and
``kedro run --params`` overrides) before its first node runs; nodes keep taking dicts.
This package imports neither Kedro nor the pipelines (an import-linter contract).
"""

from disease_pipeline.params.registry import PARAMETER_MODELS
from disease_pipeline.params.validation import (
    ParameterSchemaError,
    parameter_problems,
    validate_parameters,
)

__all__ = [
    "PARAMETER_MODELS",
    "ParameterSchemaError",
    "parameter_problems",
    "validate_parameters",
]
