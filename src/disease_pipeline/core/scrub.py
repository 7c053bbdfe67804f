"""Free-text scrubbing: a patient's own identifiers and generic identifier patterns.

Two layers, applied in order:

1. the identifiers we *know* for the patient (name parts, MRN, phone, e-mail,
   street line, city, ZIP code, birth date) — exact, case-insensitive;
2. generic patterns for what we may not know: e-mail addresses, phone numbers,
   calendar dates, street addresses, long digit runs.

Placeholders are ``[NAME]``, ``[MRN]``, ``[PHONE]``, ``[EMAIL]``, ``[ADDRESS]``,
``[LOCATION]``, ``[ZIP]``, ``[DATE]``, ``[ID]`` and ``[AGE 90+]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

import pandas as pd

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_STREET_TYPES = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|"
    r"Way|Square|Sq|Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Trail|Trl|Alley|Loop|"
    r"Crossing|Xing|Ridge|Heights|Hills|Mews|Row|Walk|Calle|Avenida)\b\.?"
)

#: Generic patterns, in application order (e-mails before names and digits).
GENERIC_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    (
        re.compile(
            r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "[DATE]",
    ),
    (re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"), "[DATE]"),
    (re.compile(rf"\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", re.I), "[DATE]"),
    (
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}\b", re.I),
        "[DATE]",
    ),
    (
        re.compile(
            r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]?\d{4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b"
        ),
        "[PHONE]",
    ),
    (
        re.compile(
            rf"\b\d{{1,6}}\s+(?:[A-Z][\w'.-]*\s+){{1,4}}{_STREET_TYPES}"
            r"(?:\s*(?:Apt\.?|Suite|Unit|#)\s*[\w-]+)?"
        ),
        "[ADDRESS]",
    ),
    # record numbers; not codes of a coding system ("HP:0012345", "OMIM:154700")
    (re.compile(r"(?<!:)\b(?=[A-Z-]*\d)[A-Z]{0,4}-?\d{6,}\b"), "[ID]"),
    # ages of 90 and over are identifying (Safe Harbor): "97 y", "aged 93", "101-year-old"
    (
        re.compile(
            r"\b(?:9\d|1[0-4]\d)(?=[\s-]*(?:y\b|yo\b|y/o|yrs?\b|years?\b|-year))"
            r"|(?<=\bage\s)(?:9\d|1[0-4]\d)\b|(?<=\baged\s)(?:9\d|1[0-4]\d)\b",
            re.IGNORECASE,
        ),
        "[AGE 90+]",
    ),
)

#: Minimum length of a name part scrubbed on its own (shorter parts are initials).
MIN_NAME_PART = 2


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _flexible_digits(digits: str) -> str:
    """A regex matching the digit sequence with any separators between digits."""
    return r"[\s().+-]*".join(re.escape(d) for d in digits)


def _date_variants(value: object) -> list[str]:
    """Common spellings of a birth date (ISO, US, European, long form)."""
    stamp = value if isinstance(value, datetime) else pd.to_datetime(value, errors="coerce")
    if stamp is None or pd.isna(stamp):
        return []
    return [
        stamp.strftime("%Y-%m-%d"),
        stamp.strftime("%m/%d/%Y"),
        stamp.strftime("%d/%m/%Y"),
        f"{stamp.month}/{stamp.day}/{stamp.year}",
        f"{stamp.day}/{stamp.month}/{stamp.year}",
        stamp.strftime("%B %d, %Y"),
        f"{stamp.strftime('%B')} {stamp.day}, {stamp.year}",
        f"{stamp.day} {stamp.strftime('%B')} {stamp.year}",
    ]


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def known_identifier_patterns(
    identity: Mapping[str, object], text: str | None = None
) -> list[tuple[re.Pattern, str]]:
    """Regexes for one patient's identifiers, longest first within each kind.

    Args:
        identity: One ``int_patients`` row (``given_name``, ``family_name``, ``mrn``,
            ``phone``, ``email``, ``address_line``, ``city``, ``postal_code``,
            ``birth_date``); missing keys and values are skipped.
        text: When given, only identifiers that literally occur in it (ignoring case,
            or as digits for phones) get a pattern: compiling is the expensive part.
    """
    # (literal that must occur, occurs in: "text" or "digits", regex, placeholder)
    candidates: list[tuple[str, str, str, str]] = []
    email = _text(identity.get("email"))
    if email:
        candidates.append((email, "text", re.escape(email), "[EMAIL]"))
    for variant in _date_variants(identity.get("birth_date")):
        candidates.append((variant, "text", re.escape(variant), "[DATE]"))
    mrn = _text(identity.get("mrn"))
    if mrn:
        candidates.append((mrn, "text", re.escape(mrn), "[MRN]"))
        if len(_digits(mrn)) >= 4:
            core = _digits(mrn)
            candidates.append((core, "text", rf"(?<!\d){core}(?!\d)", "[MRN]"))
    phone_digits = _digits(_text(identity.get("phone")))
    if len(phone_digits) >= 7:
        # the subscriber number with or without country / area code, any separators
        for tail in (phone_digits[-10:], phone_digits[-7:]):
            regex = rf"(?<!\d)\(?{_flexible_digits(tail)}(?!\d)"
            candidates.append((tail, "digits", regex, "[PHONE]"))
    address = _text(identity.get("address_line"))
    if address:
        candidates.append((address, "text", re.escape(address), "[ADDRESS]"))
    postal = _text(identity.get("postal_code"))
    if postal:
        candidates.append((postal, "text", rf"(?<!\d){re.escape(postal)}(?!\d)", "[ZIP]"))
        if len(_digits(postal)) >= 5:
            zip5 = _digits(postal)[:5]
            candidates.append((zip5, "text", rf"(?<!\d){zip5}(?!\d)", "[ZIP]"))
    city = _text(identity.get("city"))
    if city:
        candidates.append((city, "text", rf"\b{re.escape(city)}\b", "[LOCATION]"))
    given, family = _text(identity.get("given_name")), _text(identity.get("family_name"))
    full_names = [f"{given} {family}".strip(), f"{family}, {given}".strip(", ")]
    parts = re.split(r"[\s,]+", full_names[0])
    parts += [piece for part in parts for piece in re.split(r"[-']", part)]
    for name in sorted({n for n in full_names + parts if len(n) >= MIN_NAME_PART}, key=len)[::-1]:
        candidates.append((name, "text", rf"(?<!\w){re.escape(name)}(?!\w)", "[NAME]"))

    if text is not None:
        folded, digits = text.casefold(), _digits(text)
        candidates = [
            c for c in candidates if c[0].casefold() in (folded if c[1] == "text" else digits)
        ]
    return [(re.compile(regex, re.IGNORECASE), label) for _, _, regex, label in candidates]


def apply_patterns(text: str, patterns: Iterable[tuple[re.Pattern, str]]) -> str:
    """Replace every match of every pattern, in order."""
    for pattern, label in patterns:
        text = pattern.sub(label, text)
    return text


def scrub_text(text: object, identity: Mapping[str, object] | None = None) -> str | None:
    """One free text with the patient's identifiers, then generic patterns, replaced.

    Args:
        text: The note; ``None``/NaN stays ``None``.
        identity: The patient's ``int_patients`` row, when known.
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return None
    result = str(text)
    if identity:
        result = apply_patterns(result, known_identifier_patterns(identity, result))
    return apply_patterns(result, GENERIC_PATTERNS)


def identifier_tokens(patients: pd.DataFrame, columns: Iterable[str]) -> frozenset[str]:
    """Lower-cased tokens of every patient's identifiers (for texts of unknown owner).

    Names are split into parts; phones, MRNs and ZIP codes also contribute their
    digit strings, so ``"(555) 010-2222"`` also catches ``5550102222``.
    """
    tokens: set[str] = set()
    for column in columns:
        if column not in patients:
            continue
        for value in patients[column].dropna().astype(str):
            for piece in re.split(r"[^\w@.+-]+", value):
                token = piece.strip(".-+").lower()
                if len(token) >= MIN_NAME_PART:
                    tokens.add(token)
            if len(_digits(value)) >= 4:
                tokens.add(_digits(value))
    return frozenset(tokens)


_TOKEN = re.compile(r"[\w@.+-]+")


#: Generic patterns for coded values: a bare long number there is a code (SNOMED CT).
CODE_PATTERNS = tuple((p, label) for p, label in GENERIC_PATTERNS if label != "[ID]")


def scrub_tokens(
    text: object,
    tokens: frozenset[str],
    label: str = "[REDACTED]",
    patterns: Iterable[tuple[re.Pattern, str]] = GENERIC_PATTERNS,
) -> str | None:
    """``patterns``, then any token found in ``tokens`` (case-insensitive), replaced."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return None
    result = apply_patterns(str(text), patterns)

    def _replace(match: re.Match) -> str:
        word = match.group(0)
        core = word.strip(".-+").lower()
        return label if core in tokens or _digits(word) in tokens else word

    return _TOKEN.sub(_replace, result)
