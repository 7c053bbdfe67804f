"""``anonymization``: canonical layer-02 tables → de-identified warehouse tables."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.anonymization.nodes import (
    anonymise_encounter_table,
    anonymise_encounters,
    anonymise_patients,
    anonymise_quarantine,
    compute_data_version,
    scrub_notes,
)

#: Encounter-level tables de-identified by the same node function.
ENCOUNTER_TABLES = ("symptoms", "vitals", "labs", "diagnoses")


def create_pipeline(**kwargs) -> Pipeline:
    """Data version, pseudonyms, date shift, identifier removal, note scrubbing.

    The HMAC key comes from the ``anonymization_key`` dataset that
    ``AnonymizationKeyHook`` registers in the catalog.
    """
    nodes = [
        Node(
            compute_data_version,
            inputs="raw_snapshot_files",
            outputs=["reporting_data_version", "prm_metadata"],
            name="compute_data_version",
        ),
        Node(
            anonymise_patients,
            inputs=["int_patients", "anonymization_key", "params:anonymization"],
            outputs=["prm_patients", "int_patient_key_map"],
            name="anonymise_patients",
        ),
        Node(
            anonymise_encounters,
            inputs=[
                "int_encounters",
                "int_patient_key_map",
                "anonymization_key",
                "params:anonymization",
            ],
            outputs=["prm_encounters", "int_encounter_key_map"],
            name="anonymise_encounters",
        ),
        *[
            Node(
                anonymise_encounter_table,
                inputs=[
                    f"int_{table}",
                    "int_encounter_key_map",
                    "anonymization_key",
                    "params:anonymization",
                    f"params:anonymization.tables.{table}",
                ],
                outputs=f"prm_{table}",
                name=f"anonymise_{table}",
            )
            for table in ENCOUNTER_TABLES
        ],
        Node(
            scrub_notes,
            inputs=[
                "int_notes",
                "int_patients",
                "int_encounter_key_map",
                "anonymization_key",
                "params:anonymization",
            ],
            outputs="prm_notes",
            name="scrub_notes",
        ),
        Node(
            anonymise_quarantine,
            inputs=["int_quarantine", "int_patients", "anonymization_key", "params:anonymization"],
            outputs="prm_quarantine",
            name="anonymise_quarantine",
        ),
    ]
    return Pipeline(nodes, tags="anonymization")
