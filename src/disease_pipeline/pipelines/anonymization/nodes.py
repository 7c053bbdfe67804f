"""Nodes of the ``anonymization`` pipeline: layer 02 tables → warehouse tables.

HIPAA Safe Harbor direct identifiers are removed (names, street, city, ZIP finer
than 3 digits, phone, e-mail, MRN and other record numbers, exact dates, ages of 90
and over); patient and encounter ids become keyed HMAC-SHA256 pseudonyms; every date
of a patient moves by the same per-patient shift. See ``docs/privacy.md``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.core.ages import top_code_age
from disease_pipeline.core.scrub import (
    CODE_PATTERNS,
    identifier_tokens,
    scrub_text,
    scrub_tokens,
)
from disease_pipeline.pipelines.anonymization.pseudonyms import date_shift_days, pseudonymise

logger = logging.getLogger(__name__)

PATIENT_COLUMNS = ["patient_id", "source", "sex", "zip3"]
ENCOUNTER_COLUMNS = [
    "encounter_id",
    "patient_id",
    "source",
    "start",
    "encounter_class",
    "age_years",
    "age_90_plus",
]
QUARANTINE_COLUMNS = ["source", "file", "line", "entry", "record_id", "field", "value", "reason"]
#: Age stated by the source (``int_encounters``); only the top-coded ``age_years`` goes on.
REPORTED_AGE = "reported_age_years"
#: Identifier columns of ``int_patients`` used to scrub texts of unknown owner.
TOKEN_COLUMNS = ["given_name", "family_name", "mrn", "phone", "email", "postal_code"]
REDACTED = "[REDACTED]"


def _require(table: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks required column(s) {missing}")


def compute_data_version(fingerprints: dict[str, dict[str, Any]]) -> tuple[dict, pd.DataFrame]:
    """The raw snapshot's data version: SHA-256 over every raw file's content hash.

    Args:
        fingerprints: ``{relative path: {"sha256": ..., "size_bytes": ...}}`` of every
            raw input file (from ``FileFingerprintDataset``).

    Returns:
        The report for ``08_reporting/data_version.json`` and the warehouse
        ``metadata`` table (one row per file, the data version on every row).
    """
    if not fingerprints:
        raise ValueError("raw_snapshot_files is empty: no raw file to version")
    manifest = "\n".join(f"{path}\t{fingerprints[path]['sha256']}" for path in sorted(fingerprints))
    version = hashlib.sha256(manifest.encode()).hexdigest()
    files = [
        {
            "path": p,
            "sha256": fingerprints[p]["sha256"],
            "size_bytes": fingerprints[p]["size_bytes"],
        }
        for p in sorted(fingerprints)
    ]
    report = {"data_version": version, "n_files": len(files), "files": files}
    table = pd.DataFrame(files, columns=["path", "sha256", "size_bytes"])
    table.insert(0, "data_version", version)
    logger.info("Raw snapshot data version %s (%d files)", version[:12], len(files))
    return report, table


def zip3(postal_codes: pd.Series, restricted: list[str]) -> pd.Series:
    """First three digits of a US ZIP code; ``"000"`` for sparsely populated areas.

    Anything that is not a 5-digit (or ZIP+4) US code becomes missing.
    """
    extracted = postal_codes.astype("string").str.extract(r"^\s*(\d{3})\d{2}(?:-?\d{4})?\s*$")[0]
    restricted_set = {str(z).zfill(3) for z in restricted}
    masked = extracted.where(~extracted.isin(restricted_set), "000").astype("object")
    return masked.where(masked.notna(), None)


def age_in_years(birth: pd.Series, at: pd.Series, top_code: int, decimals: int) -> pd.DataFrame:
    """Age at ``at`` from ``birth`` (both exact), ages ≥ ``top_code`` grouped as ``top_code``.

    Returns:
        ``age_years`` (float, rounded) and ``age_90_plus`` (bool) columns.
    """
    birth_ts = _as_utc(birth)
    at_ts = _as_utc(at)
    days = (at_ts - birth_ts).dt.total_seconds() / 86_400
    return top_code_age(days / 365.2425, top_code, decimals)


def _as_utc(values: pd.Series) -> pd.Series:
    """Datetimes (tz-aware → UTC; naive taken as UTC); unparseable → NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    return pd.to_datetime(values, errors="coerce", utc=True, format="mixed")


def _shift(values: pd.Series, days: pd.Series) -> pd.Series:
    """``values`` moved by ``days`` (NaT where the shift is unknown)."""
    offsets = pd.to_timedelta(pd.to_numeric(days, errors="coerce"), unit="D")
    return _as_utc(values) + offsets


def anonymise_patients(
    int_patients: pd.DataFrame, key: bytes, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients without direct identifiers, plus the in-memory patient key map.

    Args:
        int_patients: Canonical patients (raw identifiers present).
        key: HMAC key.
        params: ``anonymization`` parameters (``pseudonym_hex_chars``,
            ``date_shift.{min_days,max_days}``, ``restricted_zip3``).

    Returns:
        ``prm_patients`` (``patient_id, source, sex, zip3``) and the key map
        (raw ``patient_id`` → pseudonym, shift in days, birth date) that later nodes
        use; the map is never persisted.
    """
    _require(
        int_patients, ["patient_id", "source", "sex", "postal_code", "birth_date"], "int_patients"
    )
    patients = int_patients.drop_duplicates("patient_id", keep="first")
    pseudo = pseudonymise(patients["patient_id"], key, "patient", params["pseudonym_hex_chars"])
    shift = date_shift_days(
        patients["patient_id"],
        key,
        max_days=params["date_shift"]["max_days"],
        min_days=params["date_shift"]["min_days"],
    )
    key_map = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "pseudonym": pseudo.to_numpy(),
            "shift_days": shift.to_numpy(),
            "birth_date": patients["birth_date"].to_numpy(),
        }
    )
    prm = pd.DataFrame(
        {
            "patient_id": pseudo.to_numpy(),
            "source": patients["source"].to_numpy(),
            "sex": patients["sex"].to_numpy(),
            "zip3": zip3(patients["postal_code"], params["restricted_zip3"]).to_numpy(),
        }
    )
    logger.info("Pseudonymised %d patients", len(prm))
    return prm[PATIENT_COLUMNS], key_map


def anonymise_encounters(
    int_encounters: pd.DataFrame,
    patient_key_map: pd.DataFrame,
    key: bytes,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encounters with pseudonymous ids, shifted start and top-coded age.

    The age is computed from the exact birth date and the exact start, before the
    shift. Where either is unknown, the source's ``reported_age_years`` (registry
    phenopackets state an age, not dates) is used instead; both are top-coded the
    same way and ``reported_age_years`` itself is not passed on. An encounter whose
    patient is unknown keeps a pseudonym but loses its start (it cannot be shifted).

    Returns:
        ``prm_encounters`` and the in-memory encounter key map (raw
        ``encounter_id`` → pseudonym and its patient's shift).
    """
    _require(
        int_encounters,
        ["encounter_id", "patient_id", "source", "start", "encounter_class"],
        "int_encounters",
    )
    patients = patient_key_map.set_index("patient_id")
    shift = int_encounters["patient_id"].map(patients["shift_days"])
    birth = int_encounters["patient_id"].map(patients["birth_date"])
    ages = age_in_years(
        birth, int_encounters["start"], params["age_top_code"], params["age_decimals"]
    )
    if REPORTED_AGE in int_encounters:
        reported = top_code_age(
            int_encounters[REPORTED_AGE], params["age_top_code"], params["age_decimals"]
        )
        fallback = ages["age_years"].isna() & reported["age_years"].notna()
        ages.loc[fallback] = reported.loc[fallback]
    unknown = int(shift.isna().sum())
    if unknown:
        logger.warning("%d encounter(s) reference no known patient: start left empty", unknown)
    length = params["pseudonym_hex_chars"]
    encounter_pseudo = pseudonymise(int_encounters["encounter_id"], key, "encounter", length)
    prm = pd.DataFrame(
        {
            "encounter_id": encounter_pseudo.to_numpy(),
            "patient_id": pseudonymise(
                int_encounters["patient_id"], key, "patient", length
            ).to_numpy(),
            "source": int_encounters["source"].to_numpy(),
            "start": _shift(int_encounters["start"], shift).to_numpy(),
            "encounter_class": int_encounters["encounter_class"].to_numpy(),
            "age_years": ages["age_years"].to_numpy(),
            "age_90_plus": ages["age_90_plus"].to_numpy(),
        }
    )
    prm["start"] = pd.to_datetime(prm["start"], utc=True)
    key_map = pd.DataFrame(
        {
            "encounter_id": int_encounters["encounter_id"].to_numpy(),
            "pseudonym": encounter_pseudo.to_numpy(),
            "patient_id": int_encounters["patient_id"].to_numpy(),
            "shift_days": shift.to_numpy(),
        }
    ).drop_duplicates("encounter_id")
    logger.info("Pseudonymised %d encounters", len(prm))
    return prm[ENCOUNTER_COLUMNS], key_map


def anonymise_encounter_table(
    table: pd.DataFrame,
    encounter_key_map: pd.DataFrame,
    key: bytes,
    params: dict[str, Any],
    table_params: dict[str, Any],
) -> pd.DataFrame:
    """An encounter-level table (symptoms, vitals, labs, diagnoses) de-identified.

    ``encounter_id`` becomes its pseudonym; columns listed in
    ``table_params["date_columns"]`` move by the patient's shift (NaT when the
    encounter is unknown); columns in ``table_params["drop_columns"]`` are removed.
    """
    _require(table, ["encounter_id"], "encounter table")
    result = table.drop(columns=[c for c in table_params.get("drop_columns", []) if c in table])
    shifts = table["encounter_id"].map(encounter_key_map.set_index("encounter_id")["shift_days"])
    for column in table_params.get("date_columns", []):
        if column in result:
            result[column] = _shift(result[column], shifts)
    result["encounter_id"] = pseudonymise(
        table["encounter_id"], key, "encounter", params["pseudonym_hex_chars"]
    ).to_numpy()
    unknown = int(shifts.isna().sum())
    if unknown and table_params.get("date_columns"):
        logger.warning("%d row(s) reference an unknown encounter: dates left empty", unknown)
    return result.reset_index(drop=True)


def scrub_notes(
    int_notes: pd.DataFrame,
    int_patients: pd.DataFrame,
    encounter_key_map: pd.DataFrame,
    key: bytes,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Notes with pseudonymous encounter ids and identifiers replaced by placeholders.

    Each note is scrubbed of its own patient's identifiers (name parts, MRN, phone,
    e-mail, address, city, ZIP, birth date) and of generic identifier patterns.
    """
    _require(int_notes, ["encounter_id", "text"], "int_notes")
    identities = int_patients.drop_duplicates("patient_id").set_index("patient_id").to_dict("index")
    owners = int_notes["encounter_id"].map(
        encounter_key_map.set_index("encounter_id")["patient_id"]
    )
    tokens: frozenset[str] | None = None
    texts = []
    for text, owner in tqdm(
        zip(int_notes["text"], owners, strict=True),
        total=len(int_notes),
        desc="scrub notes",
        disable=len(int_notes) < 1000,
    ):
        if owner in identities:
            texts.append(scrub_text(text, identities[owner]))
        else:  # owner unknown: every patient's identifier tokens
            tokens = tokens or identifier_tokens(int_patients, TOKEN_COLUMNS)
            texts.append(scrub_tokens(text, tokens))
    result = int_notes.copy()
    result["text"] = texts
    result["encounter_id"] = pseudonymise(
        int_notes["encounter_id"], key, "encounter", params["pseudonym_hex_chars"]
    ).to_numpy()
    logger.info("Scrubbed %d notes", len(result))
    return result.reset_index(drop=True)


def _missing(value: object) -> bool:
    """True for ``None``, NaN, NaT and ``pd.NA`` (scalars only)."""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _field_path(field: object) -> list[str]:
    """Components of a field path, lower-cased, without indices (``a.b[0]`` → ``[a, b]``)."""
    text = re.sub(r"\[\d+\]", "", str(field or "")).strip().lower()
    return [part for part in re.split(r"[./]", text) if part]


def _keeps_value(field: object, keep: set[str], identifiers: set[str]) -> bool:
    """A quarantined value is kept only for an allowed, non-identifier field path."""
    path = _field_path(field)
    return bool(path) and path[-1] in keep and not identifiers.intersection(path)


def anonymise_quarantine(
    int_quarantine: pd.DataFrame,
    int_patients: pd.DataFrame,
    key: bytes,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The quarantine table without identifiers.

    ``record_id`` becomes a keyed hash; ``value`` is kept only for fields listed in
    ``params["quarantine_keep_value_fields"]`` (codes, units, measurements) whose path
    names no field of ``params["quarantine_identifier_fields"]``, and then scrubbed;
    any other value becomes ``[REDACTED]``; ``reason`` is scrubbed of every
    known identifier and generic identifier patterns.
    """
    _require(int_quarantine, QUARANTINE_COLUMNS, "int_quarantine")
    tokens = identifier_tokens(int_patients, TOKEN_COLUMNS)
    keep = {f.lower() for f in params["quarantine_keep_value_fields"]}
    identifiers = {f.lower() for f in params["quarantine_identifier_fields"]}
    result = int_quarantine[QUARANTINE_COLUMNS].copy()
    result["record_id"] = pseudonymise(
        int_quarantine["record_id"], key, "record", params["pseudonym_hex_chars"]
    ).to_numpy()
    result["value"] = [
        None
        if _missing(value)
        else scrub_tokens(value, tokens, patterns=CODE_PATTERNS)
        if _keeps_value(field, keep, identifiers)
        else REDACTED
        for value, field in zip(int_quarantine["value"], int_quarantine["field"], strict=True)
    ]
    result["reason"] = [scrub_tokens(r, tokens) for r in int_quarantine["reason"]]
    logger.info("De-identified %d quarantined records", len(result))
    return result.reset_index(drop=True)
