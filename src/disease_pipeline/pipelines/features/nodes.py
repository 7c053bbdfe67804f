"""Nodes of the ``features`` pipeline: labels, registry cases, feature matrix.

The time/patient splits live in :mod:`disease_pipeline.pipelines.features.splits`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.core.columns import KEY_COLUMNS, LABEL_COLUMNS
from disease_pipeline.predictor.features import FeatureBuilder

logger = logging.getLogger(__name__)

RARE_SYSTEMS = ("OMIM", "ORPHA")


def assemble_feature_tables(
    *,
    patients: pd.DataFrame,
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    vitals: pd.DataFrame,
    labs: pd.DataFrame,
    diagnoses: pd.DataFrame,
    feedback: dict[str, pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """The warehouse tables as the ``tables`` dict of :class:`FeatureBuilder`.

    ``encounters`` gains the patient's ``sex`` (``unknown`` when the patient is missing)
    and ``start`` is parsed as a UTC date-time. ``feedback`` (``prm_feedback_encounters``
    of ``retrain_check``; None or ``{}`` by default) adds the encounters labelled by
    clinician feedback, which carry their own ``sex``.
    """
    for name, frame, column in (
        ("prm_patients", patients, "sex"),
        ("prm_encounters", encounters, "start"),
    ):
        if column not in frame.columns:
            raise ValueError(f"{name}: missing column {column!r}")
    sex = patients.drop_duplicates("patient_id").set_index("patient_id")["sex"]
    enc = encounters.copy()
    enc["sex"] = enc["patient_id"].map(sex).fillna("unknown")
    enc["start"] = pd.to_datetime(enc["start"], utc=True, format="mixed")
    tables = {
        "encounters": enc,
        "symptoms": symptoms,
        "vitals": vitals,
        "labs": labs,
        "diagnoses": diagnoses,
    }
    if feedback and not feedback["encounters"].empty:
        tables = add_feedback_encounters(tables, feedback)
    return tables


def add_feedback_encounters(
    tables: dict[str, pd.DataFrame], feedback: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """``tables`` with the feedback encounters appended (their ids must be new), without
    the exported encounters a clinician-confirmed label superseded (``superseded``,
    ``retrain.feedback.duplicates.on_conflict: keep_feedback``)."""
    superseded = feedback.get("superseded")
    if superseded is not None and not superseded.empty:
        gone = set(superseded["encounter_id"].astype(str))
        tables = {
            name: frame[~frame["encounter_id"].astype(str).isin(gone)]
            for name, frame in tables.items()
        }
        logger.info("features: %d exported encounters superseded by feedback", len(gone))
    clash = set(feedback["encounters"]["encounter_id"]) & set(tables["encounters"]["encounter_id"])
    if clash:
        raise ValueError(
            f"prm_feedback_encounters: encounter ids already in the warehouse: {sorted(clash)[:5]}"
        )
    extra = feedback["encounters"].copy()
    extra["start"] = pd.to_datetime(extra["start"], utc=True, format="mixed")
    logger.info("features: %d encounters labelled by clinician feedback added", len(extra))
    out = {"encounters": pd.concat([tables["encounters"], extra], ignore_index=True)}
    for name in ("symptoms", "vitals", "labs", "diagnoses"):
        out[name] = pd.concat([tables[name], feedback[name]], ignore_index=True)
    return out


def disease_code(code: pd.Series, system: pd.Series) -> pd.Series:
    """``J18.9`` stays; OMIM/ORPHA codes get their prefix (``123456`` → ``OMIM:123456``)."""
    code = code.astype(str).str.strip()
    system = system.astype(str).str.upper()
    rare = system.isin(RARE_SYSTEMS) & ~code.str.contains(":", regex=False)
    return code.where(~rare, system + ":" + code)


def build_labels(tables: dict[str, pd.DataFrame], registry_sources: list[str]) -> pd.DataFrame:
    """One row per labelled, non-registry encounter: keys and the three labels.

    The label is the encounter's primary diagnosis; an encounter with several primary
    diagnoses keeps the first by code (logged), one without any is left out.
    """
    enc = tables["encounters"]
    primary = _primary_diagnoses(tables["diagnoses"])
    labelled = enc.loc[~enc["source"].isin(registry_sources), list(KEY_COLUMNS)].merge(
        primary, on="encounter_id", how="inner"
    )
    unlabelled = int((~enc["source"].isin(registry_sources)).sum()) - len(labelled)
    if unlabelled:
        logger.warning("%d encounters have no primary diagnosis and are not labelled", unlabelled)
    if labelled.empty:
        raise ValueError("features: no labelled encounter (no primary diagnosis in prm_diagnoses)")
    return labelled.sort_values(["start", "encounter_id"]).reset_index(drop=True)


def _primary_diagnoses(diagnoses: pd.DataFrame) -> pd.DataFrame:
    primary = diagnoses[diagnoses["role"] == "primary"].copy()
    primary["label_disease"] = disease_code(primary["code"], primary["system"])
    primary = primary.sort_values(["encounter_id", "label_disease"])
    extra = int(primary["encounter_id"].duplicated().sum())
    if extra:
        logger.warning("%d extra primary diagnoses ignored (first code kept)", extra)
    primary = primary.drop_duplicates("encounter_id")
    primary = primary.rename(columns={"category": "label_category", "severity": "label_severity"})
    return primary[["encounter_id", *LABEL_COLUMNS]]


#: columns of the registry-case table (``feat_registry_cases``)
REGISTRY_CASE_COLUMNS = (
    "encounter_id",
    "label_disease",
    "present_terms",
    "excluded_terms",
    "age",
    "sex",
)


def build_registry_cases(
    tables: dict[str, pd.DataFrame], registry_sources: list[str]
) -> pd.DataFrame:
    """Registry cases (phenopackets) for the rare model: terms as lists, no vitals or labs.

    Columns: ``encounter_id, label_disease, present_terms, excluded_terms, age, sex``.
    """
    enc = tables["encounters"]
    enc = enc[enc["source"].isin(registry_sources)]
    symptoms = tables["symptoms"]
    symptoms = symptoms[symptoms["encounter_id"].isin(enc["encounter_id"])]
    present = symptoms["present"].astype(bool)
    terms = {
        column: symptoms[mask].groupby("encounter_id")["hpo_id"].agg(lambda s: sorted(set(s)))
        for column, mask in (("present_terms", present), ("excluded_terms", ~present))
    }
    primary = _primary_diagnoses(tables["diagnoses"])
    cases = enc[["encounter_id", "age_years", "sex"]].merge(
        primary[["encounter_id", "label_disease"]], on="encounter_id", how="inner"
    )
    for column, series in terms.items():
        cases[column] = cases["encounter_id"].map(series)
        cases[column] = cases[column].map(lambda v: v if isinstance(v, list) else [])
    cases = cases.rename(columns={"age_years": "age"})
    return cases[list(REGISTRY_CASE_COLUMNS)].sort_values("encounter_id").reset_index(drop=True)


def subset_tables(tables: dict[str, pd.DataFrame], encounter_ids) -> dict[str, pd.DataFrame]:
    """The rows of every table that belong to ``encounter_ids``."""
    wanted = pd.Index(encounter_ids)
    return {name: frame[frame["encounter_id"].isin(wanted)] for name, frame in tables.items()}


def fit_feature_builder(
    tables: dict[str, pd.DataFrame],
    assignment: pd.DataFrame,
    builder_params: dict,
    knowledge_params: dict | None = None,
) -> FeatureBuilder:
    """Fit a :class:`FeatureBuilder` on the encounters of the training split only; with
    ``knowledge_params`` (``common_model.knowledge``) it adds the knowledge block."""
    train_ids = assignment.loc[assignment["split"] == "train", "encounter_id"]
    builder = FeatureBuilder(**builder_params, knowledge=knowledge_params)
    return builder.fit(subset_tables(tables, train_ids))


def build_feature_matrix(
    *,
    builder: FeatureBuilder,
    tables: dict[str, pd.DataFrame],
    labels: pd.DataFrame,
    chunk_size: int,
    parity_sample: int,
    seed: int,
) -> pd.DataFrame:
    """``feat_encounters``: keys, labels and the vectorised features of every labelled encounter.

    A random sample of ``parity_sample`` encounters is also computed with featuretools;
    any difference stops the run.
    """
    if chunk_size < 1:
        raise ValueError(f"features.chunk_size must be >= 1, got {chunk_size}")
    ids = labels["encounter_id"].to_numpy()
    features = transform_in_chunks(builder, tables, ids, chunk_size)
    if parity_sample > 0:
        rng = np.random.default_rng(seed)
        sample = rng.choice(ids, size=min(parity_sample, len(ids)), replace=False)
        check_parity(builder, subset_tables(tables, sample))
    matrix = labels.set_index("encounter_id").join(features, how="left")
    return matrix.reset_index()[[*KEY_COLUMNS, *LABEL_COLUMNS, *builder.feature_names]]


def transform_in_chunks(
    builder: FeatureBuilder, tables: dict[str, pd.DataFrame], ids: np.ndarray, chunk_size: int
) -> pd.DataFrame:
    """The features of the encounters ``ids`` of ``tables``, ``chunk_size`` at a time
    (bounded memory), with a progress bar."""
    parts = [
        builder.transform(subset_tables(tables, ids[i : i + chunk_size]))
        for i in tqdm(range(0, len(ids), chunk_size), desc="features", unit="chunk")
    ]
    return pd.concat(parts)


def check_parity(builder: FeatureBuilder, tables: dict[str, pd.DataFrame]) -> None:
    """Raise when ``transform`` and ``transform_featuretools`` disagree on ``tables``."""
    fast = builder.transform(tables)
    reference = builder.transform_featuretools(tables)
    try:
        np.testing.assert_allclose(fast.to_numpy(), reference.to_numpy(), rtol=1e-9, equal_nan=True)
    except AssertionError as error:
        diff = ~np.isclose(fast.to_numpy(), reference.to_numpy(), rtol=1e-9, equal_nan=True)
        columns = sorted(set(fast.columns[np.where(diff)[1]]))
        raise RuntimeError(
            f"vectorised features differ from featuretools in columns {columns}"
        ) from error
    logger.info("featuretools parity checked on %d encounters", len(fast))


#: masked pattern → the measurement tables it removes
MASKS = {"symptoms_only": ("vitals", "labs"), "vitals": ("labs",), "labs": ("vitals",)}


def mask_modalities(
    tables: dict[str, pd.DataFrame], assignment: pd.DataFrame, params: dict
) -> dict[str, pd.DataFrame]:
    """Tables where a random share of the encounters of ``params["splits"]`` lose their
    vitals and/or labs, so the models see every modality pattern (symptoms only, +vitals,
    +labs, all) while training and calibrating, as clinicians send them.

    Args:
        params: ``splits`` (split names masked) and ``shares`` (pattern → share of their
            encounters: ``symptoms_only`` drops vitals and labs, ``vitals`` drops labs,
            ``labs`` drops vitals); ``seed``.
    """
    shares = {str(k): float(v) for k, v in (params.get("shares") or {}).items()}
    unknown = sorted(set(shares) - set(MASKS))
    if unknown or any(v < 0 for v in shares.values()) or sum(shares.values()) > 1:
        raise ValueError(
            f"features.modality_masking.shares: patterns {sorted(MASKS)}, shares >= 0 "
            f"summing to at most 1 (got {shares})"
        )
    ids = assignment.loc[assignment["split"].isin(params.get("splits", [])), "encounter_id"]
    ids = np.sort(ids.astype(str).to_numpy())
    rng = np.random.default_rng(int(params.get("seed", 0)))
    draw = rng.random(len(ids))
    dropped: dict[str, set] = {"vitals": set(), "labs": set()}
    low = 0.0
    for pattern, share in shares.items():
        chosen = ids[(draw >= low) & (draw < low + share)]
        low += share
        for table in MASKS[pattern]:
            dropped[table].update(chosen)
    out = dict(tables)
    for table, gone in dropped.items():
        frame = tables[table]
        out[table] = frame[~frame["encounter_id"].astype(str).isin(gone)]
        logger.info("modality masking: %s removed from %d encounters", table, len(gone))
    return out
