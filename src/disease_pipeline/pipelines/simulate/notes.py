"""Short free-text clinical notes; some of them name the patient (PHI to scrub later)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from disease_pipeline.pipelines.simulate.common import group_offsets, stream

_OPENERS = (
    "{who} presenting with {present}.",
    "{who} seen for {present}.",
    "Chief complaint: {present}. {Who_cap} in no acute distress on arrival.",
)
_NAMED = (
    "{given} {family} is a {age} {person} presenting with {present}.",
    "Pt {family}, {given}: {present}.",
    "{title} {family} reports {present}.",
)
_SETTING = {"AMB": "outpatient clinic", "EMER": "emergency department", "IMP": "admitted to ward"}


def _age_phrase(age: float) -> str:
    if age < 1:
        return f"{max(int(age * 12), 1)}-month-old"
    return f"{int(age)}-year-old"


def _person(sex: str, age: float) -> str:
    if sex == "female":
        return "girl" if age < 16 else "woman"
    if sex == "male":
        return "boy" if age < 16 else "man"
    return "patient"


def clinical_notes(
    cfg: dict[str, Any],
    encounters: pd.DataFrame,
    patients: pd.DataFrame,
    symptoms: pd.DataFrame,
    names: dict[str, str],
) -> tuple[np.ndarray, np.ndarray]:
    """Note text per encounter (``""`` = no note) and whether the note names the patient."""
    rng = stream(cfg["seed"], "notes")
    n = len(encounters)
    has_note = rng.random(n) < cfg["notes"]["share"]
    named = has_note & (rng.random(n) < cfg["notes"]["name_share"])
    template = rng.integers(0, 3, size=n)
    offsets = group_offsets(symptoms["encounter"].to_numpy(), n)
    label = np.asarray([names[h].lower() for h in symptoms["hpo_id"]], dtype=object)
    is_present = symptoms["present"].to_numpy()
    onset_days = symptoms["onset_days"].to_numpy()
    given, family = patients["given_name"].to_numpy(), patients["family_name"].to_numpy()
    texts = np.full(n, "", dtype=object)
    rows = encounters[["patient", "age_years", "sex", "encounter_class"]].to_numpy()
    for i in np.flatnonzero(has_note):
        patient, age, sex, klass = rows[i]
        lo, hi = offsets[i], offsets[i + 1]
        present = label[lo:hi][is_present[lo:hi]].tolist() or ["no specific complaint"]
        absent = label[lo:hi][~is_present[lo:hi]].tolist()
        onset = int(onset_days[lo:hi][is_present[lo:hi]].max(initial=-1))
        symptom_text = ", ".join(present[:6])
        person = _person(sex, age)
        if named[i]:
            title = {"female": "Ms.", "male": "Mr."}.get(sex, "Mx.")
            text = _NAMED[template[i]].format(
                given=given[patient],
                family=family[patient],
                age=_age_phrase(age),
                person=person,
                present=symptom_text,
                title=title,
            )
        else:
            who = f"{_age_phrase(age)} {person}"
            text = _OPENERS[template[i]].format(
                who=who[0].upper() + who[1:], Who_cap="Patient", present=symptom_text
            )
        if onset >= 0:
            text += f" Symptoms began {onset} day{'s' if onset != 1 else ''} ago."
        if absent:
            text += f" Denies {', '.join(absent[:4])}."
        text += f" Seen in {_SETTING[klass]}."
        texts[i] = text
    return texts, named
