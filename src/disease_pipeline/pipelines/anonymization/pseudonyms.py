"""Keyed pseudonyms and per-patient date shifts (HMAC-SHA256).

A pseudonym is ``HMAC-SHA256(key, "<domain>:<value>")`` in hex: stable for one key,
unlinkable to the source id without the key, and different per domain (patient,
encounter, record) so the same raw string never yields the same pseudonym twice.
The date shift of a patient is derived from the same key, so every date of that
patient moves by the same number of days and intervals stay exact.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

#: Environment variable that may hold the HMAC key (takes precedence over credentials).
KEY_ENV_VAR = "DISEASE_PIPELINE_HMAC_KEY"
#: Credentials entry (``conf/<env>/credentials.yml``) that may hold the key.
CREDENTIALS_ENTRY = "anonymization_key"
#: Environments in which a missing key is created: a random key in a file of this
#: machine (mode 0600), made on the first run and reused after. There is no public key.
DEV_ENVIRONMENTS = frozenset({"local", "test"})
#: Where that key lives (git-ignored), relative to the project root.
LOCAL_KEY_FILE = Path("conf/local/anonymization_key.txt")
#: Shortest accepted key, in characters.
MIN_KEY_LENGTH = 32


class MissingKeyError(RuntimeError):
    """No usable HMAC key for the run environment."""


def resolve_key(
    env: str,
    credentials: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
    key_file: Path | None = None,
) -> bytes:
    """The HMAC key for a run in ``env``.

    Order: the ``DISEASE_PIPELINE_HMAC_KEY`` environment variable, then
    ``anonymization_key.key`` in the credentials, then — only in the ``local`` and
    ``test`` environments — the random key of ``key_file`` (default
    :data:`LOCAL_KEY_FILE`; created 0600 on the first run; its path is logged, never the
    key).

    Args:
        env: Kedro run environment (``local``, ``test``, ``snowflake``, …).
        credentials: The loaded credentials configuration (may be empty).
        environ: Environment variables (defaults to ``os.environ``).

    Returns:
        The key as UTF-8 bytes.

    Raises:
        MissingKeyError: No key outside a development environment, or a key shorter
            than ``MIN_KEY_LENGTH`` characters.
    """
    environ = os.environ if environ is None else environ
    entry = (credentials or {}).get(CREDENTIALS_ENTRY) or {}
    if not isinstance(entry, Mapping):
        raise MissingKeyError(
            f"credentials entry '{CREDENTIALS_ENTRY}' must be a mapping with a 'key' field"
        )
    candidates = (
        (f"environment variable {KEY_ENV_VAR}", environ.get(KEY_ENV_VAR)),
        (f"credentials '{CREDENTIALS_ENTRY}.key'", entry.get("key")),
    )
    for origin, value in candidates:
        if value:
            key = str(value)
            if len(key) < MIN_KEY_LENGTH:
                raise MissingKeyError(
                    f"HMAC key from {origin} is too short: need at least "
                    f"{MIN_KEY_LENGTH} characters (e.g. `openssl rand -hex 32`)"
                )
            return key.encode("utf-8")
    if env in DEV_ENVIRONMENTS:
        key_file = LOCAL_KEY_FILE if key_file is None else key_file
        if _create_key_file(key_file):
            logger.warning(
                "No HMAC key configured (environment '%s'): created a random key in %s "
                "(mode 0600). Keep it to keep pseudonyms stable; set %s or %s.key to "
                "use your own.",
                env,
                key_file,
                KEY_ENV_VAR,
                CREDENTIALS_ENTRY,
            )
        return key_file.read_text(encoding="utf-8").strip().encode("utf-8")
    raise MissingKeyError(
        f"No HMAC key for environment '{env}': set the environment variable {KEY_ENV_VAR} "
        f"or add `{CREDENTIALS_ENTRY}: {{key: ...}}` to conf/{env}/credentials.yml "
        f"(at least {MIN_KEY_LENGTH} characters). A local key file is only created in "
        f"{sorted(DEV_ENVIRONMENTS)}."
    )


def _create_key_file(path: Path) -> bool:
    """Create ``path`` with a random 64-hex-character key, mode 0600 from the start and
    complete when it appears (linked from a private temporary file); False when it
    exists already (another run made it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)


def pseudonym(key: bytes, domain: str, value: str, length: int = 32) -> str:
    """``HMAC-SHA256(key, domain:value)`` as ``length`` hex characters."""
    digest = hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:length]


def pseudonymise(values: pd.Series, key: bytes, domain: str, length: int = 32) -> pd.Series:
    """Pseudonyms of a column; missing values stay missing.

    Each distinct value is hashed once, so long columns of repeated ids are cheap.
    """
    if not 16 <= length <= 64:
        raise ValueError(f"pseudonym length must be between 16 and 64 hex characters: {length}")
    present = values.dropna().astype(str)
    mapping = {v: pseudonym(key, domain, v, length) for v in present.unique()}
    return values.astype("object").map(lambda v: mapping.get(str(v)) if pd.notna(v) else None)


def date_shift_days(
    patient_ids: pd.Series, key: bytes, max_days: int, min_days: int = 1
) -> pd.Series:
    """A per-patient shift in whole days, ``±[min_days, max_days]``, from the key.

    The same patient always gets the same shift under the same key; the shift is
    never smaller than ``min_days`` in absolute value, so no date stays exact.
    """
    if not 0 <= min_days <= max_days:
        raise ValueError(
            f"date shift needs 0 <= min_days <= max_days, got min_days={min_days}, "
            f"max_days={max_days}"
        )
    span = max_days - min_days + 1

    def _shift(patient_id: str) -> int:
        digest = hmac.new(key, f"date-shift:{patient_id}".encode(), hashlib.sha256).digest()
        magnitude = min_days + int.from_bytes(digest[:8], "big") % span
        return magnitude if digest[8] & 1 else -magnitude

    mapping = {v: _shift(v) for v in patient_ids.dropna().astype(str).unique()}
    return patient_ids.astype("object").map(lambda v: mapping.get(str(v)) if pd.notna(v) else None)
