"""Ages as the warehouse keeps them: HIPAA Safe Harbor top-coding of the oldest ages."""

from __future__ import annotations

import pandas as pd


def top_code_age(years: pd.Series, top_code: float, decimals: int) -> pd.DataFrame:
    """Ages in years (negative or unknown → NaN) with ages ≥ ``top_code`` grouped as
    ``top_code`` (HIPAA Safe Harbor's 90+), rounded to ``decimals``.

    Returns:
        ``age_years`` (float) and ``age_90_plus`` (bool) columns, ``years``' index.
    """
    age = pd.to_numeric(years, errors="coerce").astype("float64").where(lambda a: a >= 0)
    plus = age >= top_code
    age = age.mask(plus, float(top_code)).round(decimals)
    return pd.DataFrame({"age_years": age, "age_90_plus": plus.astype(bool)})
