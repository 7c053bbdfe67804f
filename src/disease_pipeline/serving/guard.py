"""The service's outer guard (ASGI middleware): request body size limit (413), security
headers on every answer, and route templates for the metrics.

- A body longer than ``max_body_bytes`` is refused with **413** before the endpoint
  reads it (announced ``Content-Length`` or counted while streaming).
- Every answer carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` (static page files
  excepted); the clinician page and the API answers carry the Content Security Policy
  ``default-src 'self'; frame-ancestors 'none'``.
- Metrics label requests by route template: a path the service does not serve is
  pooled under ``unmatched`` (see :func:`route_template`), so random paths cannot add
  series to ``/metrics``.

The per-token rate limit lives beside authentication
(:class:`~disease_pipeline.serving.auth.BearerAuthMiddleware`); the concurrency limit
is BentoML's ``traffic.max_concurrency`` (429).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from disease_pipeline.serving.auth import PUBLIC_PATHS, ROUTE_PERMISSIONS

#: Content Security Policy of the page and of every API answer.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: Headers added to every answer.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
#: Label of every path the service does not serve.
UNMATCHED = "unmatched"
_ROUTES = frozenset(path for _, path in ROUTE_PERMISSIONS) | PUBLIC_PATHS
_PREFIXES = {
    "/ui/static/": "/ui/static/{file}",
    "/static_content/": "/static_content/{file}",
    "/cds-services/": "/cds-services/{service}",
}
#: BentoML's own API documentation page loads its scripts inline: no CSP there.
_NO_CSP = frozenset({"/"})


def route_template(path: str) -> str:
    """The route a path belongs to (``/ui/static/{file}``), or ``unmatched``."""
    if path in _ROUTES or path in ("/ui", "/ui/", "/ui/vocabulary"):
        return path
    for prefix, template in _PREFIXES.items():
        if path.startswith(prefix):
            return template
    return UNMATCHED


class GuardMiddleware:
    """Body size limit and security headers (see the module docstring)."""

    def __init__(self, app, max_body_bytes: int, on_error: Callable | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_error = on_error

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(path, send)
            return
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body = await _read_limited(receive, self.max_body_bytes)
            if body is None:
                await self._too_large(path, send)
                return
            receive = _replay(body)
        static = path.startswith("/ui/static/")
        csp = path not in _NO_CSP

        async def secured(message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers += SECURITY_HEADERS
                headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                if csp:
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)

    async def _too_large(self, path: str, send) -> None:
        if self.on_error is not None:
            self.on_error(path, 413)
        body = json.dumps(
            {"error": f"request body larger than {self.max_body_bytes} bytes", "detail": []}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_limited(receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def template_bentoml_metrics() -> None:
    """Make BentoML's request metrics label requests by :func:`route_template` instead
    of the raw path (BentoML 1.4 labels by ``scope["path"]``, so every random path
    became new series). The inner application still sees the real path."""
    from bentoml._internal.server.http import instruments

    original = instruments.RunnerTrafficMetricsMiddleware
    if getattr(original, "_route_templated", False):
        return

    class _RealPath:
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            real = scope.get("disease_real_path")
            if real is not None:
                scope = {**scope, "path": real}
            await self.app(scope, receive, send)

    class RouteTemplatedMetrics(original):
        _route_templated = True

        def __init__(self, app, *args, **kwargs) -> None:
            super().__init__(_RealPath(app), *args, **kwargs)

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] == "http" and scope["path"] != "/metrics":
                path = scope["path"]
                scope = {**scope, "path": route_template(path), "disease_real_path": path}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteTemplatedMetrics
