"""Moving the registry's aliases: promotion of a challenger, rollback to the previous
champion — recorded as model-version tags and as an entry of the audit trail.

Aliases of the registered model (MLflow 3; stages are deprecated):

- ``champion``: what serving loads (``models:/<name>@champion``);
- ``challenger``: the last retrained candidate (``kedro run --pipeline=retrain``);
- ``previous_champion``: the champion a promotion or rollback replaced, so that
  ``disease-pipeline rollback`` can restore it.

Every move tags the version it promotes (``promotion.action``, ``.at``, ``.by``,
``.reason``, ``.previous_champion``) and the version it demotes (``promotion.replaced_by``),
and appends ``{"event": "model_promotion", …}`` to the audit trail when one is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"


class AuditTrail(Protocol):
    """What the promotion needs of :class:`disease_pipeline.serving.audit.AuditLog`."""

    def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


class PromotionError(RuntimeError):
    """An alias move that cannot be made (missing alias or version)."""


def alias_absent(error: MlflowException) -> bool:
    """Whether ``error`` (from ``get_model_version_by_alias``) says the alias or the
    registered model does not exist, rather than that the registry could not answer
    (a server down, a broken store): only the former may read as "no such version"."""
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(error.message).lower()
    missing_alias = "alias" in message and "not found" in message
    return error.error_code == "INVALID_PARAMETER_VALUE" and missing_alias


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``name@alias`` points at, or None when it is not set; a registry
    that cannot answer raises."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if alias_absent(error):
            return None
        raise


def _tag(client: MlflowClient, name: str, version: str, tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value)[:5000])


def move_champion(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    action: str,
    reason: str,
    user: str,
    audit: AuditTrail | None = None,
) -> dict[str, Any]:
    """Point ``champion`` at ``version``; the replaced one becomes ``previous_champion``.

    Returns the record of the move (also the audit entry's ``output``).
    """
    try:
        client.get_model_version(name, version)
    except MlflowException as error:
        raise PromotionError(f"{name} has no version {version!r}: {error}") from error
    previous = alias_version(client, name, CHAMPION)
    if previous == version:
        raise PromotionError(f"{name} version {version} is already the champion")
    now = datetime.now(UTC).isoformat()
    client.set_registered_model_alias(name, CHAMPION, version)
    if previous is not None:
        client.set_registered_model_alias(name, PREVIOUS, previous)
        _tag(
            client, name, previous, {"promotion.replaced_by": version, "promotion.replaced_at": now}
        )
    _tag(
        client,
        name,
        version,
        {
            "promotion.action": action,
            "promotion.at": now,
            "promotion.by": user,
            "promotion.reason": reason,
            "promotion.previous_champion": previous or "none",
        },
    )
    record = {
        "action": action,
        "registered_model_name": name,
        "champion": version,
        "previous_champion": previous,
        "reason": reason,
        "at": now,
    }
    if audit is not None:
        audit.append(
            [
                {
                    "event": "model_promotion",
                    "user": user,
                    "role": "operator",
                    "model_version": version,
                    "output": record,
                }
            ]
        )
    return record


def promote(
    client: MlflowClient,
    name: str,
    *,
    version: str | None = None,
    reason: str,
    user: str,
    audit: AuditTrail | None = None,
) -> dict[str, Any]:
    """Make ``version`` (default: the ``challenger`` alias) the champion; the challenger
    alias is removed once promoted."""
    chosen = version or alias_version(client, name, CHALLENGER)
    if chosen is None:
        raise PromotionError(f"{name} has no @{CHALLENGER} to promote: run the retrain pipeline")
    record = move_champion(
        client, name, chosen, action="promote", reason=reason, user=user, audit=audit
    )
    if alias_version(client, name, CHALLENGER) == chosen:
        client.delete_registered_model_alias(name, CHALLENGER)
    return record


def rollback(
    client: MlflowClient,
    name: str,
    *,
    version: str | None = None,
    reason: str,
    user: str,
    audit: AuditTrail | None = None,
) -> dict[str, Any]:
    """Restore ``version`` (default: ``previous_champion``) as the champion; the one rolled
    back from is tagged ``promotion.rolled_back`` and becomes ``previous_champion``."""
    chosen = version or alias_version(client, name, PREVIOUS)
    if chosen is None:
        raise PromotionError(f"{name} has no @{PREVIOUS} to roll back to")
    current = alias_version(client, name, CHAMPION)
    record = move_champion(
        client, name, chosen, action="rollback", reason=reason, user=user, audit=audit
    )
    if current is not None:
        _tag(client, name, current, {"promotion.rolled_back": record["at"]})
    return record
