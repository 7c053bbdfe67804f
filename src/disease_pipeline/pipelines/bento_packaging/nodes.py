"""What the BentoML model store receives: which registered model, under which name."""

from __future__ import annotations

from typing import Any


def bento_import_spec(registration: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The import request for ``registry_bento_model`` (``BentoModelStoreDataset``).

    Args:
        registration: what ``packaging`` decided (``approved`` True/False, ``reason``).
        params: ``bento_packaging`` parameters: ``bento_model_name``,
            ``registered_model_name``, ``alias``.

    Raises:
        ValueError: a parameter is missing, or the verdict has no ``approved`` field.
    """
    for key in ("bento_model_name", "registered_model_name", "alias"):
        if not params.get(key):
            raise ValueError(f"bento_packaging.{key} must be set")
    if "approved" not in registration:
        raise ValueError("reporting_champion_registration has no 'approved' field: rerun packaging")
    return {
        "bento_model_name": str(params["bento_model_name"]),
        "registered_model_name": str(params["registered_model_name"]),
        "alias": str(params["alias"]),
        "approved": bool(registration["approved"]),
    }
