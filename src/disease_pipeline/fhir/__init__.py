"""FHIR R4: the one mapping of FHIR resources to canonical rows and patient records
(ingestion's exports and the service's requests) and the service's FHIR answers.

Library code: it imports neither Kedro nor the pipelines.
"""
