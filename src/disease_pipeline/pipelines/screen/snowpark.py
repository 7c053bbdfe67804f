"""Deploying the screen's Snowpark UDF (:mod:`disease_pipeline.predictor.snowpark_udf`):
the packages it asks Snowflake for, the warehouse columns it decodes, the staging of
its imports and the registration (Snowpark, the ``snowpark`` extra, imported only
there). Used by ``scripts/register_snowpark_udf.py`` (docs/scale.md)."""

from __future__ import annotations

import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from disease_pipeline.predictor.screening import DETAIL_TABLES
from disease_pipeline.predictor.snowpark_udf import UdfRegistration


def model_packages(pyproject: str, constraints: str) -> list[str]:
    """The ``model`` extra of ``pyproject`` (TOML text) pinned at ``constraints``'
    versions (a package constraints.txt leaves out, e.g. setuptools: the installed one),
    without a local version tag: Snowflake's packages have none (its torch is CPU)."""
    pins = {}
    for line in constraints.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.split("[")[0].strip().lower().replace("_", "-")] = version.strip()
    extra = tomllib.loads(pyproject)["project"]["optional-dependencies"]["model"]
    out = []
    for line in extra:
        name = Requirement(line).name.lower().replace("_", "-")
        version = pins.get(name) or metadata.version(name)
        out.append(f"{name}=={version.split('+', 1)[0]}")  # torch 2.13.0+cpu: 2.13.0
    return out


def warehouse_columns(columns: dict[str, list[str]]) -> dict[str, list[str]]:
    """The UDF's table columns from the warehouse tables' (``encounters`` gains
    ``sex``, the patient's, as in the screen's window tables)."""
    encounters = [c for c in columns["encounters"] if c != "sex"] + ["sex"]
    return {"encounters": encounters, **{name: list(columns[name]) for name in DETAIL_TABLES}}


def package_archive(source: Path, target: Path) -> Path:
    """A zip of the ``disease_pipeline`` package folder ``source`` (Python files and
    the knowledge data files, no caches), for the UDF's imports."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, Path(source.name) / path.relative_to(source))
    return target


def stage_files(session: Any, stage: str, files: list[Path]) -> None:
    """Uploads ``files`` to ``stage`` (created when missing), uncompressed, replacing."""
    session.sql(f"CREATE STAGE IF NOT EXISTS {stage.lstrip('@')}").collect()
    for path in files:
        session.file.put(str(path), stage, auto_compress=False, overwrite=True)


def snowpark_arguments(registration: UdfRegistration) -> dict[str, Any]:
    """Keyword arguments of ``session.udf.register``: a vectorised UDF (pandas Series
    in and out), permanent on the stage (imports Snowpark)."""
    from snowflake.snowpark.types import PandasSeriesType, StringType

    kinds = {"STRING": StringType}
    return {
        "func": registration.handler,
        "name": registration.name,
        "input_types": [PandasSeriesType(kinds[t]()) for t in registration.input_types],
        "return_type": PandasSeriesType(kinds[registration.return_type]()),
        "packages": list(registration.packages),
        "imports": list(registration.imports),
        "stage_location": registration.stage_location,
        "is_permanent": True,
        "replace": True,
        "max_batch_size": registration.max_batch_size,
    }


def register(session: Any, registration: UdfRegistration) -> Any:
    """Registers the UDF in the session's database and schema."""
    return session.udf.register(**snowpark_arguments(registration))
