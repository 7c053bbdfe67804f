"""The token file (``serving.tokens_file``): only SHA-256 hashes of bearer tokens, one
entry per line so deleting a line by hand still leaves valid YAML.

Every change is written atomically (a 0600 temporary file in the same folder, fsync,
rename) under a lock, so a reader never sees half a file and the file is never
readable by others, not even for a moment. Entries may carry ``expires`` (ISO 8601,
UTC): an expired token is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.serving.config import ServingConfigError

_USER = re.compile(r"^[\w.@-]{1,64}$")


def hash_token(token: str) -> str:
    """Hex SHA-256 of a bearer token (what the configuration stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_expiry(value: Any, where: str) -> datetime | None:
    """``expires`` of an entry as an aware UTC datetime (None: never expires)."""
    if value in (None, ""):
        return None
    try:
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as error:
        raise ServingConfigError(f"{where}.expires: not an ISO 8601 date ({error})") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@contextlib.contextmanager
def locked(tokens_file: Path) -> Iterator[None]:
    """Exclusive lock of the token file's writers (``<file>.lock``)."""
    lock_path = tokens_file.with_name(tokens_file.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_entries(tokens_file: Path) -> list[dict[str, Any]]:
    """The file's entries (empty when it does not exist)."""
    if not tokens_file.exists():
        return []
    document = yaml.safe_load(tokens_file.read_text(encoding="utf-8")) or {}
    entries = document.get("tokens") if isinstance(document, dict) else document
    return list(entries or [])


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; the file is 0600 from its creation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_entries(tokens_file: Path, entries: list[dict[str, Any]]) -> None:
    """Write ``entries`` one per line (flow style), atomically, mode 0600."""
    lines = ["# bearer tokens: SHA-256 hashes only; delete a line to revoke a token", "tokens:"]
    for entry in entries:
        flow = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=10_000)
        lines.append(f"  - {flow.strip()}")
    if not entries:
        lines[-1] = "tokens: []"
    write_private(tokens_file, "\n".join(lines) + "\n")


def add_token(
    tokens_file: Path, user: str, role: str, roles: set[str], days: float | None = None
) -> str:
    """Create a token for ``user`` with ``role`` (valid ``days`` days, or without
    expiry), store its hash and return the plaintext token (shown once, never stored)."""
    with locked(tokens_file):
        return add_token_locked(tokens_file, user, role, roles, days)


def add_token_locked(
    tokens_file: Path, user: str, role: str, roles: set[str], days: float | None = None
) -> str:
    """:func:`add_token` for a caller that already holds :func:`locked`."""
    if role not in roles:
        raise ServingConfigError(f"role {role!r} is not one of {sorted(roles)}")
    if not _USER.match(user):
        raise ServingConfigError(f"user {user!r}: use 1-64 letters, digits, '.', '@', '-' or '_'")
    token = secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"user": user, "role": role, "sha256": hash_token(token)}
    if days is not None:
        expires = datetime.now(UTC) + timedelta(days=days)
        entry["expires"] = expires.isoformat(timespec="seconds")
    write_entries(tokens_file, [*read_entries(tokens_file), entry])
    return token


def revoke_tokens(tokens_file: Path, user: str | None = None, sha256: str | None = None) -> int:
    """Remove the entries of ``user`` and/or whose hash starts with ``sha256`` (at least
    8 characters); returns how many were removed. Takes effect without a restart."""
    if not user and not sha256:
        raise ServingConfigError("revoke-token: give --user or --sha256")
    if sha256 is not None and len(sha256) < 8:
        raise ServingConfigError("revoke-token: --sha256 needs at least 8 hex characters")

    def matches(entry: dict[str, Any]) -> bool:
        by_user = user is None or entry.get("user") == user
        by_hash = sha256 is None or str(entry.get("sha256", "")).startswith(sha256.lower())
        return by_user and by_hash

    with locked(tokens_file):
        entries = read_entries(tokens_file)
        kept = [entry for entry in entries if not matches(entry)]
        if len(kept) != len(entries):
            write_entries(tokens_file, kept)
    return len(entries) - len(kept)


def write_first_token(path: Path, token: str) -> None:
    """The first token in its own file, created 0600 (never shown in the log)."""
    write_private(path, token + "\n")
