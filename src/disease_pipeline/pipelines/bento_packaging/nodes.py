"""What the BentoML model store receives: which registered model, under which name."""

from __future__ import annotations

from typing import Any


def bento_import_spec(
    gate_verdict: dict[str, Any], params: dict[str, Any], rendered_verdict: str | None = None
) -> dict[str, Any]:
    """The import request for ``models_bento`` (``BentoModelStoreDataset``).

    Args:
        gate_verdict: the acceptance gate's verdict (``approved`` True/False).
        params: ``bento_packaging`` parameters: ``bento_model_name``,
            ``registered_model_name``, ``alias``.
        rendered_verdict: the verdict's markdown, not used: the input only orders the
            node after ``packaging``'s registration in ``train`` (``pipeline.py``).

    Raises:
        ValueError: a parameter is missing, or the verdict has no ``approved`` field.
    """
    for key in ("bento_model_name", "registered_model_name", "alias"):
        if not params.get(key):
            raise ValueError(f"bento_packaging.{key} must be set")
    if "approved" not in gate_verdict:
        raise ValueError("reporting_gate_verdict has no 'approved' field: rerun evaluation")
    return {
        "bento_model_name": str(params["bento_model_name"]),
        "registered_model_name": str(params["registered_model_name"]),
        "alias": str(params["alias"]),
        "approved": bool(gate_verdict["approved"]),
    }
