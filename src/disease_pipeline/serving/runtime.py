"""Settings of the serving process, applied once the predictor is loaded: thread
pools (``serving.threads``) and the garbage collector."""

from __future__ import annotations

import gc


def limit_threads(threads: int) -> None:
    """Cap the thread pools of OpenMP and BLAS in this process (``serving.threads``), and
    PyTorch's when something imported it (the predictor itself does not)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


#: collection thresholds while serving: a batch of 1,000 patients allocates about half
#: a million short-lived objects, which the default first generation (700) would scan
#: some 700 times; a larger first generation costs a few MB and ~7 % of a batch's time
GC_THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """Garbage-collector settings for serving, once the predictor is loaded.

    The loaded model is hundreds of thousands of long-lived objects: ``gc.freeze``
    moves them out of the collector's view, so a full collection during a large batch
    does not walk them all again (a third of a batch's time otherwise).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
