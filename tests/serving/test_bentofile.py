"""bentofile.yaml: an offline ``bentoml build`` and a package list the service can run on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, run_python

pytestmark = pytest.mark.slow

BENTOFILE = PROJECT_ROOT / "bentofile.yaml"
#: import names of the pipeline-only packages the bentofile leaves out (Kedro included;
#: fhir.resources is in: the service validates FHIR R4B resources, docs/fhir.md). The
#: Bento has snowflake-connector-python, but only the Snowflake prediction log imports
#: it: the default (DuckDB) service must run without it
LEFT_OUT = (
    "kedro",
    "kedro_datasets",
    "kedro_mlflow",
    "kedro_viz",
    "pandera",
    "shap",
    "imblearn",
    "evidently",
    "optuna",
    "faker",
    "snowflake",
    "simple_icd_10_cm",
)


def test_bentofile_declares_the_service_without_locking():
    spec = yaml.safe_load(BENTOFILE.read_text())
    assert spec["service"] == "disease_pipeline.serving.service:DiseaseService"
    assert spec["python"]["lock_packages"] is False
    assert spec["python"]["is_src_layout"] is True
    assert "conf/base/serving.yml" in spec["include"]
    assert "conf/base/globals.yml" in spec["include"]  # serving.yml's ${globals:…}
    names = {p.split("[")[0].split("=")[0].split("<")[0] for p in spec["python"]["packages"]}
    assert {"xgboost", "scikit-learn", "torch", "pyhpo", "duckdb", "fastapi"} <= names
    assert not {"kedro", "kedro-datasets", "kedro-mlflow"} & names


def test_the_service_runs_without_the_left_out_packages(trained_store):
    """Import the service and predict with the trained predictor while the pipeline-only
    packages the bentofile omits are unimportable, and without importing PyTorch."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, pickle, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {LEFT_OUT!r}:
                    raise ImportError(f"{{name}} is not in the Bento")
        sys.meta_path.insert(0, Block())
        import disease_pipeline.serving.service as service
        from disease_pipeline.serving.engine import load_predictor
        import bentoml
        model = bentoml.models.get(service.CONFIG.model_tag)
        predictor = load_predictor(__import__("pathlib").Path(model.path))
        record = service._WARM_UP
        out = predictor.predict_records([record], top_k=3)
        assert out[0]["differential"], out
        # the predictor scores in numpy: PyTorch (~200 MB a worker) is for training only
        assert "torch" not in sys.modules, "the served predictor imported PyTorch"
        print("ok")
        """
    )
    env = {**os.environ, "BENTOML_HOME": str(trained_store), "BENTOML_DO_NOT_TRACK": "true"}
    done = run_python(script, env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_bentoml_build_works_offline(trained_store):
    env = {
        **os.environ,
        "BENTOML_HOME": str(trained_store),
        "BENTOML_DO_NOT_TRACK": "true",
        "PIP_NO_INDEX": "1",
        "UV_OFFLINE": "1",
    }
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    bento = Path(trained_store) / "bentos" / name / version
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert "torch==2.13.0+cpu" in requirements
    assert not (bento / "env/python/requirements.lock.txt").exists()
    assert (bento / "src/disease_pipeline/serving/static/index.html").exists()
    assert (bento / "src/conf/base/serving.yml").exists()
    assert (bento / "src/conf/base/globals.yml").exists()
    subprocess.run([sys.executable, "-m", "bentoml", "delete", "-y", tag], env=env, check=True)
