"""Append-only, hash-chained audit trail (JSON lines) and its verifier.

Each entry carries ``seq`` (1, 2, …), ``prev_hash`` (the previous entry's ``hash``; 64
zeros for the first) and ``hash`` = SHA-256 of the entry's canonical JSON without
``hash`` (sorted keys, no spaces). Editing, inserting, reordering or deleting an entry
breaks the chain. Entries hold no raw identifiers: patient ids and inputs are keyed
HMAC digests made by the service.

Writers hold an exclusive ``flock`` while appending, so several worker processes share
one chain; each request's entries are written in one ``write`` and ``fsync``-ed before
the response is sent, so an acknowledged request is never lost. A server killed in the
middle of a write can leave a torn last line: the next writer cuts it off and records a
``recovery`` entry with the size and digest of the removed bytes.

Verify a trail (exit code 0 when intact)::

    python -m disease_pipeline.serving.audit verify data/09_serving/audit_log.jsonl
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import json
import os
import sys
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
_TAIL_CHUNK = 65536


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``entry`` without its ``hash`` field."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def keyed_digest(key: bytes, domain: str, value: Any) -> str:
    """HMAC-SHA256 of ``domain:value`` (hex; non-strings as canonical JSON): the service's
    pseudonym of a patient id or of a request input. Stable for one key, irreversible
    without it."""
    text = value if isinstance(value, str) else canonical_json(value)
    message = f"{domain}:{text}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _last_line(handle_fd: int, size: int) -> tuple[bytes, int]:
    """The last complete line of the file (without newline) and the offset just after
    it; bytes after the last newline are a torn write."""
    position, tail = size, b""
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        tail = os.pread(handle_fd, position - start, start) + tail
        position = start
        cut = tail.rfind(b"\n")
        if cut == -1:
            continue
        complete_end = position + cut + 1
        previous = tail[:cut].rfind(b"\n")
        if previous != -1 or position == 0:
            return tail[previous + 1 : cut], complete_end
    return b"", 0


class AuditLog:
    """Appends chained entries to one JSONL file, safely across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        if created:
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._known_size = -1
        self._head = (0, GENESIS_HASH)
        self.append([])  # repairs a torn tail left by a killed writer

    def close(self) -> None:
        """Release the file descriptor."""
        os.close(self._fd)

    @property
    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry this process knows of."""
        return self._head

    def _sync_head(self) -> list[dict[str, Any]]:
        """Re-read the chain head when another process appended; cut a torn tail.
        Returns the recovery entries to write first (empty when the file was clean)."""
        size = os.fstat(self._fd).st_size
        if size == self._known_size:
            return []
        line, complete_end = _last_line(self._fd, size)
        recovery = []
        if complete_end < size:
            torn = os.pread(self._fd, size - complete_end, complete_end)
            os.ftruncate(self._fd, complete_end)
            os.fsync(self._fd)
            recovery.append(
                {
                    "event": "recovery",
                    "truncated_bytes": len(torn),
                    "truncated_sha256": hashlib.sha256(torn).hexdigest(),
                }
            )
        if line:
            last = json.loads(line)
            self._head = (int(last["seq"]), str(last["hash"]))
        else:
            self._head = (0, GENESIS_HASH)
        self._known_size = complete_end
        return recovery

    def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain, write and fsync ``records`` (dicts of audit fields) as one write.

        Returns the written entries (with ``seq``, ``ts``, ``prev_hash`` and ``hash``).
        """
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                recovery = self._sync_head()
                pending = recovery + list(records)
                if not pending:
                    return []
                seq, previous = self._head
                stamp = datetime.now(UTC).isoformat(timespec="microseconds")
                written, lines = [], []
                for record in pending:
                    seq += 1
                    entry = {**record, "seq": seq, "ts": record.get("ts", stamp)}
                    entry["prev_hash"] = previous
                    entry["hash"] = previous = entry_hash(entry)
                    written.append(entry)
                    lines.append(canonical_json(entry))
                data = ("\n".join(lines) + "\n").encode("utf-8")
                os.write(self._fd, data)
                os.fsync(self._fd)
                self._head = (seq, previous)
                self._known_size = os.fstat(self._fd).st_size
                return written[len(recovery) :]
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Verification:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    entries: int
    head_hash: str
    events: dict[str, int]
    error: str | None = None
    line: int | None = None


def verify_chain(path: str | Path, expect_head: str | None = None) -> Verification:
    """Check every entry's hash, sequence number and link to its predecessor.

    ``expect_head`` (a hash noted earlier, e.g. from ``X-Audit-Head``) also detects a
    trail cut after that entry.
    """
    previous, count, events = GENESIS_HASH, 0, {}
    path = Path(path)
    if not path.exists():
        return Verification(False, 0, GENESIS_HASH, {}, f"{path} does not exist")

    def fail(message: str, number: int) -> Verification:
        return Verification(False, count, previous, events, message, number)

    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return fail("torn last line (incomplete write)", number)
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError as error:
                return fail(f"not valid JSON ({error.msg})", number)
            if entry.get("seq") != count + 1:
                return fail(f"seq {entry.get('seq')!r}, expected {count + 1}", number)
            if entry.get("prev_hash") != previous:
                return fail("prev_hash does not match the previous entry's hash", number)
            if entry.get("hash") != entry_hash(entry):
                return fail("hash does not match the entry's content (entry altered)", number)
            previous, count = entry["hash"], count + 1
            events[entry.get("event", "?")] = events.get(entry.get("event", "?"), 0) + 1
    if expect_head is not None and expect_head != previous:
        return Verification(False, count, previous, events, "head hash differs from the expected")
    return Verification(True, count, previous, events)


def main(argv: list[str] | None = None) -> int:
    """``verify PATH [--expect-head HASH]``: print the result as JSON; exit 1 if broken."""
    parser = argparse.ArgumentParser(prog="python -m disease_pipeline.serving.audit")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="verify the hash chain of an audit trail")
    check.add_argument("path", type=Path)
    check.add_argument("--expect-head", default=None, help="hash the last entry must have")
    args = parser.parse_args(argv)
    result = verify_chain(args.path, args.expect_head)
    print(json.dumps(asdict(result), indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
