"""The service's configuration: ``serving.yml`` of the project's configuration folder.

The BentoML process loads it once at start-up, layered like Kedro's own configuration
(without importing Kedro): ``conf/base/serving.yml``, then the run environment's
``conf/<env>/serving.yml`` when it exists (``$KEDRO_ENV``, default ``local``), merged
softly (an environment names only the keys it changes). Values may use
``${globals:<key>}`` of the same environment's ``globals.yml``, the variables the data
catalog uses, so the feedback store is the catalog's ``prm_feedback`` table by
construction. The configuration folder is found beside the package (a repository
checkout, or a Bento's ``src/``), else ``./conf``; ``$DISEASE_PIPELINE_CONF_SOURCE``
names another. ``$DISEASE_PIPELINE_SERVING_CONFIG`` names one file instead of the layers
(test servers, a hospital's own file); its globals are still the project's. Relative
paths are resolved against the working directory of ``bentoml serve`` (the repository
root, or the Bento's ``src/``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from disease_pipeline.serving.challenger import ChallengerSettings

#: Environment variable naming the configuration file.
CONFIG_ENV_VAR = "DISEASE_PIPELINE_SERVING_CONFIG"
#: Environment variable naming the project's configuration folder (Kedro's ``conf``).
CONF_SOURCE_ENV_VAR = "DISEASE_PIPELINE_CONF_SOURCE"
#: Kedro's variable of the run environment; the same default as the project's settings.
RUN_ENV_VAR = "KEDRO_ENV"
BASE_ENV = "base"
DEFAULT_RUN_ENV = "local"
#: A global variable in a value, as the catalog writes it.
GLOBAL_REFERENCE = re.compile(r"\$\{globals:([A-Za-z_][A-Za-z0-9_.]*)\}")
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
    #: most patients per model call of /predict_batch: a large batch is predicted, audited
    #: and logged in calls of this size, so its memory is bounded by one call's
    model_call_size: int = 250
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
    #: the whole resolved document (``{"serving": …}``) for the settings read elsewhere
    #: (``serving.fhir``, ``serving.cds_hooks``)
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any],
        source: Path | None = None,
        document: dict[str, Any] | None = None,
    ) -> ServingConfig:
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
            document=document if document is not None else {"serving": raw},
        )


def _optional_settings(raw: dict[str, Any], source: Path | None, positive) -> dict[str, Any]:
    """The batching, limit, token, audit-key and TLS settings present in ``raw``."""
    settings: dict[str, Any] = {}
    for key in (
        "batch_max_size",
        "model_call_size",
        "max_body_bytes",
        "max_concurrency",
        "rate_burst",
    ):
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


def find_conf_source() -> Path:
    """The project's configuration folder: ``$DISEASE_PIPELINE_CONF_SOURCE``, else the
    ``conf`` folder beside the package (a Bento's ``src/conf``, a checkout's ``conf``),
    else ``./conf``."""
    explicit = os.environ.get(CONF_SOURCE_ENV_VAR)
    if explicit:
        return Path(explicit)
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "conf", package.parent.parent / "conf"):
        if (candidate / BASE_ENV / "serving.yml").is_file():
            return candidate
    return Path("conf")


def run_env(env: str | None = None) -> str:
    """The run environment: ``env``, else ``$KEDRO_ENV``, else ``local`` (Kedro's rule)."""
    return env or os.environ.get(RUN_ENV_VAR) or DEFAULT_RUN_ENV


def soft_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top: mappings merge key by key, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = soft_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise ServingConfigError(f"{path}: expected a mapping")
    return document


def layered(conf_source: Path, env: str, name: str) -> tuple[dict[str, Any], list[Path]]:
    """``conf/base/<name>`` softly merged with ``conf/<env>/<name>`` (each when present)
    and the files read."""
    document: dict[str, Any] = {}
    read = []
    for folder in dict.fromkeys((BASE_ENV, env)):
        path = conf_source / folder / name
        if path.is_file():
            document = soft_merge(document, _read_yaml(path))
            read.append(path)
    return document, read


def resolve_globals(value: Any, variables: dict[str, Any], where: str = "serving") -> Any:
    """``value`` with every ``${globals:key}`` replaced by that global (dotted keys reach
    into mappings); other ``${…}`` placeholders are left for their readers.

    Raises:
        ServingConfigError: a referenced global is not defined (naming the key path).
    """
    if isinstance(value, dict):
        return {k: resolve_globals(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_globals(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${globals:" not in value:
        return value

    def lookup(match: re.Match) -> Any:
        node: Any = variables
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise ServingConfigError(
                    f"{where}: ${{globals:{match.group(1)}}} is not defined in globals.yml"
                )
            node = node[part]
        return node

    whole = GLOBAL_REFERENCE.fullmatch(value)
    if whole:  # a value that is one global keeps the global's type
        return lookup(whole)
    return GLOBAL_REFERENCE.sub(lambda match: str(lookup(match)), value)


def load_document(
    path: str | Path | None = None, *, env: str | None = None, conf_source: Path | None = None
) -> tuple[dict[str, Any], Path]:
    """The resolved serving document (``{"serving": …}``) and the file it names as its
    source (the single file, else the environment's file when it has one, else base's)."""
    source = conf_source or find_conf_source()
    environment = run_env(env)
    variables, _ = layered(source, environment, "globals.yml")
    single = path or os.environ.get(CONFIG_ENV_VAR)
    if single:
        chosen = Path(single)
        if not chosen.is_file():
            raise ServingConfigError(f"serving configuration {chosen} not found")
        document = _read_yaml(chosen)
    else:
        document, read = layered(source, environment, "serving.yml")
        if not read:
            raise ServingConfigError(
                f"serving configuration {source / BASE_ENV / 'serving.yml'} not found: set "
                f"{CONF_SOURCE_ENV_VAR} to the project's conf folder or {CONFIG_ENV_VAR} to a file"
            )
        chosen = read[-1]
    return resolve_globals(document, variables, "serving.yml"), chosen


def load_config(
    path: str | Path | None = None, *, env: str | None = None, conf_source: Path | None = None
) -> ServingConfig:
    """The service's configuration: the file ``path`` (or ``$DISEASE_PIPELINE_SERVING_CONFIG``)
    if given, else the project's ``serving.yml`` layers for the run environment (module
    docstring), with ``${globals:…}`` resolved."""
    document, chosen = load_document(path, env=env, conf_source=conf_source)
    return ServingConfig.from_dict(document.get("serving"), source=chosen, document=document)


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
