"""The Evidently workspace of the monitor in the real ``evidently ui``, screenshot in
headless Chromium (``scripts/evidently_ui_screenshot.py``)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.datasets.evidently_workspace import EvidentlyWorkspaceDataset
from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server]


def weekly_snapshots(weeks: int) -> list:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"age_years": rng.normal(50, 15, 500), "news2": rng.poisson(2, 500)})
    start = datetime(2026, 11, 1, tzinfo=UTC)
    runs = []
    for week in range(weeks):
        current = pd.DataFrame(
            {"age_years": rng.normal(50 + 8 * week, 15, 400), "news2": rng.poisson(2, 400)}
        )
        report = Report([DataDriftPreset()])
        runs.append(
            report.run(
                current_data=current.astype(float),
                reference_data=reference.astype(float),
                timestamp=start + timedelta(days=7 * week),
            )
        )
    return runs


def test_evidently_ui_shows_the_monitoring_project(tmp_path):
    workspace = tmp_path / "workspace"
    dataset = EvidentlyWorkspaceDataset(
        path=str(workspace), project="disease_pipeline monitoring", watched_features=["age_years"]
    )
    dataset.save(weekly_snapshots(3))
    assert len(dataset.load()) == 3
    output = tmp_path / "evidently_ui.png"
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "evidently_ui_screenshot.py"),
            "--workspace",
            str(workspace),
            "--output",
            str(output),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 runs" in result.stdout
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 20_000
