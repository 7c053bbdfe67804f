"""The clinician service (BentoML): endpoints, bearer-token auth, audit trail, feedback,
metrics and the clinician page. Start it with
``bentoml serve disease_pipeline.serving.service:DiseaseService`` (see docs/serving.md).
"""
