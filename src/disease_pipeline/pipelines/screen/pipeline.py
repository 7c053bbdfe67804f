"""``kedro run --pipeline=screen``: score a time window of the warehouse, raise alerts."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    append_screening,
    data_version,
    model_version,
    score_window,
    screen_alerts,
    screenings_by_date,
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
                ["prm_screen_window_tables", "prm_screen_window"],
                name="screen_window_tables",
            ),
            Node(
                model_version,
                ["model_predictor_fingerprint", "params:screen"],
                "model_screen_version",
                name="screen_model_version",
            ),
            Node(
                data_version, "prm_metadata", "prm_screen_data_version", name="screen_data_version"
            ),
            Node(
                score_window,
                {
                    "predictor": "model_predictor",
                    "tables": "prm_screen_window_tables",
                    "window": "prm_screen_window",
                    "model": "model_screen_version",
                    "data": "prm_screen_data_version",
                    "params": "params:screen",
                    "engine": "params:screen_engine",
                },
                "model_output_screen_scored",
                name="score_window",
            ),
            Node(
                append_screening,
                ["model_output_screenings_previous", "model_output_screen_scored"],
                "model_output_screenings",
                name="append_screening",
            ),
            Node(
                screenings_by_date,
                "model_output_screen_scored",
                "model_output_screenings_by_date",
                name="screenings_by_date",
            ),
            Node(
                screen_alerts,
                [
                    "model_output_screen_scored",
                    "reporting_alerts_previous",
                    "reporting_operating_thresholds_optional",
                    "params:screen.alerts",
                ],
                ["reporting_alerts", "reporting_alert_webhook", "reporting_screen_summary"],
                name="screen_alerts",
            ),
        ]
    )
