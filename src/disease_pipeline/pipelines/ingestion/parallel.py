"""Order-preserving map over chunks, in worker processes when asked, with a progress bar."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive slices of at most ``size``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def ordered_map(
    fn: Callable[[T], R],
    chunks: Sequence[T],
    *,
    n_workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    start_method: str = "spawn",
    desc: str = "",
) -> Iterator[R]:
    """``fn`` over ``chunks`` in order; ``n_workers <= 1`` runs in this process.

    ``initializer(*initargs)`` runs once in every worker (and here when serial), so
    large read-only state is sent once per process rather than once per chunk. With
    ``spawn``/``forkserver``, a script that runs the pipeline needs the usual
    ``if __name__ == "__main__":`` guard (``kedro run`` and pytest have it).
    """
    bar = tqdm(total=len(chunks), desc=desc, unit="chunk", leave=False)
    try:
        if n_workers <= 1 or len(chunks) <= 1:
            initializer(*initargs)
            for chunk in chunks:
                yield fn(chunk)
                bar.update()
            return
        context = multiprocessing.get_context(start_method)
        workers = min(n_workers, len(chunks))
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=initializer, initargs=initargs
        ) as pool:
            for result in pool.map(fn, chunks):
                yield result
                bar.update()
    finally:
        bar.close()
