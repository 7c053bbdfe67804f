"""Keyed pseudonyms, per-patient date shifts and HMAC key resolution."""

from __future__ import annotations

import logging
import stat

import pandas as pd
import pytest

from disease_pipeline.pipelines.anonymization.pseudonyms import (
    KEY_ENV_VAR,
    MissingKeyError,
    date_shift_days,
    pseudonym,
    pseudonymise,
    resolve_key,
)

KEY = b"k" * 40
OTHER_KEY = b"o" * 40


def test_pseudonym_is_keyed_deterministic_and_domain_separated():
    assert pseudonym(KEY, "patient", "pt-1") == pseudonym(KEY, "patient", "pt-1")
    assert pseudonym(KEY, "patient", "pt-1") != pseudonym(OTHER_KEY, "patient", "pt-1")
    assert pseudonym(KEY, "patient", "x") != pseudonym(KEY, "encounter", "x")
    assert len(pseudonym(KEY, "patient", "pt-1", length=20)) == 20


def test_pseudonymise_keeps_missing_and_maps_equal_values_equally():
    out = pseudonymise(pd.Series(["a", None, "a", "b"]), KEY, "patient")
    assert out[0] == out[2] != out[3]
    assert out[1] is None
    assert "a" not in set(out.dropna())


def test_pseudonymise_rejects_a_length_outside_16_to_64():
    with pytest.raises(ValueError, match="between 16 and 64"):
        pseudonymise(pd.Series(["a"]), KEY, "patient", length=8)


def test_date_shift_is_bounded_nonzero_stable_and_key_dependent():
    ids = pd.Series([f"pt-{i}" for i in range(400)])
    shifts = date_shift_days(ids, KEY, max_days=182, min_days=1)
    assert shifts.abs().between(1, 182).all()
    assert (shifts > 0).mean() == pytest.approx(0.5, abs=0.1)
    assert shifts.equals(date_shift_days(ids, KEY, max_days=182, min_days=1))
    assert not shifts.equals(date_shift_days(ids, OTHER_KEY, max_days=182, min_days=1))


def test_date_shift_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="min_days"):
        date_shift_days(pd.Series(["a"]), KEY, max_days=5, min_days=10)


def test_key_from_environment_variable_wins_over_credentials():
    creds = {"anonymization_key": {"key": "c" * 40}}
    assert resolve_key("prod", creds, {KEY_ENV_VAR: "e" * 40}) == b"e" * 40
    assert resolve_key("prod", creds, {}) == b"c" * 40


@pytest.mark.parametrize("env", ["local", "test"])
def test_local_and_test_create_a_private_random_key_once(env, caplog, tmp_path):
    """No public default key: the first run creates a random key (0600) and logs its
    path, never the key; later runs reuse it."""
    key_file = tmp_path / "conf" / "anonymization_key.txt"
    with caplog.at_level(logging.WARNING):
        key = resolve_key(env, {}, {}, key_file=key_file)
    assert len(key) == 64 and key.decode() not in caplog.text and str(key_file) in caplog.text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert resolve_key(env, {}, {}, key_file=key_file) == key
    other = resolve_key(env, {}, {}, key_file=tmp_path / "elsewhere.txt")
    assert other != key  # random, not a shared constant


@pytest.mark.parametrize("env", ["snowflake", "base", "prod"])
def test_other_environments_refuse_to_run_without_a_key(env):
    with pytest.raises(MissingKeyError, match=rf"environment '{env}'.*{KEY_ENV_VAR}"):
        resolve_key(env, {"snowflake": {"user": "x"}}, {})


def test_short_keys_are_refused_naming_their_origin():
    with pytest.raises(MissingKeyError, match="credentials 'anonymization_key.key' is too short"):
        resolve_key("test", {"anonymization_key": {"key": "short"}}, {})
