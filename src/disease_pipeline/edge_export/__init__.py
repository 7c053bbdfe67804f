"""``disease-pipeline export-edge``: the champion predictor as an edge package.

Reads the pickled :class:`disease_pipeline.predictor.DiseasePredictor` (a file, an
MLflow model folder or the registry's ``@champion``) and writes a folder that
:mod:`disease_pipeline.edge` answers from with onnxruntime and numpy alone: the gate,
common and severity boosters as node arrays (walked and summed in numpy exactly as
XGBoost does: the runtime's default engine) and as ONNX tree ensembles (onnxmltools:
its ``onnx`` engine), the rare encoder as ONNX, the calibrators, the feature vocabularies, the
HPO closure and the knowledge scorers' arrays as compressed NumPy,
``config.json`` and ``manifest.json`` (versions and the sha256 of every file).
docs/edge.md describes the package and its parity with the full predictor.
"""
