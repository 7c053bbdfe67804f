"""Schemas of ``packaging`` and ``bento_packaging`` (``parameters_*packaging.yml``)."""

from __future__ import annotations

from disease_pipeline.params.base import ParamsModel, PositiveInt


class PackagingParams(ParamsModel):
    """``packaging``: the MLflow pyfunc and its registry entry."""

    top_k: PositiveInt
    requirements_extra: str
    tag_metrics: list[str]


class BentoPackagingParams(ParamsModel):
    """``bento_packaging``: the registered model imported into the BentoML store."""

    bento_model_name: str
    registered_model_name: str
    alias: str
