"""The service's configuration: ``conf/base/serving.yml`` (or ``$DISEASE_PIPELINE_SERVING_CONFIG``).

Kedro does not read this file: the BentoML process loads it once at start-up. Relative
paths are resolved against the working directory of ``bentoml serve``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.serving.challenger import ChallengerSettings

#: Environment variable naming the configuration file.
CONFIG_ENV_VAR = "DISEASE_PIPELINE_SERVING_CONFIG"
#: Default configuration file, relative to the working directory.
DEFAULT_CONFIG = Path("conf/base/serving.yml")
#: Shortest accepted service key, in characters.
MIN_KEY_LENGTH = 32
#: Every permission a role may hold.
PERMISSIONS = frozenset(
    {
        "predict",
        "predict_batch",
        "feedback",
        "hpo_search",
        "model_info",
        "audit_export",
        "alerts",
        "review",
    }
)


class ServingConfigError(ValueError):
    """The serving configuration is missing a field or has a bad value."""


@dataclass(frozen=True)
class ServingConfig:
    """Validated settings of the clinician service."""

    model_tag: str
    top_k: int
    max_top_k: int
    max_batch_size: int
    audit_log: Path
    feedback_warehouse: Path
    feedback_table: str
    key_env: str
    key_file: Path
    tokens_file: Path | None
    tokens: tuple[dict[str, str], ...]
    roles: dict[str, frozenset[str]]
    hpo_search_limit: int
    threads: int = 1
    workers: int = 1
    #: adaptive batching of concurrent /predict calls: most patients per model call and
    #: how long an idle dispatch may wait for more (0: never)
    batch_max_size: int = 64
    batch_max_wait_ms: float = 0.0
    #: limits: request body bytes (413), requests in flight per service (429), and each
    #: token's budget (a bucket of ``rate_burst`` refilled at ``rate_per_second``; 429)
    max_body_bytes: int = 16_000_000
    max_concurrency: int = 256
    rate_per_second: float = 300.0
    rate_burst: int = 600
    #: validity of new tokens in days (None: no expiry) and the file of the first token
    token_days: float | None = None
    first_token_file: Path = Path("conf/local/serving_first_token.txt")
    #: key of the audit trail's HMAC chain (environment variable, else file created 0600)
    audit_key_env: str = "DISEASE_PIPELINE_AUDIT_KEY"
    audit_key_file: Path = Path("conf/local/audit_key.txt")
    #: feedback free text: ``drop`` (not stored) or ``scrub`` (stored after the
    #: project's identifier patterns)
    feedback_notes: str = "drop"
    #: BentoML's ``ssl`` settings (certfile, keyfile, ...); None: plain HTTP
    ssl: dict[str, Any] | None = None
    #: ``serving.prediction_log`` (see ``serving.prediction_log``) and the monitoring
    #: summary whose figures ``/metrics`` exports as gauges (None: none)
    prediction_log: dict[str, Any] | None = None
    monitoring_summary: Path | None = None
    #: ``serving.challenger``: champion/challenger mode (off, shadow, ab)
    challenger: ChallengerSettings = field(default_factory=ChallengerSettings)
    source: Path | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: Path | None = None) -> ServingConfig:
        """Validate the ``serving:`` mapping; errors name the offending key."""
        if not isinstance(raw, dict):
            raise ServingConfigError(f"{source}: expected a mapping under 'serving:'")

        def need(key: str) -> Any:
            if key not in raw or raw[key] is None:
                raise ServingConfigError(f"{source}: serving.{key} is required")
            return raw[key]

        def positive(key: str) -> int:
            value = need(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ServingConfigError(f"{source}: serving.{key} must be a positive integer")
            return value

        roles_raw = need("roles")
        if not isinstance(roles_raw, dict) or not roles_raw:
            raise ServingConfigError(f"{source}: serving.roles must map role names to lists")
        roles: dict[str, frozenset[str]] = {}
        for role, permissions in roles_raw.items():
            unknown = set(permissions or []) - PERMISSIONS
            if unknown:
                raise ServingConfigError(
                    f"{source}: serving.roles.{role}: unknown permissions {sorted(unknown)} "
                    f"(known: {sorted(PERMISSIONS)})"
                )
            roles[str(role)] = frozenset(permissions or [])
        top_k, max_top_k = positive("top_k"), positive("max_top_k")
        if top_k > max_top_k:
            raise ServingConfigError(f"{source}: serving.top_k ({top_k}) exceeds max_top_k")
        tokens_file = raw.get("tokens_file")
        return cls(
            model_tag=str(need("model_tag")),
            top_k=top_k,
            max_top_k=max_top_k,
            max_batch_size=positive("max_batch_size"),
            audit_log=Path(need("audit_log")),
            feedback_warehouse=Path(need("feedback_warehouse")),
            feedback_table=str(need("feedback_table")),
            key_env=str(raw.get("key_env") or "DISEASE_PIPELINE_SERVING_KEY"),
            key_file=Path(need("key_file")),
            tokens_file=Path(tokens_file) if tokens_file else None,
            tokens=tuple(raw.get("tokens") or ()),
            roles=roles,
            hpo_search_limit=positive("hpo_search_limit"),
            threads=positive("threads") if "threads" in raw else 1,
            workers=positive("workers") if "workers" in raw else 1,
            **_optional_settings(raw, source, positive),
            source=source,
        )


def _optional_settings(raw: dict[str, Any], source: Path | None, positive) -> dict[str, Any]:
    """The batching, limit, token, audit-key and TLS settings present in ``raw``."""
    settings: dict[str, Any] = {}
    for key in ("batch_max_size", "max_body_bytes", "max_concurrency", "rate_burst"):
        if key in raw:
            settings[key] = positive(key)
    for key in ("batch_max_wait_ms", "rate_per_second", "token_days"):
        if raw.get(key) is not None:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ServingConfigError(f"{source}: serving.{key} must be a number >= 0")
            settings[key] = float(value)
    for key in ("first_token_file", "audit_key_file"):
        if raw.get(key):
            settings[key] = Path(raw[key])
    if raw.get("audit_key_env"):
        settings["audit_key_env"] = str(raw["audit_key_env"])
    if raw.get("feedback_notes") is not None:
        if raw["feedback_notes"] not in ("drop", "scrub"):
            raise ServingConfigError(f"{source}: serving.feedback_notes must be drop or scrub")
        settings["feedback_notes"] = raw["feedback_notes"]
    if raw.get("prediction_log") is not None:
        if not isinstance(raw["prediction_log"], dict):
            raise ServingConfigError(f"{source}: serving.prediction_log must be a mapping")
        settings["prediction_log"] = dict(raw["prediction_log"])
    if raw.get("monitoring_summary"):
        settings["monitoring_summary"] = Path(raw["monitoring_summary"])
    if raw.get("challenger") is not None:
        try:
            settings["challenger"] = ChallengerSettings.from_dict(raw["challenger"])
        except (TypeError, ValueError) as error:
            raise ServingConfigError(f"{source}: {error}") from error
    ssl = raw.get("ssl")
    if ssl:
        if not isinstance(ssl, dict) or not ssl.get("certfile") or not ssl.get("keyfile"):
            raise ServingConfigError(f"{source}: serving.ssl needs certfile and keyfile")
        settings["ssl"] = {"enabled": True, **ssl}
    return settings


def load_config(path: str | Path | None = None) -> ServingConfig:
    """Read the configuration from ``path``, ``$DISEASE_PIPELINE_SERVING_CONFIG`` or
    ``conf/base/serving.yml``."""
    chosen = Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG)
    if not chosen.is_file():
        raise ServingConfigError(
            f"serving configuration {chosen} not found: run from the repository root or set "
            f"{CONFIG_ENV_VAR}"
        )
    document = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    return ServingConfig.from_dict(document.get("serving"), source=chosen)


def service_key(config: ServingConfig) -> bytes:
    """The key of the service's pseudonyms: ``$<key_env>``, else ``key_file`` (created
    with a random 64-hex-character key, mode 0600, when missing)."""
    return secret_key(config.key_env, config.key_file)


def audit_key(config: ServingConfig) -> bytes:
    """The key of the audit trail's HMAC chain: ``$<audit_key_env>``, else
    ``audit_key_file`` (created random, mode 0600, when missing)."""
    return secret_key(config.audit_key_env, config.audit_key_file)


def secret_key(env_var: str, path: Path) -> bytes:
    """A key from ``$env_var``, else from ``path`` (created with a random
    64-hex-character key, mode 0600, when missing); at least 32 characters."""
    value = os.environ.get(env_var)
    origin = f"environment variable {env_var}"
    if not value:
        if not path.exists():
            _create_key_file(path)
        value = path.read_text(encoding="utf-8").strip()
        origin = f"key file {path}"
    if len(value) < MIN_KEY_LENGTH:
        raise ServingConfigError(
            f"key from {origin} is too short: need at least {MIN_KEY_LENGTH} characters"
        )
    return value.encode("utf-8")


def _create_key_file(path: Path) -> None:
    """Write a random key to ``path`` (mode 0600) atomically: the complete file appears
    at once, and when several workers race, the first one's key is kept by all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
