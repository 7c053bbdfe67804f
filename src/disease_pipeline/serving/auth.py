"""Bearer-token authentication with roles, as an ASGI middleware of the service.

Only the SHA-256 hash of a token is configured (``serving.tokens`` or the
``tokens_file``); a role grants permissions (``serving.roles``), and each route needs
one permission. Health, readiness, metrics, the API docs and the clinician page itself
are public; every other path needs a valid token.

Create a token (printed once, only its hash is stored)::

    python -m disease_pipeline.serving.auth add-token --user dr_lee --role clinician
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.serving.config import ServingConfig, ServingConfigError, load_config

#: Permission needed by each protected route.
ROUTE_PERMISSIONS: dict[tuple[str, str], str] = {
    ("POST", "/predict"): "predict",
    ("POST", "/predict_batch"): "predict_batch",
    ("POST", "/feedback"): "feedback",
    ("GET", "/model_info"): "model_info",
    ("GET", "/audit/export"): "audit_export",
    ("GET", "/hpo/search"): "hpo_search",
}
#: Paths that need no token: probes, metrics, API docs, the clinician page and its assets.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/schema.json"}
)
PUBLIC_PREFIXES = ("/ui", "/static_content/", "/assets/")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hash_token(token: str) -> str:
    """Hex SHA-256 of a bearer token (what the configuration stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    role: str


@dataclass(frozen=True)
class Denied:
    """An authentication (401) or authorisation (403) refusal with its reason."""

    status: int
    message: str


def is_public(path: str) -> bool:
    """True for paths that need no token."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def parse_token_entries(entries: list[dict[str, Any]], roles: set[str], origin: str) -> dict:
    """``sha256 → Principal`` from ``{user, role, sha256}`` entries; bad entries raise."""
    table: dict[str, Principal] = {}
    for index, entry in enumerate(entries):
        where = f"{origin}[{index}]"
        if not isinstance(entry, dict):
            raise ServingConfigError(f"{where}: expected a mapping with user, role, sha256")
        digest = str(entry.get("sha256", "")).lower()
        if not _SHA256.match(digest):
            raise ServingConfigError(f"{where}.sha256: not a 64-character hex SHA-256")
        if entry.get("role") not in roles:
            raise ServingConfigError(
                f"{where}.role: {entry.get('role')!r} is not one of {sorted(roles)}"
            )
        if not entry.get("user"):
            raise ServingConfigError(f"{where}.user: required")
        table[digest] = Principal(user=str(entry["user"]), role=str(entry["role"]))
    return table


class TokenTable:
    """Token hashes and role permissions; re-reads ``tokens_file`` when it changes."""

    def __init__(self, config: ServingConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._inline = parse_token_entries(
            list(config.tokens), set(config.roles), f"{config.source}: serving.tokens"
        )
        self._file_stamp: tuple[float, int] | None = None
        self._from_file: dict[str, Principal] = {}
        self._refresh()

    def _refresh(self) -> None:
        path = self._config.tokens_file
        if path is None:
            return
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._file_stamp, self._from_file = None, {}
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._file_stamp:
            return
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = document.get("tokens") or [] if isinstance(document, dict) else document
        self._from_file = parse_token_entries(list(entries), set(self._config.roles), str(path))
        self._file_stamp = stamp

    def principal(self, token: str) -> Principal | None:
        """Who holds ``token``, or None for an unknown token."""
        digest = hash_token(token)
        with self._lock:
            self._refresh()
            return self._inline.get(digest) or self._from_file.get(digest)

    def authorize(self, method: str, path: str, header: str | None) -> Principal | Denied | None:
        """``None`` for a public path, a ``Principal`` when allowed, else ``Denied``."""
        if is_public(path):
            return None
        if not header:
            return Denied(
                401, "missing bearer token: send the header 'Authorization: Bearer <token>'"
            )
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Denied(401, "malformed Authorization header: expected 'Bearer <token>'")
        principal = self.principal(token.strip())
        if principal is None:
            return Denied(401, "invalid or revoked bearer token")
        needed = ROUTE_PERMISSIONS.get((method.upper(), path))
        if needed is None:
            return principal
        if needed not in self._config.roles.get(principal.role, frozenset()):
            return Denied(
                403,
                f"role '{principal.role}' (user '{principal.user}') may not call {method} {path}: "
                f"it needs the permission '{needed}'",
            )
        return principal


class BearerAuthMiddleware:
    """ASGI middleware: refuses unauthenticated or unauthorised requests with a JSON
    ``{"error": ...}`` (401 with ``WWW-Authenticate: Bearer``, or 403) and puts the
    caller in ``scope["state"]["principal"]`` for the endpoints.

    ``on_error(path, status)`` is called for every response with a status of 400 or
    more (refusals here and errors of the endpoints), e.g. to count them.
    """

    def __init__(self, app, config_path: str | None = None, on_error=None) -> None:
        self.app = app
        self.tokens = TokenTable(load_config(config_path))
        self.on_error = on_error

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        decision = self.tokens.authorize(scope["method"], path, header)
        if isinstance(decision, Denied):
            if self.on_error is not None:
                self.on_error(path, decision.status)
            await _send_json(send, decision.status, {"error": decision.message})
            return
        scope.setdefault("state", {})["principal"] = decision
        if self.on_error is None:
            await self.app(scope, receive, send)
            return

        async def watch(message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.on_error(path, message["status"])
            await send(message)

        await self.app(scope, receive, watch)


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="disease_pipeline"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def add_token(tokens_file: Path, user: str, role: str, roles: set[str]) -> str:
    """Create a token for ``user`` with ``role``, append its hash to ``tokens_file`` and
    return the plaintext token (shown once, never stored)."""
    if role not in roles:
        raise ServingConfigError(f"role {role!r} is not one of {sorted(roles)}")
    if not re.match(r"^[\w.@-]{1,64}$", user):
        raise ServingConfigError(f"user {user!r}: use 1-64 letters, digits, '.', '@', '-' or '_'")
    token = secrets.token_urlsafe(32)
    document: dict[str, Any] = {"tokens": []}
    if tokens_file.exists():
        document = yaml.safe_load(tokens_file.read_text(encoding="utf-8")) or {"tokens": []}
    document.setdefault("tokens", []).append(
        {"user": user, "role": role, "sha256": hash_token(token)}
    )
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    tokens_file.chmod(0o600)
    return token


def bootstrap_token(config: ServingConfig, user: str = "local", role: str = "clinician"):
    """On a fresh install with no token at all, create one for ``user`` so the service is
    usable in one command; returns the plaintext token (to show once), else None."""
    if config.tokens or config.tokens_file is None or role not in config.roles:
        return None
    lock_path = config.tokens_file.with_name(config.tokens_file.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:  # several workers start at once: one creates it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if config.tokens_file.exists():
            document = yaml.safe_load(config.tokens_file.read_text(encoding="utf-8")) or {}
            if document.get("tokens") if isinstance(document, dict) else document:
                return None
        return add_token(config.tokens_file, user, role, set(config.roles))


def main(argv: list[str] | None = None) -> int:
    """``add-token``: create a bearer token and register its hash."""
    parser = argparse.ArgumentParser(prog="python -m disease_pipeline.serving.auth")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-token", help="create a token; prints it once")
    add.add_argument("--user", required=True, help="user id shown in the audit trail")
    add.add_argument("--role", required=True, help="a role of serving.roles (clinician, admin)")
    add.add_argument("--config", default=None, help="serving configuration file")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config.tokens_file is None:
        parser.error(f"{config.source}: serving.tokens_file is not set")
    token = add_token(config.tokens_file, args.user, args.role, set(config.roles))
    print(token)
    print(
        f"token for {args.user} ({args.role}) added to {config.tokens_file}; it is shown only now",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
