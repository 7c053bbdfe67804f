"""The edge runtime: the champion's answer on an offline laptop with onnxruntime and numpy.

``disease-pipeline-edge predict patient.json`` reads a package folder written by
``disease-pipeline export-edge`` (:mod:`disease_pipeline.edge_export`) and prints the
ranked differential with probabilities, P(rare) and the severity level. Nothing here
imports pandas, scipy, scikit-learn, XGBoost, PyTorch, MLflow or Kedro (an
import-linter contract and ``tests/edge/test_runtime_imports.py`` check it); the
numbers are those of :class:`disease_pipeline.predictor.DiseasePredictor`
(``tests/edge/test_parity.py``). docs/edge.md describes the package.
"""
