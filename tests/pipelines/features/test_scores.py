"""NEWS2 and qSOFA on textbook examples."""

import numpy as np
import pytest

from disease_pipeline.predictor.feature_scores import clinical_scores, news2_points

LOINC = {
    "resp_rate": ["9279-1"],
    "spo2": ["59408-5"],
    "systolic_bp": ["8480-6"],
    "heart_rate": ["8867-4"],
    "temperature": ["8310-5"],
}


def scores_of(*encounters: dict) -> dict:
    """Scores of encounters given as {vital name: value or list of values}."""
    codes, loinc, value = [], [], []
    for i, vitals in enumerate(encounters):
        for vital, values in vitals.items():
            for v in np.atleast_1d(values):
                codes.append(i)
                loinc.append(LOINC[vital][0])
                value.append(v)
    return clinical_scores(
        np.array(codes, dtype=int),
        np.array(loinc, dtype=object),
        np.array(value, dtype=float),
        len(encounters),
        LOINC,
    )


@pytest.mark.parametrize(
    ("vital", "values", "points"),
    [
        ("resp_rate", [8, 9, 11, 12, 20, 21, 24, 25], [3, 1, 1, 0, 0, 2, 2, 3]),
        ("spo2", [91, 92, 93, 94, 95, 96], [3, 2, 2, 1, 1, 0]),
        ("systolic_bp", [90, 91, 100, 101, 110, 111, 219, 220], [3, 2, 2, 1, 1, 0, 0, 3]),
        (
            "heart_rate",
            [40, 41, 50, 51, 90, 91, 110, 111, 130, 131],
            [3, 1, 1, 0, 0, 1, 1, 2, 2, 3],
        ),
        ("temperature", [35.0, 35.1, 36.0, 36.1, 38.0, 38.1, 39.0, 39.1], [3, 1, 1, 0, 0, 1, 1, 2]),
    ],
)
def test_news2_bands_match_the_rcp_chart(vital, values, points):
    np.testing.assert_array_equal(news2_points(vital, np.array(values, dtype=float)), points)


def test_healthy_adult_scores_zero_and_septic_patient_scores_high():
    healthy = {
        "resp_rate": 16,
        "spo2": 98,
        "systolic_bp": 122,
        "heart_rate": 72,
        "temperature": 36.8,
    }
    # RCP worked example style: RR 26 (3), SpO2 91 (3), SBP 88 (3), HR 135 (3), T 39.5 (2)
    septic = {
        "resp_rate": 26,
        "spo2": 91,
        "systolic_bp": 88,
        "heart_rate": 135,
        "temperature": 39.5,
    }
    # medium: RR 22 (2), SpO2 95 (1), SBP 105 (1), HR 95 (1), T 38.4 (1) = 6, qSOFA RR only
    medium = {
        "resp_rate": 22,
        "spo2": 95,
        "systolic_bp": 105,
        "heart_rate": 95,
        "temperature": 38.4,
    }
    out = scores_of(healthy, septic, medium)
    np.testing.assert_array_equal(out["news2"], [0, 14, 6])
    np.testing.assert_array_equal(out["news2_red_flag"], [0, 1, 0])
    np.testing.assert_array_equal(out["news2_observed"], [5, 5, 5])
    np.testing.assert_array_equal(out["qsofa"], [0, 2, 1])


def test_missing_vitals_score_only_what_was_observed():
    out = scores_of({"heart_rate": 120}, {}, {"systolic_bp": 100})
    np.testing.assert_array_equal(out["news2"], [2, np.nan, 2])
    np.testing.assert_array_equal(out["news2_observed"], [1, 0, 1])
    # qSOFA: no RR/SBP → unknown; SBP 100 meets the ≤ 100 criterion
    np.testing.assert_array_equal(out["qsofa"], [np.nan, np.nan, 1])


def test_repeated_readings_score_the_worst_one():
    out = scores_of({"resp_rate": [16, 30], "systolic_bp": [130, 95]})
    assert out["news2"][0] == 3 + 2
    assert out["qsofa"][0] == 2


def test_unknown_vital_is_rejected():
    with pytest.raises(ValueError, match="gcs"):
        news2_points("gcs", np.array([15.0]))
