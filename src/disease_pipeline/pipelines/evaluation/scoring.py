"""Score a split with the predictor: one row per encounter with labels and probabilities.

This module is the only place that reads the predictor's output format. A split is scored
through ``predictor.predict_tables`` on the split's warehouse tables — the path the
service runs (``predict_records`` builds the same tables from requests) — never from the
bare feature rows. The table it builds (``model_output_*_predictions``) has the label
columns of the split, ``sex`` and ``age_years`` for subgroups, ``modality`` (which inputs
the encounter has: ``symptoms_only``, ``with_vitals``, ``with_labs``, ``all``),
``ranked_codes`` (the differential, best first), ``p_rare``, ``severity_pred``,
``p_severity__<level>`` and ``p_common__<code>`` for every common class of the
predictor: P(d | common) from ``predictor.predict_arrays`` when the predictor has it
(``DiseasePredictor`` does), otherwise the differential's probability (0 when the class
is not in the returned list); and ``p_rare__<id>`` = P(rare) · P(id | rare) over all
rare candidates for every rare disease labelled in the split (per-disease AUROC), from
the split's tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.core.columns import META_COLUMNS
from disease_pipeline.core.levels import SEVERITY_LEVELS

#: the key and label columns of a model-input split (everything but the features)
LABEL_COLUMNS = META_COLUMNS
_PREFIX = {"common": "p_common__", "severity": "p_severity__"}
#: column prefix of P(rare) · P(d | rare) for the rare diseases labelled in the split
RARE_PREFIX = "p_rare__"


def class_columns(frame: pd.DataFrame, kind: str) -> list[str]:
    """Class names of the ``common`` or ``severity`` probability columns, in column order."""
    prefix = _PREFIX[kind]
    return [c.removeprefix(prefix) for c in frame.columns if c.startswith(prefix)]


def probabilities(frame: pd.DataFrame, kind: str) -> np.ndarray:
    """(n, k) probability matrix of the ``common`` or ``severity`` columns."""
    prefix = _PREFIX[kind]
    return frame[[c for c in frame.columns if c.startswith(prefix)]].to_numpy(float)


def common_classes(predictor: Any) -> list[str]:
    """The common diseases the predictor can rank (its common model's ``classes_``)."""
    return [str(c) for c in predictor.common_model.classes_]


def _as_dict(item: Any) -> dict[str, Any]:
    return item.model_dump() if hasattr(item, "model_dump") else dict(item)


def predictions_to_frame(outputs: list[Any], index: pd.Index, classes: list[str]) -> pd.DataFrame:
    """Flatten the predictor's per-encounter outputs into the scored-table columns."""
    rows = []
    for raw in outputs:
        item = _as_dict(raw)
        differential = [_as_dict(d) for d in item["differential"]]
        severity = _as_dict(item["severity"])
        level_proba = dict(severity["probabilities"])
        known = {d["code"]: float(d["probability"]) for d in differential}
        row = {
            "ranked_codes": [str(d["code"]) for d in differential],
            "ranked_probabilities": [float(d["probability"]) for d in differential],
            "p_rare": float(item["p_rare"]),
            "severity_pred": str(severity["level"]),
        }
        row |= {
            f"p_severity__{level}": float(level_proba.get(level, 0.0)) for level in SEVERITY_LEVELS
        }
        row |= {f"p_common__{code}": known.get(code, 0.0) for code in classes}
        rows.append(row)
    return pd.DataFrame(rows, index=index)


def _full_probabilities(
    predictor: Any,
    frame: pd.DataFrame,
    X: pd.DataFrame,
    tables: dict[str, pd.DataFrame] | None,
    rare_ids: list[str],
) -> pd.DataFrame:
    """``frame`` with P(d | common) of every common class (not truncated by top_k) and
    P(rare) · P(d | rare) of ``rare_ids`` when the predictor offers them."""
    if hasattr(predictor, "predict_arrays"):
        arrays = predictor.predict_arrays(X)
        columns = [f"p_common__{c}" for c in arrays["common_classes"]]
        frame[columns] = np.asarray(arrays["common"], dtype=float)
    if rare_ids and hasattr(predictor, "rare_disease_probabilities"):
        columns = [f"{RARE_PREFIX}{d}" for d in rare_ids]
        frame[columns] = predictor.rare_disease_probabilities(X, list(rare_ids), tables=tables)
    return frame


def split_tables(
    tables: dict[str, pd.DataFrame], encounter_ids: list[str]
) -> dict[str, pd.DataFrame]:
    """The warehouse tables restricted to ``encounter_ids``; ``encounters`` in that order."""
    wanted = pd.Index([str(e) for e in encounter_ids], name="encounter_id")
    out = {}
    for name, frame in tables.items():
        if "encounter_id" not in frame.columns:
            out[name] = frame
            continue
        keep = frame[frame["encounter_id"].astype(str).isin(wanted)]
        out[name] = keep.reset_index(drop=True)
    encounters = out["encounters"].assign(encounter_id=lambda f: f["encounter_id"].astype(str))
    missing = wanted.difference(pd.Index(encounters["encounter_id"]))
    if len(missing):
        raise ValueError(
            f"evaluation: {len(missing)} encounter(s) of the split are not in the warehouse "
            f"tables, e.g. {list(missing[:3])}"
        )
    out["encounters"] = encounters.drop_duplicates("encounter_id").set_index("encounter_id")
    out["encounters"] = out["encounters"].loc[wanted].reset_index()
    return out


def modality_patterns(tables: dict[str, pd.DataFrame], encounter_ids: list[str]) -> pd.Series:
    """Which inputs each encounter has, from the tables with rows for it: ``symptoms_only``
    (no vital sign, no lab), ``with_vitals`` (vitals, no lab), ``with_labs`` (labs, no
    vital sign) or ``all`` (both)."""
    ids = pd.Index([str(e) for e in encounter_ids])
    has = {
        name: ids.isin(tables[name]["encounter_id"].astype(str)) if name in tables else False
        for name in ("vitals", "labs")
    }
    vitals, labs = np.asarray(has["vitals"]), np.asarray(has["labs"])
    pattern = np.select(
        [vitals & labs, vitals, labs], ["all", "with_vitals", "with_labs"], "symptoms_only"
    )
    return pd.Series(pattern, index=ids, name="modality")


def score_tables(
    predictor: Any,
    tables: dict[str, pd.DataFrame],
    encounter_ids: list[str],
    *,
    top_k: int,
    batch_size: int,
    desc: str,
    rare_ids: list[str] = (),
) -> pd.DataFrame:
    """Predictor outputs for ``encounter_ids`` through ``predictor.predict_tables`` on their
    warehouse tables — the path the service runs (``predict_records`` builds the same
    tables) — in batches; index = encounter id, plus the full probabilities of
    :func:`_full_probabilities` from the same feature rows."""
    classes = common_classes(predictor)
    ids = [str(e) for e in encounter_ids]
    parts = []
    starts = range(0, len(ids), batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=len(starts) < 2):
        batch_ids = ids[start : start + batch_size]
        batch = split_tables(tables, batch_ids)
        outputs = predictor.predict_tables(batch, top_k=top_k, explain=False)
        returned = [str(_as_dict(o)["encounter_id"]) for o in outputs]
        if returned != batch_ids:
            raise ValueError("evaluation: predict_tables answered for other encounters")
        frame = predictions_to_frame(list(outputs), pd.Index(batch_ids), classes)
        X = predictor.feature_builder.transform(batch).reindex(pd.Index(batch_ids))
        parts.append(_full_probabilities(predictor, frame, X, batch, rare_ids))
    if not parts:
        return predictions_to_frame([], pd.Index(ids), classes)
    return pd.concat(parts)


def feature_matrix(split: pd.DataFrame, feature_names: list[str], name: str) -> pd.DataFrame:
    """The split's model features (float, index = encounter id); clear error if some lack."""
    missing = [c for c in feature_names if c not in split.columns]
    if missing:
        raise ValueError(f"{name}: missing {len(missing)} feature column(s), e.g. {missing[:5]}")
    return split.set_index("encounter_id")[list(feature_names)].astype(float)


def demographics(split: pd.DataFrame, subgroups: dict[str, Any]) -> pd.DataFrame:
    """``sex`` and ``age_years`` of each encounter from the feature columns named in
    ``subgroups`` (``age_column``; ``sex_columns``: sex → 0/1 column); neither flag → other."""
    columns = [subgroups["age_column"], *subgroups["sex_columns"].values()]
    missing = [c for c in columns if c not in split.columns]
    if missing:
        raise ValueError(f"evaluation.subgroups: feature column(s) {missing} not in the split")
    sex = pd.Series("other/unknown", index=split.index)
    for value, column in subgroups["sex_columns"].items():
        sex = sex.mask(split[column] == 1, value)
    return pd.DataFrame({"sex": sex, "age_years": split[subgroups["age_column"]].astype(float)})


def score_split(
    predictor: Any,
    split: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    params: dict[str, Any],
    name: str = "split",
) -> pd.DataFrame:
    """The scored table of one split (see the module docstring), scored from the split's
    warehouse tables, with the ``modality`` pattern of each encounter."""
    ids = split["encounter_id"].astype(str).tolist()
    rare_ids = sorted(split.loc[split["label_category"] == "RARE", "label_disease"].unique())
    scored = score_tables(
        predictor,
        tables,
        ids,
        top_k=int(params["scoring_top_k"]),
        batch_size=int(params["batch_size"]),
        desc=f"evaluation: scoring {name}",
        rare_ids=[str(d) for d in rare_ids],
    )
    labels = split[list(LABEL_COLUMNS)].reset_index(drop=True)
    extra = demographics(split, params["subgroups"]).reset_index(drop=True)
    extra["modality"] = modality_patterns(tables, ids).to_numpy()
    return pd.concat([labels, extra, scored.reset_index(drop=True)], axis=1)


def score_test_split(
    predictor: Any,
    model_input_test: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    params: dict[str, Any],
) -> pd.DataFrame:
    """Scored test split (``model_output_test_predictions``)."""
    return score_split(predictor, model_input_test, prm_evaluation_tables, params, "test")


def score_calibration_split(
    predictor: Any,
    model_input_calibration: pd.DataFrame,
    prm_evaluation_tables: dict[str, pd.DataFrame],
    params: dict[str, Any],
) -> pd.DataFrame:
    """Scored calibration split: where the operating thresholds are chosen."""
    return score_split(
        predictor, model_input_calibration, prm_evaluation_tables, params, "calibration"
    )
