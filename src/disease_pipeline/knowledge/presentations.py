"""Classic symptoms-only presentations (``data/classic_presentations.yaml``).

Textbook first-visit pictures of common diseases (HPO terms, age, sex), in the shape of
:func:`knowledge.knowledge_shift.sample_symptom_patients`: a check, independent of the
catalogue's frequencies, that the knowledge scorer recognises each disease from symptoms
alone.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd
import yaml

from disease_pipeline.knowledge.hpo import load_ontology


@cache
def load_classic_presentations() -> pd.DataFrame:
    """Columns ``label`` (ICD-10), ``present``, ``absent`` (HPO id lists), ``age``, ``sex``.

    Raises:
        ValueError: a finding is not a live HPO phenotype or its name is not the term's.
    """
    onto = load_ontology()
    text = (files("disease_pipeline.knowledge") / "data" / "classic_presentations.yaml").read_text(
        "utf-8"
    )
    rows = []
    for i, case in enumerate(yaml.safe_load(text)):
        present = []
        for finding in case["findings"]:
            try:
                present.append(onto.named_phenotype(str(finding["hpo"]), finding["name"]))
            except ValueError as error:
                where = f"classic_presentations.yaml case {i} ({case['icd10']}): finding"
                raise ValueError(f"{where} {error}") from None
        rows.append(
            {
                "label": str(case["icd10"]),
                "present": present,
                "absent": [],
                "age": float(case["age"]),
                "sex": str(case["sex"]),
            }
        )
    return pd.DataFrame(rows)
