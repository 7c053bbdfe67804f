"""disease_pipeline: predicts common and rare diseases, and severity, from clinical records."""

import os

# OpenMP threads (XGBoost, scikit-learn, PyTorch) sleep while they wait for work instead
# of spinning. On a 2-core machine shared with other work, spinning threads burned 10x the
# CPU and made an XGBoost fit 10-18x slower in wall time (scripts/benchmark_train.py,
# docs/architecture.md). Set before any OpenMP runtime loads; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
