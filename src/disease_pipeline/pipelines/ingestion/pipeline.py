"""Ingestion: FHIR bundles, LIS labs, admission forms and phenopackets → ``int_*`` tables."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.ingestion import nodes

TABLES = [
    "int_patients",
    "int_encounters",
    "int_symptoms",
    "int_vitals",
    "int_labs",
    "int_diagnoses",
    "int_notes",
    "int_quarantine",
]
PARSED = [
    "int_ingestion_fhir",
    "int_ingestion_lis",
    "int_ingestion_forms",
    "int_ingestion_phenopackets",
]


def create_pipeline(**kwargs) -> Pipeline:
    """Parse every raw source, build and validate the canonical tables, report quality."""
    return Pipeline(
        [
            Node(
                nodes.build_vocabulary,
                "params:ingestion",
                "int_ingestion_vocabulary",
                name="build_ingestion_vocabulary",
            ),
            Node(
                nodes.parse_fhir_bundles,
                ["raw_fhir_bundles", "int_ingestion_vocabulary", "params:ingestion"],
                "int_ingestion_fhir",
                name="parse_fhir_bundles",
            ),
            Node(
                nodes.parse_lab_results,
                ["raw_lis_lab_lines", "int_ingestion_vocabulary", "params:ingestion"],
                "int_ingestion_lis",
                name="parse_lab_results",
            ),
            Node(
                nodes.parse_admission_forms,
                ["raw_admission_forms", "int_ingestion_vocabulary", "params:ingestion"],
                "int_ingestion_forms",
                name="parse_admission_forms",
            ),
            Node(
                nodes.parse_phenopacket_folder,
                ["raw_phenopacket_files", "int_ingestion_vocabulary", "params:ingestion"],
                "int_ingestion_phenopackets",
                name="parse_phenopackets",
            ),
            Node(
                nodes.build_canonical_tables,
                PARSED,
                {
                    name: name
                    for name in [*TABLES, "int_ingestion_ledger", "int_ingestion_table_summary"]
                },
                name="build_canonical_tables",
            ),
            Node(
                nodes.check_conservation,
                [*PARSED, "int_quarantine"],
                "int_ingestion_accounting",
                name="check_conservation",
            ),
            Node(
                nodes.score_against_ground_truth,
                ["int_ingestion_ledger", "raw_ground_truth_injected_optional", "params:ingestion"],
                "int_ingestion_scoring",
                name="score_against_ground_truth",
            ),
            Node(
                nodes.build_quality_report,
                [
                    "int_ingestion_accounting",
                    "int_ingestion_scoring",
                    "int_ingestion_table_summary",
                    "int_quarantine",
                ],
                ["reporting_ingestion_quality", "reporting_ingestion_quality_md"],
                name="build_quality_report",
            ),
        ]
    )
