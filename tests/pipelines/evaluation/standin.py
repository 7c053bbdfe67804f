"""A small stand-in for the features and models: synthetic splits and a predictor with
the DiseasePredictor interface (``common_model``, ``predict_features``,
``predict_records``), so evaluation, drift and packaging can be tested on their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from disease_pipeline.records import records_to_tables

COMMON = ["J18.9", "J06.9", "I10", "K35.8"]
RARE = ["ORPHA:558", "OMIM:219700"]
LEVELS = ["low", "moderate", "high", "critical"]
INFORMATIVE = [f"f{i}" for i in range(6)]
FEATURES = ["age_years", "sex_female", "sex_male", *INFORMATIVE, "noise"]


def make_split(n: int, seed: int, start: str, shift: float = 0.0) -> pd.DataFrame:
    """``n`` labelled encounters in the model_input layout; ``shift`` moves ``noise``."""
    rng = np.random.default_rng(seed)
    codes = COMMON + RARE
    weights = np.array([0.3, 0.3, 0.2, 0.14, 0.03, 0.03])
    disease = rng.choice(len(codes), size=n, p=weights / weights.sum())
    X = rng.normal(size=(n, len(INFORMATIVE)))
    X[np.arange(n), disease] += 2.5
    acuity = rng.uniform(size=n)
    X[:, 5] += 3 * acuity
    sex = rng.choice(["female", "male"], size=n)
    frame = pd.DataFrame(X, columns=INFORMATIVE)
    frame.insert(0, "sex_male", (sex == "male").astype(float))
    frame.insert(0, "sex_female", (sex == "female").astype(float))
    frame.insert(0, "age_years", rng.uniform(1, 90, size=n).round())
    frame["noise"] = rng.normal(shift, 1, size=n)
    labels = pd.DataFrame(
        {
            "encounter_id": [f"e{seed}-{i}" for i in range(n)],
            "patient_id": [f"p{seed}-{i // 2}" for i in range(n)],
            "start": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="h"),
            "label_disease": np.asarray(codes)[disease],
            "label_category": np.where(disease >= len(COMMON), "RARE", "COMMON"),
            "label_severity": np.asarray(LEVELS)[np.minimum((acuity * 4).astype(int), 3)],
        }
    )
    return pd.concat([labels, frame], axis=1)


class StandInBuilder:
    """Feature builder with the project's interface (``feature_names``, ``transform``)."""

    feature_names = FEATURES

    def transform(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        enc = tables["encounters"].set_index("encounter_id")
        out = pd.DataFrame(0.0, index=enc.index, columns=FEATURES)
        out["age_years"] = enc["age_years"].astype(float)
        out["sex_female"] = (enc["sex"] == "female").astype(float)
        out["sex_male"] = (enc["sex"] == "male").astype(float)
        counts = tables["symptoms"].groupby("encounter_id").size()
        out["f0"] = counts.reindex(enc.index).fillna(0).to_numpy(float)
        return out


class CommonModel:
    """XGBoost wrapped with string ``classes_`` (like the project's common model)."""

    def __init__(self, classes: list[str]) -> None:
        self.classes_ = np.asarray(classes)
        self.model = XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, random_state=0)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> CommonModel:
        self.model.fit(X, y.map({c: i for i, c in enumerate(self.classes_)}))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)


class StandInPredictor:
    """Predictor with the DiseasePredictor interface used by evaluation and serving."""

    def __init__(self, train: pd.DataFrame, builder: StandInBuilder | None = None) -> None:
        self.builder = builder or StandInBuilder()
        X = train[FEATURES]
        common = train["label_category"] == "COMMON"
        self.common_model = CommonModel(COMMON).fit(X[common], train.loc[common, "label_disease"])
        self.gate_model = XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(
            X, (train["label_category"] == "RARE").astype(int)
        )
        self.severity_model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000)
        ).fit(X.fillna(0), train["label_severity"].map(LEVELS.index))

    def predict_arrays(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            "common_classes": np.asarray(COMMON),
            "common": self.common_model.predict_proba(X[FEATURES]),
        }

    def predict_features(self, X: pd.DataFrame, top_k: int = 5) -> list[dict]:
        X = X[FEATURES]
        p_common = self.common_model.predict_proba(X)
        p_rare = self.gate_model.predict_proba(X)[:, 1]
        p_severity = self.severity_model.predict_proba(X.fillna(0))
        outputs = []
        for i in range(len(X)):
            scores = {c: (1 - p_rare[i]) * p for c, p in zip(COMMON, p_common[i], strict=True)}
            scores |= {c: p_rare[i] / len(RARE) for c in RARE}
            ranked = sorted(scores.items(), key=lambda item: -item[1])[:top_k]
            outputs.append(
                {
                    "encounter_id": str(X.index[i]),
                    "differential": [
                        {
                            "code": c,
                            "name": c,
                            "category": "RARE" if c in RARE else "COMMON",
                            "probability": float(p),
                        }
                        for c, p in ranked
                    ],
                    "p_rare": float(p_rare[i]),
                    "severity": {
                        "level": LEVELS[int(np.argmax(p_severity[i]))],
                        "probabilities": dict(zip(LEVELS, map(float, p_severity[i]), strict=True)),
                    },
                    "explanation": [],
                }
            )
        return outputs

    def predict_records(self, records: list, top_k: int = 5) -> list[dict]:
        return self.predict_features(self.builder.transform(records_to_tables(records)), top_k)


def run_in_memory(pipeline, data: dict) -> dict:
    """Run ``pipeline`` with SequentialRunner on in-memory ``data``; every dataset of the
    pipeline stays loadable afterwards (returned as a dict)."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class KeptDataset(MemoryDataset):
        def _release(self) -> None:  # keep intermediate outputs for the assertions
            pass

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
