"""``kedro run --pipeline=screen``: score a time window of the warehouse, raise alerts."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    append_screening,
    data_version,
    model_version,
    score_window,
    screen_alerts,
    window_tables,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Window → screening rows (warehouse table ``screenings``) → alerts (warehouse
    table ``alerts``, webhook) and a run summary in 08_reporting."""
    return Pipeline(
        [
            Node(
                window_tables,
                {
                    "patients": "prm_patients",
                    "encounters": "prm_encounters",
                    "symptoms": "prm_symptoms",
                    "vitals": "prm_vitals",
                    "labs": "prm_labs",
                    "diagnoses": "prm_diagnoses",
                    "params": "params:screen",
                },
                ["screen_window_tables", "screen_window"],
                name="screen_window_tables",
            ),
            Node(
                model_version,
                ["screen_predictor_fingerprint", "params:screen"],
                "screen_model_version",
                name="screen_model_version",
            ),
            Node(data_version, "prm_metadata", "screen_data_version", name="screen_data_version"),
            Node(
                score_window,
                {
                    "predictor": "predictor",
                    "tables": "screen_window_tables",
                    "window": "screen_window",
                    "model": "screen_model_version",
                    "data": "screen_data_version",
                    "params": "params:screen",
                    "engine": "params:screen_engine",
                },
                "screen_scored",
                name="score_window",
            ),
            Node(
                append_screening,
                ["prm_screenings_previous", "screen_scored"],
                "prm_screenings",
                name="append_screening",
            ),
            Node(
                screen_alerts,
                [
                    "screen_scored",
                    "prm_alerts_previous",
                    "screen_operating_thresholds",
                    "params:screen.alerts",
                ],
                ["prm_alerts", "screen_alert_webhook", "reporting_screen_summary"],
                name="screen_alerts",
            ),
        ]
    )
