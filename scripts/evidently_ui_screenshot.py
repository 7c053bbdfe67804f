"""Screenshot of the Evidently UI dashboard of the monitoring workspace (headless
Debian Chromium through Playwright): starts ``evidently ui`` on the workspace, opens the
project ``disease_pipeline monitoring`` and saves a PNG.

    python scripts/evidently_ui_screenshot.py \\
        --workspace data/08_reporting/monitoring/evidently_workspace \\
        --output data/08_reporting/monitoring/evidently_ui.png
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from disease_pipeline.serving.process import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def start_ui(workspace: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``evidently ui`` on ``workspace``, ready (its projects API answers)."""
    binary = shutil.which("evidently") or str(Path(sys.executable).parent / "evidently")
    port = free_port()
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [binary, "ui", "--workspace", str(workspace), "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/projects", timeout=2).status_code == 200:
                return process, url
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"evidently ui not ready: {log.read_text()[-2000:]}")


def screenshot(url: str, project: str, output: Path) -> dict:
    """The project's dashboard page as a PNG; returns what the API and page showed."""
    from playwright.sync_api import sync_playwright

    projects = httpx.get(f"{url}/api/projects", timeout=10).json()
    found = [p for p in projects if p["name"] == project]
    if not found:
        raise RuntimeError(
            f"no project {project!r} in the workspace: {[p['name'] for p in projects]}"
        )
    project_id = found[0]["id"]
    runs = httpx.get(f"{url}/api/projects/{project_id}/snapshots", timeout=10).json()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/projects/{project_id}", wait_until="networkidle")
        page.wait_for_timeout(3000)
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(output), full_page=True)
        text = page.inner_text("body")
        browser.close()
    return {"project_id": project_id, "runs": len(runs), "page_text": text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workspace", type=Path, default=Path("data/08_reporting/monitoring/evidently_workspace")
    )
    parser.add_argument("--project", default="disease_pipeline monitoring")
    parser.add_argument(
        "--output", type=Path, default=Path("data/08_reporting/monitoring/evidently_ui.png")
    )
    args = parser.parse_args(argv)
    process, url = start_ui(args.workspace, args.output.with_suffix(".log"))
    try:
        shown = screenshot(url, args.project, args.output)
    finally:
        process.terminate()
        process.wait(30)
    print(f"{args.output}: project {shown['project_id']}, {shown['runs']} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
