"""``simulate``: fabricate the raw exports of a hospital (FHIR, LIS, forms) + ground truth."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from disease_pipeline.pipelines.simulate import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Parameters are validated first; the writers run on the shared simulated cohort."""
    return Pipeline(
        [
            Node(
                nodes.validate_parameters,
                "params:simulate",
                "int_sim_config",
                name="validate_simulation_parameters",
            ),
            Node(
                nodes.select_rare_diseases,
                "int_sim_config",
                ["int_sim_rare_diseases", "int_sim_rare_terms"],
                name="select_rare_diseases",
            ),
            Node(
                nodes.simulate_population,
                "int_sim_config",
                ["int_sim_patients", "int_sim_visits"],
                name="simulate_population",
            ),
            Node(
                nodes.assign_diagnoses,
                ["int_sim_config", "int_sim_patients", "int_sim_visits", "int_sim_rare_diseases"],
                ["int_sim_encounters", "int_sim_comorbidities"],
                name="assign_diagnoses",
            ),
            Node(
                nodes.simulate_findings,
                [
                    "int_sim_config",
                    "int_sim_encounters",
                    "int_sim_comorbidities",
                    "int_sim_rare_diseases",
                    "int_sim_rare_terms",
                ],
                ["int_sim_symptoms", "int_sim_vitals", "int_sim_labs"],
                name="simulate_findings",
            ),
            Node(
                nodes.write_fhir_bundles,
                [
                    "int_sim_config",
                    "int_sim_patients",
                    "int_sim_encounters",
                    "int_sim_symptoms",
                    "int_sim_vitals",
                ],
                ["raw_fhir_bundles", "int_sim_fhir_truth"],
                name="write_fhir_bundles",
            ),
            Node(
                nodes.write_lab_results,
                ["int_sim_config", "int_sim_patients", "int_sim_encounters", "int_sim_labs"],
                ["raw_lis_lab_results", "int_sim_lis_truth"],
                name="write_lab_results",
            ),
            Node(
                nodes.write_admission_forms,
                [
                    "int_sim_config",
                    "int_sim_patients",
                    "int_sim_encounters",
                    "int_sim_symptoms",
                    "int_sim_comorbidities",
                ],
                ["raw_admission_forms", "int_sim_forms_truth"],
                name="write_admission_forms",
            ),
            Node(
                nodes.assemble_ground_truth,
                [
                    "int_sim_fhir_truth",
                    "int_sim_lis_truth",
                    "int_sim_forms_truth",
                    "int_sim_patients",
                ],
                ["raw_ground_truth_injected", "raw_ground_truth_identifiers"],
                name="assemble_ground_truth",
            ),
            Node(
                nodes.summarise_simulation,
                {
                    "cfg": "int_sim_config",
                    "encounters": "int_sim_encounters",
                    "symptoms": "int_sim_symptoms",
                    "labs": "int_sim_labs",
                    "rare_diseases": "int_sim_rare_diseases",
                    "fhir_truth": "int_sim_fhir_truth",
                    "lis_truth": "int_sim_lis_truth",
                    "forms_truth": "int_sim_forms_truth",
                },
                "reporting_simulate_summary",
                name="summarise_simulation",
            ),
        ],
        tags="simulate",
    )
