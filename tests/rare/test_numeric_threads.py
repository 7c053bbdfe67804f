"""Rare-model latency is timed with the service's numeric threads (``serving.threads``)."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_info

from disease_pipeline.rare.report import numeric_threads


def test_numeric_threads_caps_every_pool_and_restores_torch():
    before = torch.get_num_threads()
    with numeric_threads(1):
        assert torch.get_num_threads() == 1
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
    assert torch.get_num_threads() == before
