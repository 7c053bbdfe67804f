"""Column contracts of the feature and model-input tables.

A model-input frame is ``KEY_COLUMNS`` + ``LABEL_COLUMNS`` + numeric feature columns;
everything that is not in :data:`META_COLUMNS` is a feature.
"""

from __future__ import annotations

#: what identifies one row (one encounter) of a feature or model-input table
KEY_COLUMNS: tuple[str, ...] = ("encounter_id", "patient_id", "start")
#: the targets of a row
LABEL_COLUMNS: tuple[str, ...] = ("label_disease", "label_category", "label_severity")
#: the columns of a model-input frame that are not features
META_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *LABEL_COLUMNS)
#: encounter ids of the encounters labelled by clinician feedback (retrain_check)
FEEDBACK_ENCOUNTER_PREFIX = "feedback-"
