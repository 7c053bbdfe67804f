"""Validation of a run's parameters against the schemas, with errors a person can act on.

Every failure names its key path and what was expected, e.g.
``parameters common_model.xgboost.n_estimators: expected an integer, got 'abc'``, and
all failures of a run are reported together.
"""

from __future__ import annotations

import difflib
import logging
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from disease_pipeline.params.registry import PARAMETER_MODELS

logger = logging.getLogger(__name__)

#: what a value of each pydantic error type should have been
_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected a boolean (true or false)",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "none_required": "expected null",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "bool_parsing": "expected a boolean (true or false)",
}
#: pydantic's constraint errors: (symbol, key of the error's context)
_BOUNDS = {
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}
_MAX_INPUT = 80


class ParameterSchemaError(ValueError):
    """The run's parameters do not match the schemas; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"invalid parameters ({count}; schemas: disease_pipeline.params):\n{lines}"
        )


def validate_parameters(params: Mapping[str, Any]) -> None:
    """Check every parameter block of ``params`` that has a schema.

    Blocks without a schema are left alone (runtime-only keys such as
    ``screen_webhook_url``); one that looks like a misspelt block name is logged.

    Raises:
        ParameterSchemaError: naming every failing key path and the expected type.
    """
    problems = parameter_problems(params)
    if problems:
        raise ParameterSchemaError(problems)


def parameter_problems(params: Mapping[str, Any]) -> list[str]:
    """One line per failure of the blocks of ``params`` that have a schema."""
    problems: list[str] = []
    for block, value in sorted(params.items()):
        model = PARAMETER_MODELS.get(block)
        if model is None:
            _warn_if_misspelt(block)
            continue
        try:
            model.model_validate(value)
        except ValidationError as error:
            problems += [describe(block, model, detail) for detail in error.errors()]
    return problems


def describe(block: str, model: type[BaseModel], error: ErrorDetails) -> str:
    """``parameters <key path>: <what was expected>, got <value>`` for one pydantic error."""
    loc = tuple(error["loc"])
    path = key_path((block, *loc))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"parameters {path}: unknown key{_suggestion(model, loc)}"
    if kind == "missing":
        return f"parameters {path}: missing key"
    return f"parameters {path}: {expectation(error)}, got {_short_repr(error['input'])}"


def expectation(error: ErrorDetails) -> str:
    """What the value should have been, in words."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return f"expected one of {context['expected']}"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"expected a value {symbol} {context[key]}"
    if kind == "too_short":
        return f"expected at least {context['min_length']} items"
    if kind == "too_long":
        return f"expected at most {context['max_length']} items"
    if error["msg"].startswith("expected"):  # the schemas' own errors (base.py)
        return error["msg"]
    return f"invalid value ({error['msg']})"


def key_path(loc: tuple[Any, ...]) -> str:
    """``a.b[0].c`` for a pydantic location; keys with dots or commas are quoted."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker of a dict key that failed validation
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        elif "." in str(part) or "," in str(part) or " " in str(part):
            text += f"[{str(part)!r}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_INPUT else text[: _MAX_INPUT - 3] + "..."


def _suggestion(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """`` (did you mean 'x'?)`` when the parent of ``loc`` is a model with a close field."""
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class validating the mapping at ``loc`` below ``model``, if any."""
    current: Any = model
    for part in loc:
        if _is_model(current) and isinstance(part, str) and part in current.model_fields:
            current = _unwrap(current.model_fields[part].annotation)
        elif typing.get_origin(current) in (dict, list):
            current = _unwrap(typing.get_args(current)[-1])
        else:
            return None
    return current if _is_model(current) else None


def _unwrap(annotation: Any) -> Any:
    """The annotation without ``Annotated`` and without ``| None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _warn_if_misspelt(block: str) -> None:
    """Log a block without a schema whose name is close to one that has a schema."""
    close = difflib.get_close_matches(block, list(PARAMETER_MODELS), n=1, cutoff=0.85)
    if close:
        logger.warning("parameters %s: no schema (did you mean %r?)", block, close[0])
