"""A tiny Alertmanager webhook receiver: each notification's alerts are appended, one
JSON object per line, to a file (``deploy/alertmanager/alertmanager.yml`` points here).

    python scripts/alert_receiver.py --port 9095 --output data/09_serving/alerts.jsonl

Each line: ``received_at``, ``status`` (firing/resolved), ``alertname``, ``labels``,
``annotations``, ``startsAt``. Only ``POST /alerts`` is accepted (400 on a body that is
not an Alertmanager notification); it binds to 127.0.0.1 by default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 1_000_000


def alert_lines(notification: dict) -> list[dict]:
    """The lines to append for one Alertmanager notification (webhook version 4)."""
    alerts = notification.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("alerts: missing or not a list (not an Alertmanager notification)")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return [
        {
            "received_at": now,
            "status": alert.get("status"),
            "alertname": alert.get("labels", {}).get("alertname"),
            "labels": alert.get("labels", {}),
            "annotations": alert.get("annotations", {}),
            "startsAt": alert.get("startsAt"),
        }
        for alert in alerts
    ]


def make_server(host: str, port: int, output: Path) -> ThreadingHTTPServer:
    """The receiver's HTTP server (not started)."""
    lock = threading.Lock()
    output.parent.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/alerts" or not 0 < length <= MAX_BODY:
                self.send_error(404 if self.path != "/alerts" else 400)
                return
            try:
                lines = alert_lines(json.loads(self.rfile.read(length)))
            except (ValueError, AttributeError) as error:
                self.send_error(400, str(error)[:200])
                return
            with lock, output.open("a", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(json.dumps(line) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet: the file is the record
            return

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Alertmanager webhook → JSON-lines file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--output", type=Path, default=Path("data/09_serving/alerts.jsonl"))
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.output)
    print(f"alert receiver on http://{args.host}:{args.port}/alerts → {args.output}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
