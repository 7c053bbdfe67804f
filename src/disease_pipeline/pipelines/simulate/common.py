"""Small helpers shared by the simulator's modules: random streams, ids, timestamps."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

#: Severity labels in increasing order of the hidden acuity.

#: SNOMED CT codes of ``Condition.severity`` (see docs/data_contracts.md).
SEVERITY_SNOMED = {
    "low": ("255604002", "Mild"),
    "moderate": ("6736007", "Moderate"),
    "high": ("24484000", "Severe"),
    "critical": ("442452003", "Life threatening severity"),
}

SECONDS_PER_DAY = 86_400
DAYS_PER_YEAR = 365.25


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible random generator for one part of the simulation.

    Each part draws from its own stream so that changing one part (say, the notes)
    does not reshuffle the numbers of another (say, the lab values).
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def world_seed(cfg: dict[str, Any]) -> int:
    """Seed of the draws that make the simulated world rather than its visits (which
    rare diseases the hospital sees, how often each finding occurs in its population):
    ``world_seed``, or ``seed`` when null. A later period of the same hospital keeps the
    world and draws new visits with another ``seed``."""
    return int(cfg["seed"] if cfg["world_seed"] is None else cfg["world_seed"])


def uuid_strings(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` random RFC 4122 version-4 UUID strings drawn from ``rng``."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = text[i : i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def iso_datetimes(epoch_seconds: np.ndarray, timezone: str) -> np.ndarray:
    """ISO 8601 local date-times with UTC offset (``2023-01-05T09:12:00+01:00``).

    Args:
        epoch_seconds: integer seconds since 1970-01-01 UTC.
        timezone: IANA time-zone name used for the local time and its offset.
    """
    secs = np.asarray(epoch_seconds, dtype="int64")
    utc = pd.DatetimeIndex(secs.astype("datetime64[s]"), tz="UTC")
    local = utc.tz_convert(timezone).tz_localize(None).values.astype("datetime64[s]")
    offset_min = (local.astype("int64") - secs) // 60
    local_text = np.datetime_as_string(local, unit="s")
    sign = np.where(offset_min < 0, "-", "+")
    hours = np.char.zfill((np.abs(offset_min) // 60).astype(str), 2)
    minutes = np.char.zfill((np.abs(offset_min) % 60).astype(str), 2)
    return np.char.add(np.char.add(np.char.add(local_text, sign), hours), np.char.add(":", minutes))


def iso_dates(epoch_days: np.ndarray) -> np.ndarray:
    """ISO dates (``1980-02-03``) from integer days since 1970-01-01."""
    return np.datetime_as_string(np.asarray(epoch_days, dtype="int64").astype("datetime64[D]"))


def to_epoch_seconds(date_text: str) -> int:
    """Seconds since 1970-01-01 UTC of an ISO date (midnight UTC)."""
    return int(np.datetime64(date_text, "s").astype("int64"))


def decimals_for(sd: np.ndarray) -> np.ndarray:
    """Reported decimals for a value whose spread is ``sd`` (0 for heart rate, 1 for K+)."""
    with np.errstate(divide="ignore"):
        digits = -np.floor(np.log10(np.maximum(np.asarray(sd, dtype=float), 1e-9) / 2.0))
    return np.clip(digits, 0, 4).astype(int)


def format_numbers(values: np.ndarray, decimals: np.ndarray) -> list[str]:
    """Values printed with a per-value number of decimals (``5.6``, ``140``)."""
    return [f"{v:.{d}f}" for v, d in zip(values.tolist(), decimals.tolist(), strict=True)]


def group_offsets(keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offsets of each group in an array sorted by integer group ``keys``."""
    return np.searchsorted(keys, np.arange(n_groups + 1), side="left")
