"""Severity levels, mildest first: the labels of the warehouse, the severity model's
classes and the service's ``severity.level``."""

from __future__ import annotations

#: every severity level, in order
SEVERITY_LEVELS: tuple[str, ...] = ("low", "moderate", "high", "critical")
#: the levels counted as severe (evaluation's severe-miss figures)
SEVERE_LEVELS: tuple[str, ...] = ("high", "critical")
