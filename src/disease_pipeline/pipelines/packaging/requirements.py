"""The registered model's pip requirements, generated from ``pyproject.toml``.

One dependency list for serving: the ``model`` extra names what the pickled predictor
and the MLflow pyfunc import, the ``serving`` extra adds the service's packages (the
bentofile lists them). The registered model's ``requirements.txt`` is the ``model``
extra pinned at the installed versions (which ``make install`` takes from
constraints.txt); ``tests/test_requirements.py`` checks that the extras, the bentofile
and constraints.txt agree and that the runtime layers import nothing else.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

DISTRIBUTION = "disease_pipeline"
#: where the CPU builds of PyTorch (versions ``…+cpu``, as constraints.txt pins) come from;
#: bentofile.yaml's ``extra_index_url`` is the same
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares it (``PyYAML`` → ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_requirements(extra: str, requires: list[str] | None = None) -> list[Requirement]:
    """The requirements of ``extra`` of the installed project, in declaration order,
    with an extra that names the project itself (``disease_pipeline[model]``) expanded.

    ``requires`` defaults to the installed metadata (``importlib.metadata.requires``).

    Raises:
        ValueError: the project declares no such extra (reinstall: ``make install``).
    """
    lines = metadata.requires(DISTRIBUTION) if requires is None else requires
    found, out = False, []
    for line in lines or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or not marker.evaluate({"extra": extra}):
            continue
        found = True
        requirement.marker = None
        if canonical_name(requirement.name) == canonical_name(DISTRIBUTION):
            for inner in sorted(requirement.extras):
                out += extra_requirements(inner, lines)
        else:
            out.append(requirement)
    if not found:
        raise ValueError(
            f"{DISTRIBUTION} declares no extra {extra!r} in its installed metadata: "
            "add it to pyproject.toml and reinstall (make install)"
        )
    return out


def pinned_requirements(packages: list[str]) -> list[str]:
    """``name==version`` for each installed package (a clear error for a missing one)."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError as error:
            raise ValueError(f"pip requirement '{name}' is not installed") from error
    return pins


def model_requirements(extra: str = "model") -> list[str]:
    """The registered model's pip requirements: ``extra`` pinned at installed versions,
    preceded by the PyTorch CPU index when a pin is a CPU build (``torch==…+cpu``)."""
    pins = pinned_requirements([r.name for r in extra_requirements(extra)])
    if any(pin.endswith("+cpu") for pin in pins):
        pins.insert(0, f"--extra-index-url {TORCH_CPU_INDEX}")
    return pins
