"""Bearer-token authentication with roles, as an ASGI middleware of the service.

Only the SHA-256 hash of a token is configured (``serving.tokens`` or the
``tokens_file``); a role grants permissions (``serving.roles``), and each route needs
one permission. Health, readiness, metrics, the API docs and the clinician page itself
are public; every other path needs a valid token.

A route without a permission entry is refused to everyone (deny by default). Each
token has its own request budget (``serving.rate_limit``: a token bucket; 429 with
``Retry-After`` when spent). A token file that cannot be read refuses every call with
503 (never a 500, never the old table).

Create, revoke (takes effect without a restart)::

    python -m disease_pipeline.serving.auth add-token --user dr_lee --role clinician --days 90
    python -m disease_pipeline.serving.auth revoke-token --user dr_lee
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from disease_pipeline.serving.config import ServingConfig, ServingConfigError, load_config
from disease_pipeline.serving.tokens import (
    add_token,
    add_token_locked,
    hash_token,
    locked,
    parse_expiry,
    read_entries,
    revoke_tokens,
    write_first_token,
)

logger = logging.getLogger(__name__)

#: Permission needed by each protected route.
ROUTE_PERMISSIONS: dict[tuple[str, str], str] = {
    ("POST", "/predict"): "predict",
    ("POST", "/predict_batch"): "predict_batch",
    ("POST", "/fhir/predict"): "predict",
    ("POST", "/feedback"): "feedback",
    ("GET", "/model_info"): "model_info",
    ("GET", "/audit/export"): "audit_export",
    ("GET", "/hpo/search"): "hpo_search",
    ("GET", "/alerts"): "alerts",
    ("POST", "/alerts/update"): "alerts",
    ("GET", "/review"): "review",
}
#: Paths that need no token: probes, metrics, API docs, the clinician page and its assets.
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/",
        "/docs.json",
        "/schema.json",
        "/cds-services",  # CDS Hooks discovery (serving.ehr_auth: the hooks need the EHR JWT)
    }
)
#: Routes opened by the EHR's signed JWT instead of a service token (CDS Hooks).
EHR_PREFIX = "/cds-services/"
PUBLIC_PREFIXES = ("/ui", "/static_content/", "/assets/")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    role: str
    expires: datetime | None = None
    #: SHA-256 of the token (the rate limit's key; not compared)
    token_hash: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Principal) and (self.user, self.role) == (other.user, other.role)

    def __hash__(self) -> int:
        return hash((self.user, self.role))


@dataclass(frozen=True)
class Denied:
    """An authentication (401) or authorisation (403) refusal with its reason."""

    status: int
    message: str
    retry_after: int | None = None


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
        expires = parse_expiry(entry.get("expires"), where)
        table[digest] = Principal(str(entry["user"]), str(entry["role"]), expires, digest)
    return table


class RateLimiter:
    """A token bucket per key: ``per_second`` requests on average, ``burst`` at once."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: str, now: float | None = None) -> float:
        """0 when a request of ``key`` may go now (and takes one unit), else the
        seconds until one unit is back."""
        now = time.monotonic() if now is None else now
        with self._lock:
            level, stamp = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - stamp) * self.per_second)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.per_second


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
        self._file_error: str | None = None
        self.limiter = RateLimiter(config.rate_per_second, config.rate_burst)
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
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            entries = read_entries(path)
            self._from_file = parse_token_entries(entries, set(self._config.roles), str(path))
            self._file_error = None
        except (yaml.YAMLError, ServingConfigError, AttributeError, TypeError) as error:
            # fail closed: no token of the file is accepted until it is fixed
            self._from_file, self._file_error = {}, f"{path}: {error}"
            logger.error("token file unreadable, refusing its tokens: %s", self._file_error)

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
            if self._file_error is not None:
                return Denied(503, "the token file cannot be read: ask the administrator")
            return Denied(401, "invalid or revoked bearer token")
        if principal.expires is not None and principal.expires <= datetime.now(UTC):
            return Denied(401, f"bearer token expired on {principal.expires.isoformat()}")
        needed = ROUTE_PERMISSIONS.get((method.upper(), path))
        if needed is None:  # deny by default
            return Denied(403, f"{method} {path} has no permission entry: refused to every role")
        wait = self.limiter.wait_s(principal.token_hash)
        if wait > 0:
            return Denied(
                429,
                f"rate limit of user '{principal.user}' reached: retry in {wait:.1f} s",
                retry_after=math.ceil(wait),
            )
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

    def __init__(self, app, config_path: str | None = None, on_error=None, ehr=None) -> None:
        self.app = app
        self.tokens = TokenTable(load_config(config_path))
        self.on_error = on_error
        #: ``ehr(path, header) -> Principal | Denied`` for the ``EHR_PREFIX`` routes
        #: (serving.ehr_auth); without it those routes are refused (no permission entry)
        self.ehr = ehr

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
        if self.ehr is not None and path.startswith(EHR_PREFIX):
            decision = self.ehr(path, header)
            wait = (
                self.tokens.limiter.wait_s(decision.token_hash)
                if not isinstance(decision, Denied)
                else 0
            )
            if wait > 0:
                decision = Denied(429, f"rate limit of {decision.user} reached", math.ceil(wait))
        else:
            decision = self.tokens.authorize(scope["method"], path, header)
        if isinstance(decision, Denied):
            if self.on_error is not None:
                self.on_error(path, decision.status)
            await _send_json(send, decision, {"error": decision.message})
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


async def _send_json(send, decision: Denied, payload: dict) -> None:
    body = json.dumps(payload).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if decision.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="disease_pipeline"'))
    if decision.retry_after is not None:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    await send({"type": "http.response.start", "status": decision.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bootstrap_token(config: ServingConfig, user: str = "local", role: str = "clinician"):
    """On a fresh install with no token at all, create one for ``user`` so the service is
    usable in one command: its hash goes to the token file, the token itself to
    ``serving.first_token_file`` (mode 0600; the log names the file, never the token).
    Returns the plaintext token, else None."""
    if config.tokens or config.tokens_file is None or role not in config.roles:
        return None
    with locked(config.tokens_file):  # several workers start at once: one creates it
        if read_entries(config.tokens_file):
            return None
        token = add_token_locked(
            config.tokens_file, user, role, set(config.roles), config.token_days
        )
        write_first_token(config.first_token_file, token)
    return token


def main(argv: list[str] | None = None) -> int:
    """``add-token``: create a bearer token and register its hash; ``revoke-token``:
    remove the tokens of a user (or one hash prefix)."""
    parser = argparse.ArgumentParser(prog="python -m disease_pipeline.serving.auth")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-token", help="create a token; prints it once")
    add.add_argument("--user", required=True, help="user id shown in the audit trail")
    add.add_argument("--role", required=True, help="a role of serving.roles (clinician, admin)")
    add.add_argument("--days", type=float, default=None, help="valid this many days")
    revoke = commands.add_parser("revoke-token", help="remove tokens (no restart needed)")
    revoke.add_argument("--user", default=None, help="every token of this user")
    revoke.add_argument("--sha256", default=None, help="the token whose hash starts so")
    for command in (add, revoke):
        command.add_argument("--config", default=None, help="serving configuration file")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config.tokens_file is None:
        parser.error(f"{config.source}: serving.tokens_file is not set")
    if args.command == "revoke-token":
        removed = revoke_tokens(config.tokens_file, args.user, args.sha256)
        print(f"{removed} token(s) revoked in {config.tokens_file}", file=sys.stderr)
        return 0 if removed else 1
    days = args.days if args.days is not None else config.token_days
    token = add_token(config.tokens_file, args.user, args.role, set(config.roles), days)
    print(token)
    print(
        f"token for {args.user} ({args.role}) added to {config.tokens_file}; it is shown only now",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
