"""Can't-miss diagnoses and knowledge explanations added to the predictor's outputs.

A catalogue disease with a ``must_not_miss`` block (time-critical: myocardial
infarction, pulmonary embolism, sepsis, …) whose knowledge posterior stays above
``floor`` is flagged ``must_not_miss`` in the differential with ``rule_out`` (the test
or finding that would rule it out); when it is outside the listed top ``k`` it is
appended after them. While one remains plausible, the share of P(low) and P(moderate)
equal to its knowledge posterior moves to "critical" (a life-threatening tier-5
disease) or "high", P(low) is capped at ``low_cap`` (the rest to "moderate") and the
level is at least "moderate": severity never says "low" while a plausible
time-critical disease remains.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from disease_pipeline.knowledge.common_explain import finding_contributions, recommended_tests
from disease_pipeline.predictor.feature_knowledge import knowledge_column
from disease_pipeline.predictor.probabilities import respect_critical

#: catalogue severity tier of a life-threatening disease


def knowledge_posterior(scorer: Any, X: pd.DataFrame) -> np.ndarray | None:
    """``(n, n_catalogue)`` knowledge posterior from the feature rows (None without it)."""
    columns = [knowledge_column(c) for c in scorer.classes]
    if not all(c in X.columns for c in columns):
        return None
    return softmax(X[columns].to_numpy(float), axis=1)


def critical_diseases(scorer: Any) -> dict[str, str]:
    """ICD-10 → rule-out text of every catalogue disease marked ``must_not_miss``."""
    if "must_not_miss" not in scorer.catalogue:
        return {}
    out = {}
    for code, block in zip(scorer.classes, scorer.catalogue["must_not_miss"], strict=True):
        if isinstance(block, dict):
            out[code] = str(block.get("rule_out", ""))
    return out


def flag_must_not_miss(
    outputs: list[dict[str, Any]],
    posterior: np.ndarray | None,
    scorer: Any,
    class_index: dict[str, int],
    p_common: np.ndarray,
    *,
    p_rare: np.ndarray | None = None,
    floor: float = 0.02,
    low_cap: float = 0.4,
) -> None:
    """Flag, append and cap severity in place (see module docstring).

    ``p_common`` (n, len(class_index)) are the differential probabilities of the common
    classes (a flagged disease outside the list is shown with its own probability; one
    the learned model does not know, with its knowledge posterior times 1 − ``p_rare``).
    """
    critical = critical_diseases(scorer)
    for i, output in enumerate(outputs):
        for entry in output["differential"]:
            entry["must_not_miss"] = False
            entry["rule_out"] = None
        if posterior is None or not critical:
            continue
        plausible = {
            code: float(posterior[i, scorer.classes.index(code)])
            for code in critical
            if posterior[i, scorer.classes.index(code)] >= floor
        }
        listed = {e["code"]: e for e in output["differential"]}
        extra = []
        for code in sorted(plausible, key=lambda c: -plausible[c]):
            entry = listed.get(code)
            if entry is None:
                j = class_index.get(code)
                if j is not None:
                    p = float(p_common[i, j])
                else:
                    share = 1.0 - float(p_rare[i]) if p_rare is not None else 1.0
                    p = plausible[code] * share
                entry = {
                    "code": code,
                    "name": scorer.names[code],
                    "category": "COMMON",
                    "probability": p,
                    "interval": [p, p],
                }
                extra.append(entry)
            entry["must_not_miss"] = True
            entry["rule_out"] = critical[code]
        extra.sort(key=lambda e: -e["probability"])
        output["differential"].extend(extra)
        if plausible:
            tiers = dict(zip(scorer.classes, scorer.catalogue["severity_tier"], strict=True))
            worst = max(int(tiers[c]) for c in plausible)
            respect_critical(output["severity"], low_cap, worst, sum(plausible.values()))
            output["severity"]["note"] = (
                "a time-critical diagnosis remains plausible: "
                + ", ".join(scorer.names[c] for c in plausible)
            )


def explain_with_knowledge(
    scorer: Any, tables: dict[str, pd.DataFrame], outputs: list[dict[str, Any]]
) -> None:
    """Add ``findings`` (reported findings that moved the top candidate, knowledge
    likelihood ratios) and ``recommended_tests`` (top 3 unmeasured vitals/labs by
    expected information gain) to each output's ``explanation``."""
    sym = tables.get("symptoms")
    terms: dict[str, dict[bool, list[str]]] = {}
    if sym is not None and len(sym):
        for eid, term, flag in zip(
            sym["encounter_id"].astype(str), sym["hpo_id"].astype(str), sym["present"], strict=True
        ):
            terms.setdefault(eid, {True: [], False: []})[bool(flag)].append(term)
    measured: dict[str, set[str]] = {}
    for table in ("vitals", "labs"):
        frame = tables.get(table)
        if frame is not None and len(frame):
            for eid, code in zip(
                frame["encounter_id"].astype(str), frame["loinc"].astype(str), strict=True
            ):
                measured.setdefault(eid, set()).add(code)
    position = {code: j for j, code in enumerate(scorer.classes)}
    for output in outputs:
        explanation = output.get("explanation")
        if explanation is None:
            continue
        eid = str(output["encounter_id"])
        probabilities = np.zeros(len(scorer.classes))
        for entry in output["differential"]:
            if entry["code"] in position:
                probabilities[position[entry["code"]]] = entry["probability"]
        explanation["recommended_tests"] = recommended_tests(
            scorer, probabilities, measured.get(eid, set())
        )
        top = output["differential"][0]["code"]
        reported = terms.get(eid, {True: [], False: []})
        explanation["findings"] = (
            finding_contributions(
                scorer, reported[True], reported[False], position[top], probabilities
            )
            if top in position
            else []
        )
