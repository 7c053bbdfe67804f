"""The base model and the constrained types the parameter schemas share.

Every schema model forbids unknown keys (a misspelt key fails by name) and validates
strictly: a string is never turned into a number, since the nodes receive the dict
as loaded, not the validated model. A ``float`` field accepts an integer (YAML's
``500`` for ``500.0``). Fields have no defaults: the defaults live in
``conf/base/parameters_*.yml``. A field declared with :func:`optional_key` is a key the
YAML leaves out of some entries, or a library's knob left at the library's default
(each one says which); when present it is checked like the others.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError


class ParamsModel(BaseModel):
    """A block of parameters: unknown keys and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def optional_key() -> Any:
    """A key that may be left out (the reader's own default applies: ``.get(key, …)``,
    or a library's default); when present, its value must have the field's type."""
    return Field(default=None)


#: a probability or a share of something, in [0, 1]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
#: a count, a size or a number of threads that must be at least 1
PositiveInt = Annotated[int, Field(ge=1)]
#: a count or a cap where 0 means none (or no cap)
NonNegativeInt = Annotated[int, Field(ge=0)]
#: a seed of a random generator
Seed = Annotated[int, Field(ge=0)]
#: a number that must be positive
PositiveFloat = Annotated[float, Field(gt=0.0)]
#: a weight or a penalty where 0 means none
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
#: a [low, high] pair
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]


def _str_or_str_list(value: Any) -> str | list[str]:
    """``value`` when it is a string or a list of strings, else a ``str_or_list`` error."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise PydanticCustomError("str_or_list", "expected a string or a list of strings")


#: one code or several (``spo2: ["59408-5", "2708-6"]``); one error, not one per union member
StrOrStrList = Annotated[str | list[str], PlainValidator(_str_or_str_list)]


def _scalar(value: Any) -> str | int | float | bool:
    """``value`` when it is a string, a number or a boolean, else a ``scalar`` error."""
    if isinstance(value, str | int | float | bool):
        return value
    raise PydanticCustomError("scalar", "expected a string, a number or a boolean")


#: a configuration value handed on as it is (e.g. a Spark setting)
Scalar = Annotated[str | int | float | bool, PlainValidator(_scalar)]
