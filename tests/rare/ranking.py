"""Shared checks of the rare model's batch ranking (``rank``) against one patient at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disease_pipeline.rare.terms import most_specific


def case_tables(model, sample) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The predictor-style tables (symptoms, encounters) and an empty feature frame of
    ``sample``'s cases, encounter ``e<i>`` for the i-th case."""
    rows = []
    for i, case in enumerate(sample):
        rows += [(f"e{i}", t, True) for t in most_specific(model.space, case.present)]
        rows += [(f"e{i}", t, False) for t in case.excluded]
    ids = [f"e{i}" for i in range(len(sample))]
    tables = {
        "symptoms": pd.DataFrame(rows, columns=["encounter_id", "hpo_id", "present"]),
        "encounters": pd.DataFrame({"encounter_id": ids}),
    }
    return tables, pd.DataFrame(index=pd.Index(ids))


def assert_batch_is_single(model, batch, sample) -> None:
    """Each row of ``batch`` (``model.rank`` of ``sample``) is the case's own ranking
    restricted to RARE candidates, probabilities included."""
    for i, case in enumerate(sample):
        single = model.rank_patient_report(
            most_specific(model.space, case.present),
            case.excluded,
            top_k=model.serving_top_k,
            category="RARE",
            explain=False,
        )["candidates"]
        assert [code for code, _, _ in batch[i]] == [r["disease_id"] for r in single]
        assert np.allclose([p for _, _, p in batch[i]], [r["probability"] for r in single])
