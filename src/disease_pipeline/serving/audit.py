"""Append-only, hash-chained audit trail (JSON lines) and its verifier.

Each entry carries ``seq`` (1, 2, …), ``prev_hash`` (the previous entry's ``hash``; 64
zeros for the first) and ``hash`` = HMAC-SHA256, with the audit key
(``serving.audit_key_file``), of the entry's canonical JSON without ``hash`` (sorted
keys, no spaces; such entries say ``"chain": "hmac-sha256"``). Editing, inserting,
reordering or deleting an entry breaks the chain, and without the key nobody can
re-chain an edited trail. Entries of older, unkeyed trails (plain SHA-256) are accepted
only before the first keyed one. Entries hold no raw identifiers: patient ids and
inputs are keyed HMAC digests made by the service.

Writers hold an exclusive ``flock`` while appending, so several worker processes share
one chain; each request's entries are written in one ``write`` and ``fsync``-ed before
the response is sent, so an acknowledged request is never lost. Every byte is written (short
writes are continued); a write that fails (a full disk) is cut back to the last whole
entry and raises :class:`AuditWriteError`, so the request is refused rather than
answered unaudited. A server killed in the middle of a write can leave a torn last
line: the next writer cuts it off and records a ``recovery`` entry with the size and
digest of the removed bytes.

Verify a trail (exit code 0 when intact), print its head for off-host anchoring::

    python -m disease_pipeline.serving.audit verify data/09_serving/audit_log.jsonl \
        --key-file conf/local/audit_key.txt [--expect-head HASH]
    python -m disease_pipeline.serving.audit head data/09_serving/audit_log.jsonl
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
#: ``chain`` of entries hashed with HMAC-SHA256 and the audit key
KEYED_CHAIN = "hmac-sha256"
_TAIL_CHUNK = 65536


class AuditWriteError(OSError):
    """The audit trail could not be written; the file was cut back to whole entries."""


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA256 with ``key`` (SHA-256 without) of the canonical JSON of ``entry``
    without its ``hash`` field."""
    body = canonical_json({k: v for k, v in entry.items() if k != "hash"}).encode("utf-8")
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def write_fully(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is continued)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError("write returned 0 bytes")
        view = view[written:]


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

    def __init__(self, path: str | Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self._key = key
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
                    if self._key is not None:
                        entry["chain"] = KEYED_CHAIN
                    entry["prev_hash"] = previous
                    entry["hash"] = previous = entry_hash(entry, self._key)
                    written.append(entry)
                    lines.append(canonical_json(entry))
                data = ("\n".join(lines) + "\n").encode("utf-8")
                self._write(data)
                self._head = (seq, previous)
                self._known_size = os.fstat(self._fd).st_size
                return written[len(recovery) :]
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _write(self, data: bytes) -> None:
        """Write and fsync ``data``; on failure cut the file back to its last whole
        entry and raise :class:`AuditWriteError`."""
        try:
            write_fully(self._fd, data)
            os.fsync(self._fd)
        except OSError as error:
            try:
                os.ftruncate(self._fd, self._known_size)
                os.fsync(self._fd)
            except OSError:
                self._known_size = -1  # re-read (and repair) on the next append
            raise AuditWriteError(f"audit trail {self.path} not written: {error}") from error


@dataclass(frozen=True)
class Verification:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    entries: int
    head_hash: str
    events: dict[str, int]
    error: str | None = None
    line: int | None = None


def verify_chain(
    path: str | Path, expect_head: str | None = None, key: bytes | None = None
) -> Verification:
    """Check every entry's hash, sequence number and link to its predecessor.

    ``key``: the audit key, needed for keyed entries (an unkeyed entry after a keyed
    one is a forgery). ``expect_head`` (a hash noted earlier, e.g. from
    ``X-Audit-Head``) also detects a trail cut after that entry.
    """
    previous, count, events, keyed = GENESIS_HASH, 0, {}, False
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
            if entry.get("chain") == KEYED_CHAIN:
                if key is None:
                    return fail("keyed (HMAC) entry: give the audit key to verify", number)
                keyed = True
                expected = entry_hash(entry, key)
            elif keyed:
                return fail("unkeyed entry after keyed ones (chain downgraded)", number)
            else:
                expected = entry_hash(entry)
            if not hmac.compare_digest(str(entry.get("hash")), expected):
                return fail("hash does not match the entry's content (entry altered)", number)
            previous, count = entry["hash"], count + 1
            events[entry.get("event", "?")] = events.get(entry.get("event", "?"), 0) + 1
    if expect_head is not None and expect_head != previous:
        return Verification(False, count, previous, events, "head hash differs from the expected")
    return Verification(True, count, previous, events)


def main(argv: list[str] | None = None) -> int:
    """``verify PATH [--key-file F] [--expect-head HASH]``: print the result as JSON;
    exit 1 if broken. ``head PATH``: the last entry's ``seq`` and ``hash`` (to anchor
    off the host)."""
    parser = argparse.ArgumentParser(prog="python -m disease_pipeline.serving.audit")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="verify the hash chain of an audit trail")
    check.add_argument("path", type=Path)
    check.add_argument("--expect-head", default=None, help="hash the last entry must have")
    check.add_argument(
        "--key-file", type=Path, default=None, help="audit key (else $DISEASE_PIPELINE_AUDIT_KEY)"
    )
    head = commands.add_parser("head", help="print the last entry's seq and hash")
    head.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "head":
        line, _ = _last_line_of(args.path)
        last = json.loads(line) if line else {"seq": 0, "hash": GENESIS_HASH}
        print(json.dumps({"seq": last["seq"], "hash": last["hash"]}))
        return 0
    key = os.environ.get("DISEASE_PIPELINE_AUDIT_KEY")
    if args.key_file is not None:
        key = args.key_file.read_text(encoding="utf-8").strip()
    result = verify_chain(args.path, args.expect_head, key.encode() if key else None)
    print(json.dumps(asdict(result), indent=2))
    return 0 if result.ok else 1


def _last_line_of(path: Path) -> tuple[bytes, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return _last_line(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
