"""``python -m disease_pipeline.loop_report decision|comparison``: the retraining loop's
latest outcome as one line of JSON on standard output, for a scheduler.

- ``decision``: ``retrain_check``'s ``reporting_retrain_decision`` — ``decision``
  (``retrain`` / ``wait``), the fired triggers, the reason, the champion's version;
- ``comparison``: ``retrain``'s ``registry_challenger_comparison`` — ``promote`` and the
  reason of the verdict, the evaluation set's size, the gate's verdict.

Both are read through the project's catalog, so the environment's ``data_root`` and a
``--conf-source`` are honoured. The Airflow DAG (deploy/airflow) runs this after each
stage: the line becomes the task's result, and the DAG branches on ``decision``.
Run from the project's folder, like ``kedro``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

#: what can be reported → the catalog dataset holding it
DATASETS = {
    "decision": "reporting_retrain_decision",
    "comparison": "registry_challenger_comparison",
}


def summarise(what: str, report: dict[str, Any]) -> dict[str, Any]:
    """The part of ``report`` a scheduler acts on or shows."""
    if what == "decision":
        keys = ("decision", "fired", "reason", "checked_at", "champion_version")
        return {key: report.get(key) for key in keys}
    verdict = report.get("verdict") or {}
    return {
        "promote": bool(verdict.get("promote")),
        "reason": verdict.get("reason"),
        "n_compared": (report.get("evaluation_set") or {}).get("n_compared"),
        "gate_approved": (report.get("gate") or {}).get("approved"),
    }


def load_report(what: str, env: str, conf_source: str | None, project: Path) -> dict[str, Any]:
    """``what``'s dataset, loaded through the catalog of ``env``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, conf_source=conf_source) as session:
        return session.load_context().catalog.load(DATASETS[what])


@click.command()
@click.argument("what", type=click.Choice(sorted(DATASETS)))
@click.option("--env", default="local", show_default=True, help="Kedro environment")
@click.option("--conf-source", default=None, help="configuration folder (default: conf)")
@click.option(
    "--project-path",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="the Kedro project",
)
def main(what: str, env: str, conf_source: str | None, project_path: Path) -> None:
    """Print the latest ``decision`` or ``comparison`` of the retraining loop as JSON."""
    report = load_report(what, env, conf_source, project_path.resolve())
    click.echo(json.dumps(summarise(what, report), sort_keys=True))


if __name__ == "__main__":
    main()
