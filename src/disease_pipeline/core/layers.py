"""The project's data folders under ``data_root``, in the order data flows through them
(the layers of Kedro's data engineering convention that the catalog's paths use)."""

from __future__ import annotations

DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)
#: the layers after anonymisation: no raw identifier may appear in them
PSEUDONYMISED_LAYERS = DATA_LAYERS[2:]
