"""An Evidently 0.7 local workspace project as a Kedro dataset: each save adds one
monitoring run (a ``Snapshot``) to the project, so ``evidently ui --workspace <path>``
shows the dashboards over time.

Example:
    ```yaml
    reporting_monitoring_evidently_run:
      type: disease_pipeline.datasets.evidently_workspace.EvidentlyWorkspaceDataset
      path: ${globals:data_root}/08_reporting/monitoring/evidently_workspace
      project: disease_pipeline monitoring
    ```

The project and its dashboard (drifted-feature count and share, rows compared, the
drift of the most-watched features) are created on the first save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError


def _dashboard_panels(watched: list[str]) -> list[Any]:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import counter_panel, line_plot_panel

    panels = [
        counter_panel(
            "Drifted features in the last window",
            [
                PanelMetric(
                    legend="drifted",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "count"},
                )
            ],
            size="half",
        ),
        counter_panel(
            "Rows compared in the last window (seeded sample)",
            [PanelMetric(legend="rows", metric="RowCount")],
            size="half",
        ),
        line_plot_panel(
            "Share of drifted features per window",
            [
                PanelMetric(
                    legend="share",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
        ),
    ]
    if watched:
        panels.append(
            line_plot_panel(
                "Drift score of the watched features per window",
                [
                    PanelMetric(legend=name, metric="ValueDrift", metric_labels={"column": name})
                    for name in watched
                ],
            )
        )
    return panels


class EvidentlyWorkspaceDataset(AbstractDataset[list[Any], list[str]]):
    """Saves Evidently snapshots as runs of one project of a local workspace."""

    def __init__(
        self,
        *,
        path: str,
        project: str,
        description: str = "",
        watched_features: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._project = project
        self._description = description
        self._watched = list(watched_features or [])
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "project": self._project}

    def _workspace(self):
        from evidently.ui.workspace import Workspace

        self._path.mkdir(parents=True, exist_ok=True)
        return Workspace(str(self._path))

    def _find(self, workspace):
        found = [p for p in workspace.list_projects() if p.name == self._project]
        return found[0] if found else None

    def save(self, data: list[Any]) -> None:
        """Add each snapshot of ``data`` as a run (creating the project on first use)."""
        if not data:
            return
        workspace = self._workspace()
        project = self._find(workspace)
        if project is None:
            project = workspace.create_project(self._project, description=self._description)
            for panel in _dashboard_panels(self._watched):
                project.dashboard.add_panel(panel, tab="Monitoring")
        for snapshot in data:
            workspace.add_run(project.id, snapshot)

    def load(self) -> list[str]:
        """The ids of the project's runs (oldest first)."""
        workspace = self._workspace()
        project = self._find(workspace)
        if project is None:
            raise DatasetError(f"no Evidently project {self._project!r} in {self._path}")
        return [str(run) for run in workspace.list_runs(project.id)]

    def _exists(self) -> bool:
        return self._path.exists() and self._find(self._workspace()) is not None
