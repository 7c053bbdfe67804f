"""Deep feature synthesis over the encounter EntitySet, and its vectorised twin.

The EntitySet has one parent, ``encounters`` (``age_years``, ``sex``), and four children
keyed by ``encounter_id``: ``symptoms`` (``present``, ``excluded``, ``severity``,
``onset_days``), ``vitals`` and ``labs`` (``loinc``, ``value``) and ``comorbidities``
(``code``). Featuretools chooses the aggregation features (:func:`synthesise`); each one is
translated into an :class:`AggSpec` that ``reductions.aggregate`` computes with numpy, so
serving never runs featuretools. :func:`calculate_with_featuretools` computes the saved
definitions with featuretools itself, for the parity test.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from disease_pipeline.predictor.reductions import Children

#: Child dataframes and their numeric columns (``loinc``/``code`` are categorical).
CHILD_COLUMNS: dict[str, tuple[str, ...]] = {
    "symptoms": ("present", "excluded", "severity", "onset_days"),
    "vitals": ("value",),
    "labs": ("value",),
    "comorbidities": (),
}
MEASUREMENTS = ("vitals", "labs")
SUPPORTED_PRIMITIVES = ("count", "sum", "mean", "min", "max", "std")


@dataclass(frozen=True)
class AggSpec:
    """One synthesised feature: ``primitive`` of ``child.column`` [WHERE loinc = ``where``]."""

    name: str
    ft_name: str
    child: str
    primitive: str
    column: str | None
    where: str | None = None


def feature_label(text: str) -> str:
    """``8867-4`` → ``8867_4``; anything but letters, digits and ``_`` becomes ``_``."""
    return re.sub(r"[^0-9A-Za-z]+", "_", str(text)).strip("_")


def build_entityset(
    encounter_ids: pd.Index,
    age: np.ndarray,
    sex: np.ndarray,
    children: Children,
    interesting: dict[str, list[str]] | None = None,
):
    """The featuretools EntitySet of the prepared tables, typed explicitly."""
    import featuretools as ft
    from woodwork.logical_types import Categorical, Double, Unknown

    es = ft.EntitySet("encounters")
    parent = pd.DataFrame({"encounter_id": encounter_ids.astype(str), "age_years": age, "sex": sex})
    types = {"encounter_id": Unknown, "age_years": Double, "sex": Categorical}
    es.add_dataframe(
        dataframe_name="encounters", dataframe=parent, index="encounter_id", logical_types=types
    )
    for child, numeric in CHILD_COLUMNS.items():
        arrays = children[child]
        frame = pd.DataFrame(
            {
                "row_id": np.arange(len(arrays["codes"])),
                "encounter_id": np.asarray(encounter_ids.astype(str))[arrays["codes"]],
            }
        )
        types = {"encounter_id": Unknown}
        for column in numeric:
            frame[column] = arrays[column]
            types[column] = Double
        for column in ("loinc", "code"):
            if column in arrays:
                frame[column] = arrays[column].astype(str)
                types[column] = Categorical
        es.add_dataframe(dataframe_name=child, dataframe=frame, index="row_id", logical_types=types)
        es.add_relationship("encounters", "encounter_id", child, "encounter_id")
    for child, values in (interesting or {}).items():
        if values:
            es.add_interesting_values(dataframe_name=child, values={"loinc": list(values)})
    return es


def synthesise(entityset, dfs_params: dict) -> list:
    """Run DFS (``features_only``) and keep the features that make clinical sense.

    Aggregations over ``vitals``/``labs`` that mix LOINC codes (no WHERE clause) are
    dropped, except their ``count``.
    """
    import featuretools as ft

    params = dict(dfs_params)
    unknown = set(params) - {"max_depth", "agg_primitives", "where_primitives", "primitive_options"}
    if unknown:
        raise ValueError(f"features.builder.dfs: unknown keys {sorted(unknown)}")
    for key in ("agg_primitives", "where_primitives"):
        bad = set(params.get(key, [])) - set(SUPPORTED_PRIMITIVES)
        if bad:
            raise ValueError(
                f"features.builder.dfs.{key}: {sorted(bad)} not supported by the vectorised path "
                f"(supported: {SUPPORTED_PRIMITIVES})"
            )
    options = {
        (tuple(p.strip() for p in k.split(",")) if "," in k else k): v
        for k, v in (params.pop("primitive_options", None) or {}).items()
    }
    features = ft.dfs(
        entityset=entityset,
        target_dataframe_name="encounters",
        trans_primitives=[],
        ignore_columns={"encounters": ["sex"]},
        primitive_options=options,
        features_only=True,
        **params,
    )
    kept = []
    for feature in features:
        child = _child_of(feature)
        if child in MEASUREMENTS and feature.where is None and _primitive(feature) != "count":
            continue
        kept.append(feature)
    return sorted(kept, key=lambda f: f.get_name())


def _child_of(feature) -> str | None:
    base = feature.base_features[0] if feature.base_features else None
    return base.dataframe_name if base is not None else None


def _primitive(feature) -> str:
    return feature.primitive.name


def specs_from_features(features: list, labels: dict[str, str]) -> list[AggSpec]:
    """Translate featuretools features into :class:`AggSpec` (error on anything else).

    ``labels`` maps LOINC codes to readable column labels (``heart_rate``).
    """
    from featuretools.feature_base import AggregationFeature, IdentityFeature

    specs = []
    for feature in features:
        ft_name = feature.get_name()
        if isinstance(feature, IdentityFeature) and feature.dataframe_name == "encounters":
            specs.append(AggSpec(feature.get_name(), ft_name, "encounters", "identity", ft_name))
            continue
        if not isinstance(feature, AggregationFeature) or len(feature.base_features) != 1:
            raise ValueError(f"feature {ft_name!r}: only depth-1 aggregations are vectorised")
        base = feature.base_features[0]
        if not isinstance(base, IdentityFeature) or base.dataframe_name not in CHILD_COLUMNS:
            raise ValueError(f"feature {ft_name!r}: stacked features are not vectorised")
        child, primitive = base.dataframe_name, _primitive(feature)
        if primitive not in SUPPORTED_PRIMITIVES:
            raise ValueError(f"feature {ft_name!r}: primitive {primitive!r} not vectorised")
        column = None if primitive == "count" else base.get_name()
        where = None
        if feature.where is not None:
            condition = feature.where
            if condition.primitive.name != "equal_scalar" or (
                condition.base_features[0].get_name() != "loinc"
            ):
                raise ValueError(f"feature {ft_name!r}: only WHERE loinc = <code> is vectorised")
            where = str(condition.primitive.value)
        parts = [child]
        if where is not None:
            parts.append(labels.get(where) or f"loinc_{feature_label(where)}")
        if column is not None and column != "value":
            parts.append(column)
        name = feature_label("_".join([*parts, primitive]))
        specs.append(AggSpec(name, ft_name, child, primitive, column, where))
    return specs


def calculate_with_featuretools(
    definitions: str, specs: list[AggSpec], entityset, encounter_ids: pd.Index
) -> np.ndarray:
    """Compute the saved DFS ``definitions`` with ``ft.calculate_feature_matrix``."""
    import featuretools as ft

    features = ft.load_features(definitions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matrix = ft.calculate_feature_matrix(features, entityset=entityset, verbose=False)
    matrix = matrix.reindex(encounter_ids.astype(str))
    return (
        np.column_stack(
            [
                matrix[spec.ft_name].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                for spec in specs
            ]
        )
        if specs
        else np.empty((len(encounter_ids), 0))
    )
