"""The hash-chained audit trail: appends, tamper detection, torn tails, several writers."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

from disease_pipeline.serving.audit import (
    GENESIS_HASH,
    AuditLog,
    entry_hash,
    keyed_digest,
    verify_chain,
)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path, entries: list[dict]) -> None:
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def test_appends_form_a_verifiable_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    first = log.append([{"event": "prediction", "request_id": "a"}])
    log.append([{"event": "prediction", "request_id": "b"}, {"event": "feedback"}])
    entries = _lines(path)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert entries[1]["prev_hash"] == entries[0]["hash"] == first[0]["hash"]
    assert all(e["hash"] == entry_hash(e) for e in entries)
    result = verify_chain(path)
    assert result.ok and result.entries == 3
    assert result.events == {"prediction": 2, "feedback": 1}
    assert log.head == (3, entries[-1]["hash"])


def test_a_reopened_log_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append([{"event": "prediction"}])
    AuditLog(path).append([{"event": "prediction"}])
    assert verify_chain(path).entries == 2
    assert _lines(path)[1]["seq"] == 2


def test_edited_deleted_and_reordered_entries_are_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for code in ("J18.9", "I10", "J06.9"):
        log.append([{"event": "prediction", "output": {"top": [[code, 0.5]]}}])
    original = _lines(path)

    edited = [dict(e) for e in original]
    edited[1]["output"] = {"top": [["E11.9", 0.5]]}
    _write(path, edited)
    result = verify_chain(path)
    assert not result.ok and result.line == 2 and "altered" in result.error

    _write(path, [original[0], original[2]])
    result = verify_chain(path)
    assert not result.ok and result.line == 2

    _write(path, [original[1], original[0], original[2]])
    assert not verify_chain(path).ok

    _write(path, original[:2])  # a cut tail is only visible against a noted head
    assert verify_chain(path).ok
    assert not verify_chain(path, expect_head=original[2]["hash"]).ok


def test_a_torn_last_line_is_cut_and_recorded(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append([{"event": "prediction"}, {"event": "prediction"}])
    with path.open("ab") as handle:
        handle.write(b'{"event": "predic')  # a writer killed mid-write
    assert not verify_chain(path).ok
    log = AuditLog(path)  # opening repairs the tail
    written = log.append([{"event": "prediction"}])
    entries = _lines(path)
    assert [e["event"] for e in entries] == ["prediction", "prediction", "recovery", "prediction"]
    assert entries[2]["truncated_bytes"] == len(b'{"event": "predic')
    assert written[0]["seq"] == 4
    assert verify_chain(path).ok


def _append_many(path: str, worker: int, count: int) -> None:
    log = AuditLog(path)
    for index in range(count):
        log.append([{"event": "prediction", "request_id": f"{worker}-{index}"}])


def test_several_processes_share_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 40)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    result = verify_chain(path)
    assert result.ok, result.error
    assert result.entries == 120
    assert len({e["request_id"] for e in _lines(path)}) == 120


def test_keyed_digest_depends_on_key_domain_and_value():
    key, other = b"k" * 32, b"x" * 32
    digest = keyed_digest(key, "patient", "p-1")
    assert digest == keyed_digest(key, "patient", "p-1")
    assert len(digest) == 64 and "p-1" not in digest
    assert digest != keyed_digest(other, "patient", "p-1")
    assert digest != keyed_digest(key, "input", "p-1")
    assert digest != keyed_digest(key, "patient", "p-2")


def test_verify_command_exit_codes(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append([{"event": "prediction"}])
    command = [sys.executable, "-m", "disease_pipeline.serving.audit", "verify", str(path)]
    ok = subprocess.run(command, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and json.loads(ok.stdout)["entries"] == 1
    path.write_text(path.read_text().replace("prediction", "feedback"))
    broken = subprocess.run(command, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    assert "altered" in json.loads(broken.stdout)["error"]
