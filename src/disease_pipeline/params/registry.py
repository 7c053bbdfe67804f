"""The schema of each top-level parameter block: key of ``parameters_*.yml`` → model."""

from __future__ import annotations

from pydantic import BaseModel

from disease_pipeline.params.active_learning import ActiveLearningParams
from disease_pipeline.params.anonymization import AnonymizationParams
from disease_pipeline.params.calibration import CalibrationParams
from disease_pipeline.params.common_model import CommonModelParams
from disease_pipeline.params.drift import DriftParams
from disease_pipeline.params.evaluation import EvaluationParams
from disease_pipeline.params.features import FeaturesParams
from disease_pipeline.params.ingestion import IngestionParams
from disease_pipeline.params.monitor import MonitorParams
from disease_pipeline.params.packaging import BentoPackagingParams, PackagingParams
from disease_pipeline.params.rare_model import RareModelParams
from disease_pipeline.params.retrain import RetrainParams
from disease_pipeline.params.screen import ScreenEngineParams, ScreenParams, ScreenSnowparkParams
from disease_pipeline.params.severity_model import SeverityModelParams
from disease_pipeline.params.simulate import SimulateParams

#: one model per top-level key; a new ``parameters_<name>.yml`` adds its entry here
PARAMETER_MODELS: dict[str, type[BaseModel]] = {
    "simulate": SimulateParams,
    "ingestion": IngestionParams,
    "anonymization": AnonymizationParams,
    "features": FeaturesParams,
    "common_model": CommonModelParams,
    "rare_model": RareModelParams,
    "severity_model": SeverityModelParams,
    "calibration": CalibrationParams,
    "evaluation": EvaluationParams,
    "drift": DriftParams,
    "packaging": PackagingParams,
    "bento_packaging": BentoPackagingParams,
    "monitor": MonitorParams,
    "retrain": RetrainParams,
    "active_learning": ActiveLearningParams,
    "screen": ScreenParams,
    "screen_engine": ScreenEngineParams,
    "screen_snowpark": ScreenSnowparkParams,
}
