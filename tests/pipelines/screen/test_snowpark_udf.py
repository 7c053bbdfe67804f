"""The screen's Snowpark vectorised UDF (predictor/snowpark_udf.py), without Snowflake:
fakesnow runs no Python UDF, so the UDF body is called here on pandas batches encoded
as the deployment's SQL encodes them, and must give the single-process screen's rows;
the registration is checked for its types, packages and staged imports."""

from __future__ import annotations

import inspect
import json
import pickle
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import yaml

from disease_pipeline.pipelines.screen.nodes import window_tables
from disease_pipeline.pipelines.screen.snowpark import (
    model_packages,
    package_archive,
    snowpark_arguments,
    warehouse_columns,
)
from disease_pipeline.predictor import snowpark_udf
from disease_pipeline.predictor.screening import DETAIL_TABLES, score_tables
from disease_pipeline.predictor.snowpark_udf import build_registration, make_handler
from tests.conftest import PROJECT_ROOT

from .conftest import screen_params

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_screen.yml").read_text())


def sql_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """What the deployment's SQL hands the UDF, one row per encounter: the encounter
    as ``TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(*))`` and each detail table's rows as
    ``TO_JSON(ARRAY_AGG(OBJECT_CONSTRUCT_KEEP_NULL(*)))`` (NULL without rows), keys in
    Snowflake's upper case."""

    def objects(frame: pd.DataFrame) -> list[dict]:
        rows = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))
        return [{key.upper(): value for key, value in row.items()} for row in rows]

    encounters = tables["encounters"]
    out = pd.DataFrame({"ENCOUNTER": [json.dumps(o) for o in objects(encounters)]})
    ids = encounters["encounter_id"].astype(str)
    for name in DETAIL_TABLES:
        frame = tables[name]
        grouped = {}
        for key, row in zip(frame["encounter_id"].astype(str), objects(frame), strict=True):
            grouped.setdefault(key, []).append(row)
        out[name.upper()] = [json.dumps(grouped[i]) if i in grouped else None for i in ids]
    return out


@pytest.fixture(scope="module")
def window(screen_prm):
    tables, _ = window_tables(**screen_prm, params=screen_params())
    return tables


@pytest.fixture(scope="module")
def columns(screen_prm):
    warehouse = {name: list(screen_prm[name].columns) for name in ("encounters", *DETAIL_TABLES)}
    return warehouse_columns(warehouse)


def test_the_udf_body_gives_the_single_process_screen_rows(
    window, columns, screen_predictor, predictor_file
):
    params = screen_params()
    options = {"top_k": params["top_k"], "top_n": params["top_n"], "batch_size": 16}
    expected = score_tables(screen_predictor, window, progress=False, **options)
    handler = make_handler(predictor_file.name, columns, options, str(predictor_file.parent))
    batch = sql_rows(window)
    # Snowflake's batches: uneven, the index of each its own (as Snowflake hands them)
    parts = [batch.iloc[:37], batch.iloc[37:40], batch.iloc[40:]]
    texts = pd.concat([handler(*(p[c.upper()] for c in snowpark_udf.ARGUMENTS)) for p in parts])
    got = pd.DataFrame([json.loads(t) for t in texts])
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) == len(window["encounters"]) > 100
    assert (got["encounter_id"] == expected["encounter_id"]).all()
    numeric = [c for c in expected.columns if expected[c].dtype.kind == "f"]
    text = [c for c in expected.columns if c not in numeric and c != "encounter_start"]
    assert np.allclose(got[numeric].astype(float), expected[numeric], atol=1e-9, equal_nan=True)
    for column in text:
        left, right = got[column].astype(object), expected[column].astype(object)
        same = (left == right) | (left.isna() & right.isna())
        assert same.all(), column
    assert (pd.to_datetime(got["encounter_start"]) == expected["encounter_start"]).all()
    assert expected["error"].isna().all() and expected["top1_code"].notna().all()


def test_an_encounter_without_detail_rows_is_scored(window, columns, predictor_file):
    """A batch where no encounter has labs (an ARRAY_AGG of no rows is NULL)."""
    options = {"top_k": 5, "top_n": 3, "batch_size": 8}
    handler = make_handler(predictor_file.name, columns, options, str(predictor_file.parent))
    batch = sql_rows(window).iloc[:5].assign(LABS=None)
    rows = [json.loads(t) for t in handler(*(batch[c.upper()] for c in snowpark_udf.ARGUMENTS))]
    assert len(rows) == 5 and all(r["error"] is None and r["top1_code"] for r in rows)


def test_the_registration_has_the_types_packages_and_imports(columns, predictor_file):
    packages = model_packages(
        (PROJECT_ROOT / "pyproject.toml").read_text(),
        (PROJECT_ROOT / "constraints.txt").read_text(),
    )
    registration = build_registration(
        params=PARAMS["screen_snowpark"],
        screen=PARAMS["screen"],
        columns=columns,
        packages=packages,
    )
    assert registration.name == "DISEASE_PIPELINE_SCREEN"
    assert registration.input_types == ("STRING",) * 5 and registration.return_type == "STRING"
    assert snowpark_udf.ARGUMENTS == ("encounter", "symptoms", "vitals", "labs", "diagnoses")
    assert registration.imports == (
        "@DISEASE_PIPELINE_MODELS/predictor.pkl",
        "@DISEASE_PIPELINE_MODELS/disease_pipeline.zip",
    )
    assert registration.stage_location == "@DISEASE_PIPELINE_MODELS"
    assert registration.max_batch_size == 1000
    pins = dict(p.split("==") for p in registration.packages)
    assert {"pandas", "numpy", "scikit-learn", "xgboost", "torch", "pyhpo"} <= set(pins)
    constraints = (PROJECT_ROOT / "constraints.txt").read_text()
    assert (
        f"pandas=={pins['pandas']}\n" in constraints and f"torch=={pins['torch']}+" in constraints
    )
    assert not any("+cpu" in v for v in pins.values())  # Snowflake's channel has no local tag
    assert len(inspect.signature(registration.handler).parameters) == 2  # encounter, *details
    # Snowpark ships the handler with cloudpickle: by reference to this package's modules
    shipped = cloudpickle.loads(cloudpickle.dumps(registration.handler))
    assert callable(shipped)


def test_the_snowpark_extra_is_pinned_as_in_constraints():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (line,) = project["optional-dependencies"]["snowpark"]
    assert line.startswith("snowflake-snowpark-python==")
    assert f"{line}\n" in (PROJECT_ROOT / "constraints.txt").read_text()
    deps = " ".join(project["dependencies"]) + " ".join(project["optional-dependencies"]["test"])
    assert "snowpark" not in deps  # optional: it conflicts with the cloudpickle pin


def test_the_registration_refuses_a_bad_stage_or_unpinned_packages(columns):
    good = {"params": PARAMS["screen_snowpark"], "screen": PARAMS["screen"], "columns": columns}
    with pytest.raises(ValueError, match="stage"):
        build_registration(
            **(good | {"params": PARAMS["screen_snowpark"] | {"stage": "MODELS"}}),
            packages=["pandas==2.3.3"],
        )
    with pytest.raises(ValueError, match="pinned"):
        build_registration(**good, packages=["pandas"])


def test_the_package_archive_holds_the_runtime_modules(tmp_path):
    archive = package_archive(PROJECT_ROOT / "src/disease_pipeline", tmp_path / "dp.zip")
    import zipfile

    names = set(zipfile.ZipFile(archive).namelist())
    assert "disease_pipeline/predictor/snowpark_udf.py" in names
    assert "disease_pipeline/predictor/screening.py" in names
    assert not any("__pycache__" in n for n in names)


def test_the_udf_module_imports_neither_snowpark_nor_kedro():
    code = (
        "import sys; import disease_pipeline.predictor.snowpark_udf; "
        "bad = [m for m in sys.modules if m.startswith(('snowflake.snowpark', 'kedro'))]; "
        "assert not bad, bad"
    )
    import subprocess

    src = str(Path(snowpark_udf.__file__).parents[2])
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": src})


def test_the_staged_predictor_is_loaded_once(predictor_file, monkeypatch):
    monkeypatch.setattr(snowpark_udf, "_PREDICTORS", {})
    monkeypatch.setattr(
        sys, "_xoptions", {"snowflake_import_directory": str(predictor_file.parent)}
    )
    first = snowpark_udf.staged_predictor(predictor_file.name)
    assert snowpark_udf.staged_predictor(predictor_file.name) is first
    assert type(first) is type(pickle.loads(predictor_file.read_bytes()))  # noqa: S301


def test_snowpark_accepts_the_registration(columns, tmp_path):
    """With the ``snowpark`` extra installed: the real ``session.udf.register`` of
    Snowpark's local testing session takes the arguments (types, packages) — it
    registers the function without running it batch-wise."""
    pytest.importorskip("snowflake.snowpark")
    from snowflake.snowpark import Session
    from snowflake.snowpark.types import PandasSeriesType, StringType

    registration = build_registration(
        params=PARAMS["screen_snowpark"],
        screen=PARAMS["screen"],
        columns=columns,
        packages=["pandas==2.3.3"],
    )
    arguments = snowpark_arguments(registration)
    assert arguments["input_types"] == [PandasSeriesType(StringType())] * 5
    assert arguments["return_type"] == PandasSeriesType(StringType())
    session = Session.builder.config("local_testing", True).create()
    try:
        local = arguments | {"imports": [], "is_permanent": False, "stage_location": None}
        udf = session.udf.register(**local)
        assert udf.name.strip('"').upper().endswith("DISEASE_PIPELINE_SCREEN")
    finally:
        session.close()
