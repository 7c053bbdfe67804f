"""``disease-pipeline promote`` / ``rollback``: move the registry's champion alias by hand.

Run from the project's root, like ``kedro``. The MLflow tracking URI is the project's
(``conf/<env>/mlflow.yml``, set by kedro-mlflow when the Kedro context loads) unless
``--tracking-uri`` names another. Every move is
recorded as model-version tags and appended to the service's audit trail
(``--serving-config``; ``--no-audit`` skips it, e.g. on a machine without the service).

    disease-pipeline promote --reason "A/B week 12: top-3 +2.1 pts"       # @challenger
    disease-pipeline promote --version 7 --reason "…"
    disease-pipeline rollback --reason "alert: latency p95 above 500 ms"  # @previous_champion
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click
import mlflow
from mlflow.tracking import MlflowClient

from disease_pipeline.datasets.promotion import open_audit_trail
from disease_pipeline.pipelines.retrain import promotion

REGISTRY_COMMANDS = ("promote", "rollback")


def _client(tracking_uri: str | None, env: str, project: Path) -> MlflowClient:
    """An MLflow client on ``tracking_uri``, or on the store configured by the project."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    else:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env) as session:
            session.load_context()  # kedro-mlflow sets the tracking URI
    return MlflowClient()


def _options(command):
    for option in reversed(
        [
            click.option("--reason", required=True, help="why (kept in tags and the audit trail)"),
            click.option("--version", default=None, help="registry version to make champion"),
            click.option("--name", default="disease_pipeline", show_default=True),
            click.option("--user", default=None, help="operator (default: the login name)"),
            click.option("--tracking-uri", default=None, help="default: conf/<env>/mlflow.yml"),
            click.option("--env", default="local", show_default=True, help="Kedro environment"),
            click.option(
                "--project-path",
                default=".",
                show_default=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="the Kedro project (like kedro, the working directory)",
            ),
            click.option(
                "--serving-config",
                default="conf/base/serving.yml",
                show_default=True,
                help="serving configuration naming the audit trail (paths in it are "
                "relative to the working directory, as for the service)",
            ),
            click.option("--no-audit", is_flag=True, help="do not append to the audit trail"),
        ]
    ):
        command = option(command)
    return command


def _run(move, **options) -> None:
    client = _client(options["tracking_uri"], options["env"], options["project_path"].resolve())
    audit = None if options["no_audit"] else open_audit_trail(options["serving_config"])
    try:
        record = move(
            client,
            options["name"],
            version=options["version"],
            reason=options["reason"],
            user=options["user"] or getpass.getuser(),
            audit=audit,
        )
    except promotion.PromotionError as error:
        raise click.ClickException(str(error)) from error
    finally:
        if audit is not None:
            audit.close()
    click.echo(json.dumps(record, indent=2))


@click.group(name="disease-pipeline")
def registry_cli() -> None:
    """Move the champion alias of the MLflow Model Registry."""


@registry_cli.command()
@_options
def promote(**options) -> None:
    """Make @challenger (or --version) the champion; the old one becomes @previous_champion."""
    _run(promotion.promote, **options)


@registry_cli.command()
@_options
def rollback(**options) -> None:
    """Restore @previous_champion (or --version) as the champion."""
    _run(promotion.rollback, **options)
