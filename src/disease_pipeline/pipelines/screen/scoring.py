"""The screen's scoring, defined in the runtime layer
(:mod:`disease_pipeline.predictor.screening`: no Kedro, for Spark executors and the
Snowpark UDF) and re-exported here for the pipeline's modules."""

from disease_pipeline.predictor.screening import (
    DETAIL_TABLES,
    ENCOUNTER_COLUMNS,
    batch_rows,
    batch_tables,
    output_row,
    score_tables,
    screening_columns,
    sliced_tables,
)

__all__ = [
    "DETAIL_TABLES",
    "ENCOUNTER_COLUMNS",
    "batch_rows",
    "batch_tables",
    "output_row",
    "score_tables",
    "screening_columns",
    "sliced_tables",
]
