"""``make train``'s runner: two nodes at a time on two cores, never more."""

from __future__ import annotations

import threading
import time

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from disease_pipeline.runners import CoreThreadRunner


class _Counter:
    """How many nodes run at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def __exit__(self, *_: object) -> None:
        with self.lock:
            self.running -= 1


def test_independent_nodes_run_side_by_side_up_to_max_workers():
    counter = _Counter()
    barrier = threading.Barrier(2, timeout=30)

    def meet(x: int) -> int:
        """Returns only when another node waits too: fails unless two run at once."""
        with counter:
            barrier.wait()
            time.sleep(0.05)
            return x + 1

    nodes = [Node(meet, f"in{i}", f"out{i}", name=f"meet{i}") for i in range(4)]
    catalog = DataCatalog({f"in{i}": MemoryDataset(i) for i in range(4)})
    CoreThreadRunner(max_workers=2).run(Pipeline(nodes), catalog)
    assert counter.most == 2
    assert [catalog.load(f"out{i}") for i in range(4)] == [1, 2, 3, 4]


def test_the_default_is_one_thread_per_cpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert CoreThreadRunner()._max_workers == 3


def test_make_train_uses_it():
    from tests.conftest import PROJECT_ROOT

    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--runner=disease_pipeline.runners.CoreThreadRunner" in makefile
