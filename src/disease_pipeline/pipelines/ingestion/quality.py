"""Conservation check, scoring against the simulator's ground truth, data-quality report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.fhir.vocabulary import REASONS
from disease_pipeline.pipelines.ingestion.ledger import STATUSES, ParsedSource

KEY = ["source", "file", "line", "entry"]
GROUND_TRUTH_COLUMNS = ["source", "line", "entry", "kind"]
EXPECTED_STATUS = {"error": "quarantined", "duplicate": "duplicate"}


def conservation(sources: Sequence[ParsedSource], quarantine: pd.DataFrame) -> dict[str, Any]:
    """Per-source record counts; raises when records were lost or counted twice.

    For every source: records read = accepted + quarantined + duplicate, each record
    has one ledger entry, and the records marked quarantined are exactly those with
    rows in the quarantine table.

    Raises:
        ValueError: listing every violated rule, by source.
    """
    problems: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for parsed in sources:
        ledger = parsed.ledger
        by_status = ledger["status"].value_counts()
        row = {"read": int(parsed.read), **{s: int(by_status.get(s, 0)) for s in STATUSES}}
        counts[parsed.source] = row
        name = parsed.source
        unknown = set(by_status.index) - set(STATUSES)
        if unknown:
            problems.append(f"{name}: unknown ledger status(es) {sorted(unknown)}")
        if sum(row[s] for s in STATUSES) != row["read"]:
            problems.append(
                f"{name}: {row['read']} records read but {row['accepted']} accepted + "
                f"{row['quarantined']} quarantined + {row['duplicate']} duplicates"
            )
        repeated = int(ledger.duplicated(KEY).sum())
        if repeated:
            problems.append(f"{name}: {repeated} record(s) have more than one ledger entry")
        marked = set(map(tuple, ledger.loc[ledger["status"] == "quarantined", KEY].to_numpy()))
        rows = quarantine[quarantine["source"] == name]
        held = set(map(tuple, rows[KEY].to_numpy()))
        if marked != held:
            problems.append(
                f"{name}: {len(marked - held)} quarantined record(s) without a quarantine row, "
                f"{len(held - marked)} quarantine row key(s) without a quarantined record"
            )
    if problems:
        raise ValueError("ingestion conservation violated: " + "; ".join(problems))
    total = {k: sum(c[k] for c in counts.values()) for k in ("read", *STATUSES)}
    return {"holds": True, "sources": counts, "total": total}


def _ground_truth(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in GROUND_TRUTH_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"ground truth (injected.csv): missing column(s) {', '.join(missing)}")
    truth = frame.copy()
    for column in ("line", "entry"):
        values = pd.to_numeric(truth[column], errors="coerce")
        if values.isna().any():
            raise ValueError(f"ground truth (injected.csv): column {column!r} must be integers")
        truth[column] = values.astype("int64")
    bad_kinds = sorted(set(truth["kind"]) - set(EXPECTED_STATUS))
    if bad_kinds:
        raise ValueError(f"ground truth (injected.csv): unknown kind(s) {bad_kinds}")
    if "field" not in truth:
        truth["field"] = None
    return truth


def _isin(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows of ``left`` whose ``columns`` values occur together in a row of ``right``."""
    if left.empty or right.empty:
        return np.zeros(len(left), dtype=bool)
    keys = pd.MultiIndex.from_frame(right[columns])
    return pd.MultiIndex.from_frame(left[columns]).isin(keys)


def score(
    ledger: pd.DataFrame, ground_truth: pd.DataFrame | None, params: dict[str, Any]
) -> dict[str, Any]:
    """Recall of injected errors and duplicates and share of clean records quarantined.

    A ground-truth row (``source, line, entry``) is found when the ledger gives that
    record the expected status (``error`` → quarantined, ``duplicate`` → duplicate);
    ``entry`` -1 means any record of the line, and a whole line quarantined covers its
    entries. Returns ``{"available": False}`` when there is no ground truth (a real
    export). ``params``: ``scored_sources``, ``min_recall``, ``max_false_quarantine``.
    """
    if ground_truth is None:
        return {"available": False, "note": "no ground-truth file: a real export is not scored"}
    truth = _ground_truth(ground_truth)
    truth["status"] = truth["kind"].map(EXPECTED_STATUS)
    scored = ledger[ledger["source"].isin(params["scored_sources"])]
    whole_lines = scored[scored["entry"] == -1]
    exact = _isin(truth, scored, ["source", "line", "entry", "status"])
    in_line = _isin(truth, scored, ["source", "line", "status"])
    line_failed = _isin(truth, whole_lines, ["source", "line", "status"])
    truth["found"] = np.where(truth["entry"] == -1, in_line, exact | line_failed)
    covered = (
        _isin(scored, truth, ["source", "line", "entry"])
        | _isin(scored, truth[truth["entry"] == -1], ["source", "line"])
        | ((scored["entry"] == -1).to_numpy() & _isin(scored, truth, ["source", "line"]))
    )
    clean = scored[~covered]
    result: dict[str, Any] = {"available": True, "scored_sources": list(params["scored_sources"])}
    for kind in ("error", "duplicate"):
        rows = truth[truth["kind"] == kind]
        result[f"{kind}s_injected"] = len(rows)
        result[f"{kind}s_found"] = int(rows["found"].sum())
        result[f"{kind}_recall"] = float(rows["found"].mean()) if len(rows) else None
    wrongly = int((clean["status"] == "quarantined").sum())
    result["clean_records"] = len(clean)
    result["clean_quarantined"] = wrongly
    result["false_quarantine_share"] = wrongly / len(clean) if len(clean) else 0.0
    result["clean_marked_duplicate"] = int((clean["status"] == "duplicate").sum())
    recalls = [result["error_recall"], result["duplicate_recall"]]
    result["meets_targets"] = bool(
        all(r is None or r >= params["min_recall"] for r in recalls)
        and result["false_quarantine_share"] <= params["max_false_quarantine"]
    )
    missed = truth[~truth["found"]]
    by_field = truth.groupby(["kind", truth["field"].fillna("")])["found"].agg(["size", "sum"])
    result["by_field"] = [
        {"kind": k, "field": f, "injected": int(n), "found": int(hit)}
        for (k, f), (n, hit) in by_field.iterrows()
    ]
    # positions only: descriptions and record ids may carry identifiers (layer 08)
    keep = ["source", "line", "entry", "kind", "field"]
    result["missed_examples"] = missed[keep].head(20).to_dict("records")
    wrong = clean[clean["status"] == "quarantined"][["source", "line", "entry"]]
    result["false_quarantine_examples"] = wrong.head(20).to_dict("records")
    return result


def reference_checks(tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Rows whose encounter (or patient) is not in this export — kept, but counted.

    LIS and form rows of an encounter whose bundle is absent or quarantined stay in
    the canonical tables (a later export may bring the encounter).
    """
    encounters = set(tables["int_encounters"]["encounter_id"])
    patients = set(tables["int_patients"]["patient_id"])
    counts = {
        name.removeprefix("int_"): int((~tables[name]["encounter_id"].isin(encounters)).sum())
        for name in ("int_symptoms", "int_vitals", "int_labs", "int_diagnoses", "int_notes")
    }
    with_patient = tables["int_encounters"]["patient_id"].dropna()
    counts["encounters_without_patient"] = int((~with_patient.isin(patients)).sum())
    return counts


def quality_report(
    accounting: dict[str, Any],
    quarantine: pd.DataFrame,
    scoring: dict[str, Any],
    references: dict[str, int],
    table_sizes: dict[str, int],
) -> dict[str, Any]:
    """The data-quality report as a JSON-ready dict."""
    by_reason = (
        quarantine.groupby(["source", "reason"]).size().rename("rows").reset_index()
        if len(quarantine)
        else pd.DataFrame(columns=["source", "reason", "rows"])
    )
    unreadable = quarantine.loc[quarantine["reason"] == "unreadable_file", ["source", "file"]]
    header_problems = quarantine.loc[quarantine["reason"] == "missing_column"]
    return {
        "conservation": accounting,
        "quarantine_rows_by_source_and_reason": [
            {"source": s, "reason": r, "rows": int(n)} for s, r, n in by_reason.to_numpy()
        ],
        "unreadable_files": unreadable.drop_duplicates().to_dict("records"),
        "missing_columns": sorted(
            {f"{s}: {f}" for s, f in header_problems[["source", "field"]].to_numpy()}
        ),
        "rows_referencing_absent_encounters": references,
        "table_rows": table_sizes,
        "scoring": scoring,
        "reasons": REASONS,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def report_markdown(report: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`quality_report`."""
    lines = ["# Ingestion data-quality report", "", "## Records per source", ""]
    lines += ["| source | read | accepted | quarantined | duplicate |", "|---|---:|---:|---:|---:|"]
    conservation = report["conservation"]
    for source, c in [*conservation["sources"].items(), ("**total**", conservation["total"])]:
        lines.append(
            f"| {source} | {c['read']} | {c['accepted']} | {c['quarantined']} | {c['duplicate']} |"
        )
    lines += ["", "Conservation (read = accepted + quarantined + duplicate): holds.", ""]
    lines += [
        "A quarantined record keeps its usable fields; the bad field is dropped or set to null.",
        "",
        "## Quarantine rows by reason",
        "",
        "| source | reason | rows |",
        "|---|---|---:|",
    ]
    lines += [
        f"| {r['source']} | {r['reason']} | {r['rows']} |"
        for r in report["quarantine_rows_by_source_and_reason"]
    ] or ["| – | – | 0 |"]
    if report["unreadable_files"]:
        lines += ["", "**Unreadable files:** "]
        lines += [f"- {u['source']}: `{u['file']}`" for u in report["unreadable_files"]]
    if report["missing_columns"]:
        lines += ["", "**Missing columns:** " + "; ".join(report["missing_columns"])]
    lines += ["", "## Rows referencing an encounter absent from this export", ""]
    lines += [f"- {name}: {n}" for name, n in report["rows_referencing_absent_encounters"].items()]
    lines += ["", "## Canonical tables", ""]
    lines += [f"- `{name}`: {n} rows" for name, n in report["table_rows"].items()]
    lines += ["", "## Scoring against the simulator's ground truth", ""]
    s = report["scoring"]
    if not s.get("available"):
        lines.append(s.get("note", "not available"))
    else:
        verdict = "meets" if s["meets_targets"] else "**misses**"
        lines += [
            f"- injected errors found: {s['errors_found']} / {s['errors_injected']} "
            f"(recall {_pct(s['error_recall'])})",
            f"- injected duplicates found: {s['duplicates_found']} / {s['duplicates_injected']} "
            f"(recall {_pct(s['duplicate_recall'])})",
            f"- clean records wrongly quarantined: {s['clean_quarantined']} / "
            f"{s['clean_records']} ({_pct(s['false_quarantine_share'])})",
            f"- clean records wrongly marked duplicate: {s['clean_marked_duplicate']}",
            f"- the run {verdict} the targets",
        ]
    lines += ["", "## Reasons", ""]
    lines += [f"- `{name}`: {text}" for name, text in report["reasons"].items()]
    return "\n".join(lines) + "\n"
