"""Registers the screen's Snowpark vectorised UDF in Snowflake (docs/scale.md).

Stages the predictor file and a zip of the package on ``screen_snowpark.stage``, and
registers ``screen_snowpark.udf_name`` with the model's pinned packages. Needs the
``snowpark`` extra and a real Snowflake account (``SNOWFLAKE_*`` variables, as
conf/snowflake/credentials.yml): fakesnow runs no Python UDF.

    python scripts/register_snowpark_udf.py --predictor data/06_models/predictor.pkl
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import yaml

from disease_pipeline.pipelines.screen.snowpark import (
    model_packages,
    package_archive,
    register,
    stage_files,
    warehouse_columns,
)
from disease_pipeline.predictor.screening import DETAIL_TABLES
from disease_pipeline.predictor.snowpark_udf import build_registration

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", type=Path, default=ROOT / "data/06_models/predictor.pkl")
    args = parser.parse_args()
    from snowflake.snowpark import Session  # the snowpark extra

    params = yaml.safe_load((ROOT / "conf/base/parameters_screen.yml").read_text())
    keys = ("account", "user", "password", "warehouse", "database", "schema", "role")
    config = {
        k: os.environ[f"SNOWFLAKE_{k.upper()}"]
        for k in keys
        if f"SNOWFLAKE_{k.upper()}" in os.environ
    }
    session = Session.builder.configs(config).create()
    snowpark = params["screen_snowpark"]
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / snowpark["model_file"]
        model.write_bytes(args.predictor.read_bytes())
        archive = package_archive(
            ROOT / "src/disease_pipeline", Path(folder) / snowpark["code_archive"]
        )
        stage_files(session, snowpark["stage"], [model, archive])
    columns = {name: session.table(name).columns for name in ("encounters", *DETAIL_TABLES)}
    registration = build_registration(
        params=snowpark,
        screen=params["screen"],
        columns=warehouse_columns({k: [c.lower() for c in v] for k, v in columns.items()}),
        packages=model_packages(
            (ROOT / "pyproject.toml").read_text(), (ROOT / "constraints.txt").read_text()
        ),
    )
    register(session, registration)
    print(f"registered {registration.name} with {len(registration.packages)} packages")


if __name__ == "__main__":
    main()
