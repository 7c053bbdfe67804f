"""A small simulated world in warehouse tables, and predictors really trained on it.

Encounters of six common and three rare diseases are written as the warehouse tables
(``encounters``, ``symptoms``, ``vitals``, ``labs``, ``diagnoses``) with real HPO ids and
LOINC codes, so the project's ``DiseasePredictor`` scores them through ``predict_tables``
and ``predict_records`` exactly as in production. A third of the encounters are
symptoms-only; some diseases share their symptoms and differ only in vital signs and
CRP (skewed, so trees beat a linear model), and headache diseases differ by age in a
non-monotone way. Rare encounters show a few terms of their disease, like published
cases, while the rare annotations list many frequent terms: a naive-Bayes knowledge
scorer that reads "not reported" as absent ranks them worse than a one-sided
best-match baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from disease_pipeline.pipelines.evaluation.intervals import paired_mean_difference
from disease_pipeline.predictor.bundle import DiseasePredictor
from disease_pipeline.records import SYMPTOM_COLUMNS

T = {
    "fever": "HP:0001945", "cough": "HP:0012735", "dyspnea": "HP:0002094",
    "fatigue": "HP:0012378", "headache": "HP:0002315", "nausea": "HP:0002018",
    "vomiting": "HP:0002013", "diarrhea": "HP:0002014", "abdominal_pain": "HP:0002027",
    "arthralgia": "HP:0002829", "seizure": "HP:0001250", "short_stature": "HP:0004322",
    "hearing": "HP:0000365", "intellectual": "HP:0001249", "hepatomegaly": "HP:0002240",
    "splenomegaly": "HP:0001744", "rash": "HP:0000988",
}  # fmt: skip
HR, CRP = "8867-4", "1988-5"
#: code -> (symptom frequencies, heart-rate shift, CRP shift, (age low, age high))
COMMON = {
    "J06.9": ({"fever": .5, "cough": .8, "fatigue": .4, "headache": .3}, 0.0, 0.3, (1, 90)),
    "J18.9": ({"fever": .8, "cough": .8, "fatigue": .5, "dyspnea": .4}, 1.5, 2.5, (1, 90)),
    "A09": ({"diarrhea": .9, "vomiting": .6, "nausea": .6, "abdominal_pain": .5}, .5, .5, (1, 90)),
    "K35.8": ({"abdominal_pain": .9, "nausea": .6, "vomiting": .5, "fever": .4}, 0.8, 2.5, (1, 90)),
    "G43.9": ({"headache": .95, "nausea": .5, "vomiting": .3}, 0.0, 0.0, (18, 50)),
    "G44.2": ({"headache": .95, "nausea": .5, "fatigue": .3}, 0.0, 0.0, (50, 90)),
}  # fmt: skip
COMMON_WEIGHTS = np.array([0.25, 0.15, 0.2, 0.1, 0.15, 0.15])
#: code -> (what cases show: term frequencies, the annotation the knowledge reads)
RARE = {
    "ORPHA:558": ({"short_stature": .7, "hearing": .4}, ["short_stature", "hearing",
                  "intellectual", "rash", "hepatomegaly", "arthralgia"]),
    "OMIM:219700": ({"hepatomegaly": .9, "splenomegaly": .9}, ["hepatomegaly", "splenomegaly"]),
    "ORPHA:79318": ({"seizure": .95, "intellectual": .6}, ["seizure", "intellectual",
                    "splenomegaly"]),
}  # fmt: skip
RARE_SHARE = 0.08
LEVELS = ("low", "moderate", "high", "critical")
PATTERNS = {"symptoms_only": 0.35, "with_vitals": 0.2, "with_labs": 0.1, "all": 0.35}
PHENOTYPES = [f"hpo_{name}" for name in T]
FEATURES = ["age_years", "sex_female", "sex_male", *PHENOTYPES, "hr", "crp"]


def make_world(n: int, seed: int, start: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """``n`` encounters: (warehouse tables, labels in the model_input columns)."""
    rng = np.random.default_rng(seed)
    codes = [*COMMON, *RARE]
    weights = np.concatenate(
        [COMMON_WEIGHTS * (1 - RARE_SHARE), np.full(len(RARE), RARE_SHARE / len(RARE))]
    )
    enc, sym, vit, lab, labels = [], [], [], [], []
    for i in range(n):
        code = codes[rng.choice(len(codes), p=weights)]
        eid = f"w{seed}-{i}"
        acuity = rng.uniform()
        if code in COMMON:
            freqs, hr_shift, crp_shift, (lo, hi) = COMMON[code]
            age = rng.uniform(lo, hi)
            present = [t for t, f in freqs.items() if rng.uniform() < f]
            present += [t for t in ("fatigue", "headache", "cough") if rng.uniform() < 0.05]
        else:
            shown, _ = RARE[code]
            age, hr_shift, crp_shift = rng.uniform(1, 60), 0.3, 0.3
            present = [t for t, f in shown.items() if rng.uniform() < f] or [next(iter(shown))]
            present += ["fever"] if rng.uniform() < 0.3 else []
        pattern = rng.choice(list(PATTERNS), p=list(PATTERNS.values()))
        enc.append(
            {
                "encounter_id": eid,
                "patient_id": f"p{seed}-{i}",
                "source": "world",
                "start": pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=i),
                "encounter_class": "AMB",
                "age_years": float(round(age)),
                "age_90_plus": False,
                "sex": str(rng.choice(["female", "male"])),
            }
        )
        sym += [(eid, T[t], True, None, None, "world", "HPO", T[t]) for t in dict.fromkeys(present)]
        if pattern in ("with_vitals", "all"):
            value = 75 + 12 * hr_shift + 25 * acuity + 8 * rng.normal()
            vit.append((eid, HR, round(float(value), 1), "/min"))
        if pattern in ("with_labs", "all"):
            value = np.exp(1.0 + crp_shift + 0.6 * rng.normal())
            lab.append((eid, CRP, round(float(value), 2), "mg/L"))
        level = LEVELS[min(int(acuity * 4 + 0.3 * rng.normal()), 3) if acuity > 0.05 else 0]
        labels.append(
            (
                eid,
                f"p{seed}-{i}",
                enc[-1]["start"],
                code,
                "RARE" if code in RARE else "COMMON",
                level,
            )
        )
    tables = {
        "encounters": pd.DataFrame(enc),
        "symptoms": pd.DataFrame(sym, columns=SYMPTOM_COLUMNS),
        "vitals": pd.DataFrame(vit, columns=["encounter_id", "loinc", "value", "unit"]),
        "labs": pd.DataFrame(lab, columns=["encounter_id", "loinc", "value", "unit"]),
        "diagnoses": pd.DataFrame(columns=["encounter_id", "code", "system", "role"]),
    }
    columns = ["encounter_id", "patient_id", "start", "label_disease", "label_category"]
    return tables, pd.DataFrame(labels, columns=[*columns, "label_severity"])


class WorldBuilder:
    """Feature builder of the world (the project's interface: names and transform)."""

    feature_names = FEATURES

    def transform(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        enc = tables["encounters"].assign(encounter_id=lambda f: f["encounter_id"].astype(str))
        out = pd.DataFrame(index=pd.Index(enc["encounter_id"], name="encounter_id"))
        out["age_years"] = enc["age_years"].astype(float).to_numpy()
        out["sex_female"] = (enc["sex"] == "female").astype(float).to_numpy()
        out["sex_male"] = (enc["sex"] == "male").astype(float).to_numpy()
        present = tables["symptoms"][tables["symptoms"]["present"].astype(bool)]
        for name, hpo in T.items():
            ids = set(present.loc[present["hpo_id"] == hpo, "encounter_id"].astype(str))
            out[f"hpo_{name}"] = out.index.isin(ids).astype(float)
        for column, table, loinc in (("hr", "vitals", HR), ("crp", "labs", CRP)):
            rows = tables[table][tables[table]["loinc"] == loinc]
            values = rows.groupby(rows["encounter_id"].astype(str))["value"].mean()
            out[column] = values.reindex(out.index).astype(float).to_numpy()
        return out


def model_input(tables: dict[str, pd.DataFrame], labels: pd.DataFrame) -> pd.DataFrame:
    """Labels and features of each encounter (the model_input_* layout)."""
    features = WorldBuilder().transform(tables).reset_index(drop=True)
    return pd.concat([labels.reset_index(drop=True), features], axis=1)


@dataclass
class Named:
    """A fitted estimator reading its own feature columns, with string ``classes_``."""

    estimator: object
    features: list[str]
    classes_: np.ndarray

    @property
    def feature_names(self) -> list[str]:
        return self.features

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        matrix = X[self.features].astype(float)
        if isinstance(self.estimator, LogisticRegression):
            matrix = matrix.fillna(0.0)
        return self.estimator.predict_proba(matrix)

    def class_contributions(self, X: pd.DataFrame, targets: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions (last column: bias) towards each row's target class."""
        import xgboost as xgb

        matrix = xgb.DMatrix(X[self.features].astype(float))
        values = self.estimator.get_booster().predict(matrix, pred_contribs=True)
        return values if values.ndim == 2 else values[np.arange(len(X)), np.asarray(targets)]


def _fit(estimator, X: pd.DataFrame, y: pd.Series, features: list[str]) -> Named:
    classes = np.asarray(sorted(y.unique()))
    target = y.map({c: i for i, c in enumerate(classes)}).to_numpy()
    matrix = X[features].astype(float)
    if isinstance(estimator, LogisticRegression):
        matrix = matrix.fillna(0.0)
    return Named(estimator.fit(matrix, target), features, classes)


def _xgb() -> XGBClassifier:
    return XGBClassifier(n_estimators=80, max_depth=3, learning_rate=0.2, n_jobs=1, random_state=0)


class LearnedRare:
    """Rare component learned from rare training encounters (phenotype features)."""

    def __init__(self, train: pd.DataFrame) -> None:
        rare = train[train["label_category"] == "RARE"]
        self.model = _fit(
            LogisticRegression(C=1.0, max_iter=500), rare, rare["label_disease"], PHENOTYPES
        )
        self.disease_ids = [str(c) for c in self.model.classes_]

    def scores(self, features: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(features)

    def rank(self, tables, features: pd.DataFrame) -> list[list[tuple[str, str, float]]]:
        proba = self.scores(features)
        return [
            [(d, d, float(p)) for d, p in zip(self.disease_ids, row, strict=True)] for row in proba
        ]

    def probabilities_of(self, tables, features: pd.DataFrame, ids: list[str]) -> np.ndarray:
        proba = self.scores(features)
        index = {d: j for j, d in enumerate(self.disease_ids)}
        return np.column_stack(
            [proba[:, index[d]] if d in index else np.zeros(len(features)) for d in ids]
        )


class KnowledgeRare(LearnedRare):
    """The knowledge scorer alone: naive Bayes over the annotations (frequency 0.9 each),
    reading a term that is not reported as absent."""

    def __init__(self) -> None:
        self.disease_ids = list(RARE)
        annotated = np.array([[float(t in RARE[d][1]) for t in T] for d in self.disease_ids])
        self.log_yes = np.log(np.where(annotated > 0, 0.9, 0.02))
        self.log_no = np.log(np.where(annotated > 0, 0.1, 0.98))

    def scores(self, features: pd.DataFrame) -> np.ndarray:
        x = features[PHENOTYPES].to_numpy(float)
        logits = x @ self.log_yes.T + (1 - x) @ self.log_no.T
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)


def train_predictor(
    train: pd.DataFrame, *, drop_phenotypes: bool = False, rare: str = "learned"
) -> DiseasePredictor:
    """The project's DiseasePredictor with models really fitted on ``train``."""
    features = [f for f in FEATURES if not (drop_phenotypes and f in PHENOTYPES)]
    common = train[train["label_category"] == "COMMON"]
    return DiseasePredictor(
        feature_builder=WorldBuilder(),
        common_model=_fit(_xgb(), common, common["label_disease"], features),
        gate_model=_fit(_xgb(), train, train["label_category"], features),
        severity_model=_fit(
            LogisticRegression(max_iter=500), train, train["label_severity"], features
        ),
        rare_model=LearnedRare(train) if rare == "learned" else KnowledgeRare(),
    )


class WorldKnowledge:
    """Stand-in of CommonKnowledgeScorer: naive Bayes over the catalogue's symptom
    frequencies, present terms only (not reported is not absent), prevalence prior."""

    classes = list(COMMON)

    def log_posterior(self, tables: dict[str, pd.DataFrame]) -> np.ndarray:
        x = WorldBuilder().transform(tables)[PHENOTYPES].to_numpy(float)
        freq = np.array([[COMMON[c][0].get(t, 0.03) for t in T] for c in self.classes])
        return np.log(COMMON_WEIGHTS)[None, :] + x @ np.log(freq).T


def registry_validation(predictor: DiseasePredictor, n: int, seed: int, protocol: str) -> dict:
    """Rare validation in the rare_model pipeline's format for registry-like cases of the
    world: top-1 of the predictor's rare component (``hybrid``) and of a one-sided
    best-match baseline (``resnik_one_sided``: IC-weighted share of the patient's terms
    that the disease's annotation lists), with their paired bootstrap difference."""
    tables, labels = make_world(4 * n, seed, "2030-01-01")
    rare = labels["label_category"].eq("RARE").to_numpy()
    features = WorldBuilder().transform(tables)[rare].iloc[:n]
    truth = labels.loc[rare, "label_disease"].iloc[:n].to_numpy()
    ids = list(predictor.rare_model.disease_ids)
    hybrid = predictor.rare_model.probabilities_of(None, features, ids)
    annotated = np.array([[float(t in RARE[d][1]) for t in T] for d in ids])
    ic = -np.log(annotated.mean(axis=0).clip(1 / len(ids)))
    x = features[PHENOTYPES].to_numpy(float)
    resnik = (x * ic) @ annotated.T / np.maximum(x.sum(axis=1, keepdims=True), 1)
    j = np.array([ids.index(t) for t in truth])

    def top1(scores: np.ndarray) -> np.ndarray:
        mine = scores[np.arange(len(j)), j][:, None]
        ranks = 1 + (scores > mine).sum(1) + ((scores == mine).sum(1) - 1) / 2
        return (ranks <= 1).astype(float)

    diff = paired_mean_difference("d", top1(hybrid), top1(resnik), n_boot=200, seed=0, level=0.95)
    difference = {"difference": diff["d"], "interval": [diff["d.ci_low"], diff["d.ci_high"]]}
    return {
        "protocols": {
            protocol: {
                "metrics": {"hybrid": {"top1": top1(hybrid).mean()}},
                "bootstrap": {
                    "difference_to": "resnik_one_sided",
                    "differences": {"hybrid": {"top1": difference}},
                },
            }
        }
    }
