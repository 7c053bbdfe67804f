"""The runner of ``make train``: Kedro's ``ThreadRunner`` with one thread per CPU.

The training DAG has independent branches after ``features`` (the rare model's encoder
pre-training, fit and validation; the common and gate models; severity), and many of
their nodes keep one core busy (torch with one thread, Python-level loops). Run one after
the other they left the second core mostly idle: a default-data ``make train`` used 26
CPU minutes in 27 wall minutes on two cores. Two nodes at a time use both cores. Every
node is seeded, so the outputs are those of the sequential runner (MLflow gets the same
metrics, timing figures aside; ``docs/training_speed.md``).

``kedro run --runner=disease_pipeline.runners.CoreThreadRunner`` (Kedro's CLI takes the
class path). Kedro's own ``ThreadRunner`` starts as many threads as the DAG's widest
step allows, far more than two cores can serve.
"""

from __future__ import annotations

import os

from kedro.runner import ThreadRunner


class CoreThreadRunner(ThreadRunner):
    """``ThreadRunner`` with at most ``max_workers`` (default: the CPU count) nodes running
    at once."""

    def __init__(self, max_workers: int | None = None, is_async: bool = False) -> None:
        super().__init__(max_workers=max_workers or os.cpu_count() or 1, is_async=is_async)
