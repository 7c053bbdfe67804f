"""Synthetic model_input matrices (same columns as the features pipeline's splits) with
separable diseases and a severity driven by a hidden acuity, and an in-memory pipeline
runner, for the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from disease_pipeline.pipelines.features.nodes import REGISTRY_CASE_COLUMNS

COMMON = ["J18.9", "J06.9", "I10", "K35.8", "E11.9"]
RARE = ["ORPHA:558", "OMIM:219700"]
LEVELS = ["low", "moderate", "high", "critical"]
#: one informative symptom column per disease (real HPO ids: fever, cough, hypertension,
#: abdominal pain, polyuria, arachnodactyly, recurrent infections)
SYMPTOMS = [
    "hpo_HP_0001945",
    "hpo_HP_0012735",
    "hpo_HP_0000822",
    "hpo_HP_0002027",
    "hpo_HP_0000103",
    "hpo_HP_0001166",
    "hpo_HP_0002719",
]
FEATURES = [
    "age_years",
    "sex_female",
    "sex_male",
    *SYMPTOMS,
    "hpo_not_HP_0002315",
    "vitals_heart_rate_mean",
    "labs_crp_max",
    "news2",
    "noise",
]


def make_matrix(
    n: int,
    seed: int = 0,
    start: str = "2022-01-01",
    rare_share: float = 0.05,
    separation: float = 2.5,
) -> pd.DataFrame:
    """``n`` labelled encounters: each disease raises its own symptom column by
    ``separation`` (plus noise); acuity drives heart rate, CRP, NEWS2 and the severity."""
    rng = np.random.default_rng(seed)
    codes = COMMON + RARE
    common_p = np.array([0.35, 0.25, 0.2, 0.12, 0.08]) * (1 - rare_share)
    p = np.concatenate([common_p, np.full(len(RARE), rare_share / len(RARE))])
    disease = rng.choice(len(codes), size=n, p=p)
    symptoms = rng.normal(size=(n, len(SYMPTOMS)))
    symptoms[np.arange(n), disease] += separation
    acuity = rng.uniform(size=n)
    sex = rng.choice(["female", "male"], size=n)
    frame = pd.DataFrame(symptoms, columns=SYMPTOMS)
    frame.insert(0, "sex_male", (sex == "male").astype(float))
    frame.insert(0, "sex_female", (sex == "female").astype(float))
    frame.insert(0, "age_years", rng.uniform(1, 90, size=n).round())
    frame["hpo_not_HP_0002315"] = (rng.uniform(size=n) < 0.2).astype(float)
    frame["vitals_heart_rate_mean"] = 70 + 50 * acuity + rng.normal(0, 8, size=n)
    frame["labs_crp_max"] = np.where(
        rng.uniform(size=n) < 0.3, np.nan, 5 + 150 * acuity + rng.normal(0, 20, size=n)
    )
    frame["news2"] = np.round(8 * acuity + rng.normal(0, 1, size=n)).clip(0, 20)
    frame["noise"] = rng.normal(size=n)
    level = np.minimum((acuity * 4).astype(int), 3)
    labels = pd.DataFrame(
        {
            "encounter_id": [f"e{seed}-{i}" for i in range(n)],
            "patient_id": [f"p{seed}-{i // 2}" for i in range(n)],
            "start": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n) * 3, unit="h"),
            "label_disease": np.asarray(codes)[disease],
            "label_category": np.where(disease >= len(COMMON), "RARE", "COMMON"),
            "label_severity": np.asarray(LEVELS)[level],
        }
    )
    return pd.concat([labels, frame], axis=1)


def load_parameters(name: str, env: str = "test") -> dict:
    """The ``<name>`` parameter block of ``env`` (conf/base merged with conf/<env>)."""
    from tests.conftest import env_parameters

    return env_parameters(env)[name]


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so every output stays readable."""

    def _release(self) -> None:
        pass


def param_entries(prefix: str, value) -> dict:
    """``params:a``, ``params:a.b`` … entries for every nested key, as Kedro provides them."""
    out = {f"params:{prefix}": value}
    if isinstance(value, dict):
        for key, inner in value.items():
            out |= param_entries(f"{prefix}.{key}", inner)
    return out


def run_in_memory(pipeline, data: dict) -> dict:
    """Run ``pipeline`` with SequentialRunner on ``data``; returns every non-input dataset."""
    catalog = DataCatalog(
        {
            name: KeptDataset(data[name], copy_mode="assign")
            if name in data
            else KeptDataset(copy_mode="assign")
            for name in pipeline.datasets()
        }
    )
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.datasets() if name not in data}


def without_query_rows(params: dict) -> dict:
    """``common_model`` parameters without the query-style rows: they are built by a
    FeatureBuilder, and a synthetic matrix's columns are not a builder's."""
    return {**params, "query_rows": {**params["query_rows"], "enabled": False}}


def run_training(pipeline, name: str, params: dict, train: pd.DataFrame) -> dict:
    """Run a model pipeline on ``train`` (``model_input_train``) with the ``name`` parameter
    block as Kedro passes it; returns every output (see :func:`run_in_memory`)."""
    if name == "common_model":
        params = without_query_rows(params)
    inputs = {"model_input_train": train} | param_entries(name, params)
    if name == "common_model":  # no registry case: the gate gets no query-style rows
        inputs |= {"feat_registry_cases": pd.DataFrame(columns=REGISTRY_COLUMNS)}
        inputs |= {"feat_builder": None}
    return run_in_memory(pipeline, inputs)


#: columns of ``feat_registry_cases``
REGISTRY_COLUMNS = list(REGISTRY_CASE_COLUMNS)
