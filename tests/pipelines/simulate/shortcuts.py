"""Single-signal shortcuts measured on the simulator's in-memory tables.

Each function scores encounters from ONE cheap signal (a term outside the common
catalogue, the number of findings, the onset, the age, which modalities were sent, one
lab, the number of absent findings) or fits the simplest
baseline (multinomial logistic regression) and returns how well that alone separates
the labels a model would train on (the recorded diagnosis). A realistic data set
keeps every single shortcut well below perfect; the tests gate them.

Works on any simulator version whose tables carry ``encounters`` (``category``,
``code``, ``start_s``, ``age_years``, ``sex``), ``symptoms`` (``encounter``, ``hpo_id``,
``present``, ``onset_days``) and ``vitals``/``labs`` (``encounter``, ``loinc``,
``canonical``), so the same code measures the old and the new simulator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from disease_pipeline.knowledge.catalogue import load_common_diseases


def two_sided_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC of ``score`` for ``y``, taking whichever direction separates better."""
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def catalogue_terms() -> set[str]:
    """Every HPO term the common-disease catalogue lists for any disease."""
    return {s["hpo"] for items in load_common_diseases()["symptoms"] for s in items}


def _is_rare(encounters: pd.DataFrame) -> np.ndarray:
    return (encounters["category"] == "RARE").to_numpy()


def out_of_catalogue(encounters: pd.DataFrame, symptoms: pd.DataFrame) -> dict[str, float]:
    """P(rare) from "any present term outside the common catalogue" (and from their count)."""
    present = symptoms[symptoms["present"]]
    outside = present[~present["hpo_id"].isin(catalogue_terms())]
    count = np.bincount(outside["encounter"].to_numpy(int), minlength=len(encounters))
    y = _is_rare(encounters)
    return {
        "any_outside_auroc": two_sided_auroc(y, count > 0),
        "count_outside_auroc": two_sided_auroc(y, count),
        "common_with_outside": float((count[~y] > 0).mean()),
        "rare_with_outside": float((count[y] > 0).mean()),
    }


def present_count(encounters: pd.DataFrame, symptoms: pd.DataFrame) -> float:
    """P(rare) from the number of recorded present findings."""
    present = symptoms.loc[symptoms["present"], "encounter"].to_numpy(int)
    return two_sided_auroc(_is_rare(encounters), np.bincount(present, minlength=len(encounters)))


def age_alone(encounters: pd.DataFrame) -> float:
    """P(rare) from the patient's age."""
    return two_sided_auroc(_is_rare(encounters), encounters["age_years"].to_numpy(float))


def modality_pattern(
    encounters: pd.DataFrame, vitals: pd.DataFrame, labs: pd.DataFrame
) -> dict[str, float]:
    """P(rare) from which inputs were sent: the pattern as an ordinal score (symptoms only
    < vitals < vitals and labs), and the number of distinct labs measured."""
    n = len(encounters)
    has_vitals = np.zeros(n, bool)
    has_vitals[vitals["encounter"].to_numpy(int)] = True
    n_labs = labs.groupby("encounter")["loinc"].nunique().reindex(range(n), fill_value=0)
    has_labs = n_labs.to_numpy() > 0
    y = _is_rare(encounters)
    return {
        "pattern_auroc": two_sided_auroc(y, has_vitals.astype(int) + 2 * has_labs),
        "labs_measured_auroc": two_sided_auroc(y, n_labs.to_numpy(float)),
    }


def onset_alone(encounters: pd.DataFrame, symptoms: pd.DataFrame) -> float:
    """P(rare) from the longest recorded onset (days; none recorded = -1)."""
    known = symptoms[symptoms["present"] & (symptoms["onset_days"] >= 0)]
    longest = known.groupby("encounter")["onset_days"].max()
    score = longest.reindex(range(len(encounters)), fill_value=-1).to_numpy(float)
    return two_sided_auroc(_is_rare(encounters), score)


def absent_count(encounters: pd.DataFrame, symptoms: pd.DataFrame) -> float:
    """P(rare) from the number of explicitly absent findings."""
    absent = symptoms.loc[~symptoms["present"], "encounter"].to_numpy(int)
    count = np.bincount(absent, minlength=len(encounters))
    return two_sided_auroc(_is_rare(encounters), count)


def absent_names_diagnosis(encounters: pd.DataFrame, symptoms: pd.DataFrame) -> float:
    """Top-1 of "the disease whose catalogue list holds most of the absent findings",
    over common encounters with at least one absent finding (ties count as misses)."""
    catalogue = load_common_diseases()
    codes = catalogue["icd10"].to_numpy()
    vocab = {s["hpo"]: [] for items in catalogue["symptoms"] for s in items}
    for d, items in enumerate(catalogue["symptoms"]):
        for s in items:
            vocab[s["hpo"]].append(d)
    absent = symptoms[~symptoms["present"] & symptoms["hpo_id"].isin(vocab)]
    common = set(np.flatnonzero(~_is_rare(encounters)))
    hits, total = 0, 0
    for enc, group in absent.groupby("encounter"):
        if enc not in common:
            continue
        votes = np.zeros(len(codes))
        for term in group["hpo_id"]:
            votes[vocab[term]] += 1
        total += 1
        best = np.flatnonzero(votes == votes.max())
        hits += len(best) == 1 and codes[best[0]] == encounters.at[enc, "code"]
    return hits / max(total, 1)


def lab_alone(
    encounters: pd.DataFrame, measurements: pd.DataFrame, *, min_cases: int = 30
) -> dict[str, float | str]:
    """Best single measurement as a one-vs-rest score of one common disease (two-sided
    AUROC over the common encounters where it was measured), and best one for P(rare)."""
    codes = encounters["code"].to_numpy()
    rare = _is_rare(encounters)
    best = (0.5, "", "")
    best_rare = (0.5, "")
    for loinc, group in measurements.groupby("loinc"):
        enc = group["encounter"].to_numpy(int)
        value = group["canonical"].to_numpy(float)
        if rare[enc].any() and (~rare[enc]).any():
            best_rare = max(best_rare, (two_sided_auroc(rare[enc], value), str(loinc)))
        keep = ~rare[enc]
        enc, value = enc[keep], value[keep]
        counts = pd.Series(codes[enc]).value_counts()
        for code in counts.index[(counts >= min_cases) & (counts < len(enc))]:
            best = max(best, (two_sided_auroc(codes[enc] == code, value), str(loinc), code))
    return {
        "auroc": best[0],
        "loinc": best[1],
        "code": best[2],
        "rare_auroc": best_rare[0],
        "rare_loinc": best_rare[1],
    }


def _design(
    encounters: pd.DataFrame, symptoms: pd.DataFrame, measurements: pd.DataFrame, n_terms: int
) -> np.ndarray:
    """Present/absent indicators of the most frequent terms, measurements (mean-imputed,
    with missing flags), age, sex and the longest onset."""
    n = len(encounters)
    top = symptoms["hpo_id"].value_counts().index[:n_terms]
    column = {t: j for j, t in enumerate(top)}
    sym = symptoms[symptoms["hpo_id"].isin(column)]
    terms = np.zeros((n, 2 * len(top)))
    j = sym["hpo_id"].map(column).to_numpy() + np.where(sym["present"], 0, len(top))
    terms[sym["encounter"].to_numpy(int), j] = 1.0
    wide = measurements.pivot_table(
        index="encounter", columns="loinc", values="canonical", aggfunc="mean"
    ).reindex(range(n))
    missing = wide.isna().to_numpy(float)
    values = wide.fillna(wide.mean()).fillna(0.0).to_numpy(float)
    onset = symptoms[symptoms["present"] & (symptoms["onset_days"] >= 0)]
    longest = onset.groupby("encounter")["onset_days"].max().reindex(range(n))
    extra = np.column_stack(
        [
            encounters["age_years"].to_numpy(float),
            (encounters["sex"] == "male").to_numpy(float),
            np.log1p(longest.fillna(-1).to_numpy(float) + 1),
            longest.isna().to_numpy(float),
        ]
    )
    return np.hstack([terms, values, missing, extra])


def logistic_top1(
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    measurements: pd.DataFrame,
    *,
    n_terms: int = 200,
    train_share: float = 0.7,
) -> float:
    """Common top-1 of a multinomial logistic regression trained on the earliest
    ``train_share`` of common encounters (by time) and tested on the rest."""
    x = _design(encounters, symptoms, measurements, n_terms)
    common = np.flatnonzero(~_is_rare(encounters))
    order = common[np.argsort(encounters["start_s"].to_numpy()[common], kind="stable")]
    cut = int(train_share * len(order))
    train, test = order[:cut], order[cut:]
    y = encounters["code"].to_numpy()
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression(max_iter=300, C=0.5)
    model.fit(scaler.transform(x[train]), y[train])
    return float((model.predict(scaler.transform(x[test])) == y[test]).mean())


def severity_logistic_auroc(
    encounters: pd.DataFrame,
    symptoms: pd.DataFrame,
    measurements: pd.DataFrame,
    *,
    n_terms: int = 100,
    train_share: float = 0.7,
) -> float:
    """AUROC for high/critical severity of a logistic regression on the same design,
    trained on the earliest ``train_share`` of encounters and tested on the rest."""
    x = _design(encounters, symptoms, measurements, n_terms)
    y = encounters["severity"].isin(["high", "critical"]).to_numpy()
    order = np.argsort(encounters["start_s"].to_numpy(), kind="stable")
    cut = int(train_share * len(order))
    train, test = order[:cut], order[cut:]
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression(max_iter=300).fit(scaler.transform(x[train]), y[train])
    return float(roc_auc_score(y[test], model.predict_proba(scaler.transform(x[test]))[:, 1]))


def measure_all(tables: dict[str, pd.DataFrame]) -> dict[str, float | str]:
    """Every shortcut figure of one simulated cohort (``encounters``, ``symptoms``,
    ``vitals``, ``labs``), as a flat dict."""
    enc, sym = tables["encounters"], tables["symptoms"]
    measurements = pd.concat([tables["vitals"], tables["labs"]], ignore_index=True)
    outside = out_of_catalogue(enc, sym)
    lab = lab_alone(enc, tables["labs"])
    return {
        **outside,
        "present_count_auroc": present_count(enc, sym),
        "age_auroc": age_alone(enc),
        **modality_pattern(enc, tables["vitals"], tables["labs"]),
        "onset_auroc": onset_alone(enc, sym),
        "absent_count_auroc": absent_count(enc, sym),
        "absent_names_diagnosis_top1": absent_names_diagnosis(enc, sym),
        "lab_alone_auroc": lab["auroc"],
        "lab_alone_pair": f"{lab['loinc']} for {lab['code']}",
        "lab_alone_rare_auroc": lab["rare_auroc"],
        "logistic_common_top1": logistic_top1(enc, sym, measurements),
        "severity_logistic_auroc": severity_logistic_auroc(enc, sym, measurements),
    }
