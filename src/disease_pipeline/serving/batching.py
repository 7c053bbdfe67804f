"""Adaptive batching of concurrent ``/predict`` calls.

Each call puts its patient on a queue and waits. One worker thread takes everything
queued (up to ``max_batch_size``) and answers it with one model call: when the service
is idle a call runs at once (no waiting), and while the model is busy the calls that
arrive meanwhile are merged into the next model call. ``max_wait_ms`` optionally holds
an idle dispatch a little longer to gather a larger batch (0: never wait).

The function run on a batch returns one result per item (a value, or an exception
raised to that item's caller only), so a refused patient never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")

#: ``run(items) → one result per item``; an ``Exception`` result is raised to its caller.
BatchFunction = Callable[[Sequence[Item]], Sequence[Any]]


@dataclass
class _Job(Generic[Item]):
    item: Item
    future: asyncio.Future


class MicroBatcher(Generic[Item]):
    """Merges concurrent :meth:`submit` calls into calls of ``run`` on one thread."""

    def __init__(self, run: BatchFunction, max_batch_size: int, max_wait_ms: float = 0.0):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self._queue: list[_Job[Item]] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        #: sizes of the model calls made so far (for tests and metrics)
        self.batch_sizes: list[int] = []

    async def submit(self, item: Item) -> Any:
        """The result of ``run`` for ``item``, computed together with concurrent items."""
        loop = asyncio.get_running_loop()
        job = _Job(item, loop.create_future())
        self._queue.append(job)
        if not self._busy:
            self._busy = True
            loop.create_task(self._drain())
        return await job.future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.max_wait_s and len(self._queue) < self.max_batch_size:
                await asyncio.sleep(self.max_wait_s)
            while self._queue:
                batch = self._queue[: self.max_batch_size]
                del self._queue[: self.max_batch_size]
                self.batch_sizes.append(len(batch))
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._run, [job.item for job in batch]
                    )
                except Exception as error:  # noqa: BLE001 - every caller gets the failure
                    results = [error] * len(batch)
                for job, result in zip(batch, results, strict=True):
                    if job.future.done():  # the caller went away
                        continue
                    if isinstance(result, Exception):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)
        finally:
            self._busy = False
            if self._queue:  # arrived between the last take and the flag reset
                self._busy = True
                loop.create_task(self._drain())
