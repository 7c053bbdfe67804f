"""The service benchmark reads the shadow challenger's work from the service's own
``/metrics`` page (``scripts/_bench.counter_totals``), so a shadow-overhead figure is
only reported when the challenger really scored the answers."""

from __future__ import annotations

import sys

from prometheus_client import CollectorRegistry, Counter, generate_latest

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
from _bench import counter_totals  # noqa: E402


def test_counter_totals_sum_labels_and_ignore_other_samples():
    registry = CollectorRegistry()
    answers = Counter("disease_answers", "answers", ["variant"], registry=registry)
    scored = Counter("disease_shadow_scored", "scored", registry=registry)
    other = Counter("disease_requests", "requests", registry=registry)
    answers.labels(variant="champion").inc(7)
    answers.labels(variant="challenger").inc(3)
    scored.inc(9)
    other.inc(100)
    page = generate_latest(registry).decode()
    names = ("disease_answers", "disease_shadow_scored", "disease_shadow_skipped")
    assert counter_totals(page, names) == {
        "disease_answers": 10.0,
        "disease_shadow_scored": 9.0,
        "disease_shadow_skipped": 0.0,  # not on the page yet: nothing skipped
    }
