"""Clinical words for feature columns, and the top contributions of one prediction.

Feature names follow docs/data_contracts.md ("Feature column families"): ``hpo_HP_0001945``
→ "Fever", ``hpo_not_HP_0002315`` → "no Headache (explicitly absent)",
``labs_crp_max`` → "C-reactive protein (max)", ``news2`` → "NEWS2 score", …
"""

from __future__ import annotations

import re

import numpy as np

_HPO = re.compile(r"^hpo_(not_)?HP_?(\d{7})$")
_MEASURE = re.compile(r"^(vitals|labs)_(.+)_(mean|min|max)$")
_SYMPTOM_AGGREGATE = re.compile(r"^symptoms_(severity|onset_days)_(mean|min|max)$")
_FLAGS = ("acute_onset", "chronic_onset", "news2_red_flag", "news2_observed")
_FIXED = {
    "age_years": "age (years)",
    "sex_female": "female sex",
    "sex_male": "male sex",
    "news2": "NEWS2 score",
    "news2_red_flag": "NEWS2 red flag (one vital scoring 3)",
    "news2_observed": "NEWS2 vitals observed",
    "qsofa": "qSOFA score",
    "month": "month of the encounter",
    "season_sin": "season",
    "season_cos": "season",
    "onset_spread_days": "spread of symptom onsets (days)",
    "acute_onset": "acute onset (within a week)",
    "chronic_onset": "chronic course (over 90 days)",
    "age_x_max_severity": "age x worst symptom severity",
    "symptoms_count": "number of symptoms recorded",
    "symptoms_present_sum": "number of symptoms present",
    "symptoms_excluded_sum": "number of symptoms explicitly absent",
    "vitals_count": "number of vital signs",
    "labs_count": "number of lab results",
    "comorbidities_count": "number of comorbidities",
    "measured_vitals": "vital signs measured",
    "measured_labs": "lab results available",
}


def feature_labels(
    feature_names: list[str],
    hpo_names: dict[str, str],
    measurement_names: dict[str, str],
    disease_names: dict[str, str] | None = None,
) -> dict[str, str]:
    """Feature column → clinical words.

    Args:
        hpo_names: HPO id (``HP:0001945``) → term name.
        measurement_names: LOINC ``short`` label (``heart_rate``) → display name.
        disease_names: ICD-10 code or 3-character category → disease name (comorbidities).
    """
    disease_names = disease_names or {}
    return {
        name: _label(name, hpo_names, measurement_names, disease_names) for name in feature_names
    }


def _label(
    name: str,
    hpo_names: dict[str, str],
    measurement_names: dict[str, str],
    disease_names: dict[str, str],
) -> str:
    if name in _FIXED:
        return _FIXED[name]
    match = _HPO.match(name)
    if match:
        term = hpo_names.get(f"HP:{match.group(2)}", f"HP:{match.group(2)}")
        return f"no {term} (explicitly absent)" if match.group(1) else term
    match = _SYMPTOM_AGGREGATE.match(name)
    if match:
        what = "symptom severity (1-3)" if match.group(1) == "severity" else "days since onset"
        return f"{what} ({match.group(2)})"
    match = _MEASURE.match(name)
    if match:
        measured = measurement_names.get(match.group(2), match.group(2).replace("_", " "))
        return f"{measured} ({match.group(3)})"
    if name.startswith("missing_"):
        rest = name.removeprefix("missing_")
        return f"{measurement_names.get(rest, rest.replace('_', ' '))} not measured"
    if name.startswith("comorbidities_x_"):
        return f"comorbidities x {name.removeprefix('comorbidities_x_').replace('_', ' ')} symptoms"
    if name.startswith("comorbidity_"):
        code = comorbidity_code(name)
        return f"comorbidity: {disease_names.get(code, code)}"
    if name.startswith("knowledge_"):
        code = comorbidity_code(name.removeprefix("knowledge_"))
        return f"catalogue knowledge score of {disease_names.get(code, code)}"
    if name.startswith("symptoms_") and name.endswith("_count"):
        return f"{name[len('symptoms_') : -len('_count')].replace('_', ' ')} symptoms (count)"
    return name.replace("_", " ")


def comorbidity_code(feature: str) -> str:
    """ICD-10 code of a comorbidity flag: ``comorbidity_J18_9`` → ``J18.9`` (feature
    names replace the dot)."""
    text = feature.removeprefix("comorbidity_")
    return text.replace("_", ".", 1) if len(text) > 3 else text


def describe_value(name: str, value: float) -> str:
    """Short text of a feature value: "reported" / "not reported" for phenotype flags (a
    finding that was not reported is never called absent: only ``hpo_not_`` columns,
    findings sent as absent, say so), yes/no for other flags, else the number."""
    if value is None or not np.isfinite(value):
        return "not recorded"
    if _HPO.match(name):
        return "reported" if value >= 0.5 else "not reported"
    if name in _FLAGS or name.startswith(("comorbidity_", "sex_", "missing_", "measured_")):
        return "yes" if value >= 0.5 else "no"
    return f"{value:.4g}"


def top_contributions(
    contributions: np.ndarray,
    values: np.ndarray,
    feature_names: list[str],
    labels: dict[str, str],
    top_n: int,
) -> list[dict]:
    """The ``top_n`` features with the largest |contribution| (log-odds) for one row,
    each with its clinical label, value and direction (``increases`` / ``decreases``)."""
    order = np.argsort(-np.abs(contributions))[:top_n]
    items = []
    for j in order:
        contribution = float(contributions[j])
        if contribution == 0.0:
            break
        name = feature_names[j]
        label = labels.get(name, name)
        value = float(values[j])
        direction = "increases" if contribution > 0 else "decreases"
        items.append(
            {
                "text": f"{label}: {describe_value(name, value)}",
                "direction": direction,
                "feature": name,
                "label": label,
                "value": value if np.isfinite(value) else None,
                "contribution": round(contribution, 4),
            }
        )
    return items
