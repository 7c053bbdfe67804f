"""``disease-pipeline export-edge``: write the edge package of the champion.

    disease-pipeline export-edge                     # models:/disease_pipeline@champion
    disease-pipeline export-edge --model-uri models:/disease_pipeline/7 --out edge/
    disease-pipeline export-edge --predictor data/06_models/predictor.pkl --out edge/

``--predictor`` takes the pickled predictor, an MLflow model folder (``MLmodel``) or a
BentoML model folder (``mlflow_model/MLmodel``); ``--model-uri`` a registry URI, whose
version and ``data_version`` tag go to the manifest.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import click
import yaml

EXPORT_COMMANDS = ("export-edge",)


def predictor_file(path: Path) -> Path:
    """The pickled predictor of a file, an MLflow model folder or a BentoML model folder."""
    if path.is_file():
        return path
    for folder in (path, path / "mlflow_model"):
        mlmodel = folder / "MLmodel"
        if mlmodel.is_file():
            spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
            artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {})
            if "predictor" in artifacts:
                return folder / artifacts["predictor"]["path"]
    raise click.ClickException(f"{path}: no pickled predictor (a .pkl file or an MLflow model)")


def registry_predictor(model_uri: str, tracking_uri: str) -> tuple[Path, str, str]:
    """Download a registered model: ``(predictor file, model version, data version)``."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    if ref:
        version = client.get_model_version_by_alias(name, ref)
    else:
        name, _, number = name.partition("/")
        version = client.get_model_version(name, number)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    data_version = (version.tags or {}).get("data_version", "unknown")
    return predictor_file(local), f"{name}/{version.version}", data_version


@click.command(name="export-edge")
@click.option("--model-uri", default="models:/disease_pipeline@champion", show_default=True)
@click.option("--tracking-uri", default="sqlite:///mlflow.db", show_default=True)
@click.option(
    "--predictor",
    "predictor_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="a pickled predictor or a model folder instead of the registry",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/06_models/edge"),
    show_default=True,
)
@click.option("--model-version", default=None, help="recorded in the manifest (--predictor)")
@click.option("--data-version", default=None, help="recorded in the manifest (--predictor)")
def export_edge(  # noqa: PLR0917 - one argument per click option
    model_uri: str,
    tracking_uri: str,
    predictor_path: Path | None,
    out: Path,
    model_version: str | None,
    data_version: str | None,
) -> None:
    """Write the edge package (ONNX models, NumPy arrays, manifest) of a predictor."""
    from disease_pipeline.edge_export.writer import write_package  # PyTorch, XGBoost, onnxmltools

    if predictor_path is not None:
        source, version, data = predictor_file(predictor_path), "unregistered", "unknown"
    else:
        source, version, data = registry_predictor(model_uri, tracking_uri)
    with source.open("rb") as handle:
        predictor: Any = pickle.load(handle)  # noqa: S301 - our own registered artifact
    record = write_package(
        predictor,
        out,
        model_version=model_version or version,
        data_version=data_version or data,
        source=str(predictor_path or model_uri),
    )
    size = sum(f["bytes"] for f in record["files"].values())
    click.echo(json.dumps({"out": str(out), "bytes": size, **record}, indent=2))
