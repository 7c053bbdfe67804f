"""Reading the rare_model pipeline's registry validation into gate figures."""

from __future__ import annotations

import pytest

from disease_pipeline.pipelines.evaluation.figures import registry_figures

CONFIG = {
    "protocol": "unseen",
    "method": "hybrid",
    "baseline": "resnik_one_sided",
    "metric": "top3",
}
DIFFERENCE = {"difference": 0.0667, "interval": [0.0, 0.2143]}
# the shape rare_model_validation.json has (protocols.unseen, trimmed)
VALIDATION = {
    "protocols": {
        "unseen": {
            "metrics": {
                "hybrid": {"n": 60, "top1": 0.5167, "top3": 0.5833},
                "resnik_one_sided": {"n": 60, "top1": 0.4667, "top3": 0.5167},
            },
            "bootstrap": {
                "intervals": {
                    "hybrid": {"top3": [0.3088, 0.8168]},
                    "resnik_one_sided": {"top3": [0.2667, 0.75]},
                },
                "difference_to": "resnik_one_sided",
                "differences": {"hybrid": {"top3": DIFFERENCE}},
            },
        }
    }
}


def test_the_paired_difference_and_intervals_are_read():
    out = registry_figures(VALIDATION, CONFIG)
    name = "registry.unseen.hybrid_vs_resnik_one_sided.top3_diff"
    assert (out[name], out[f"{name}.ci_low"], out[f"{name}.ci_high"]) == (0.0667, 0.0, 0.2143)
    assert out["registry.unseen.hybrid.top3"] == pytest.approx(0.5833)
    assert out["registry.unseen.resnik_one_sided.top3.ci_high"] == 0.75


def test_no_figure_when_missing_or_against_another_baseline():
    assert registry_figures(None, CONFIG) == {}
    assert registry_figures({"skipped": "no registry case"}, CONFIG) == {}
    other = CONFIG | {"baseline": "resnik_symmetric"}
    assert not any(k.endswith("_diff") for k in registry_figures(VALIDATION, other))


def test_a_statistic_resampling_biases_gets_a_debiased_interval_that_contains_it():
    """A statistic that only resampling raises (here the share of repeated rows: 0 on
    the split, ~0.37 on every resample, as an ECE rises when repeated rows fill bins
    unevenly): the plain percentile interval excludes the value, the debiased one
    (shifted by the bootstrap's bias estimate, same width) contains it."""
    import numpy as np

    from disease_pipeline.pipelines.evaluation import intervals as iv

    def repeated(draw):
        return 1.0 - len(np.unique(draw)) / len(draw)

    boot = {"n_boot": 300, "seed": 0, "level": 0.95}
    plain = iv.statistic_figure("s", repeated, 200, **boot)
    fixed = iv.statistic_figure("s", repeated, 200, **boot, debias=True)
    assert plain["s"] == fixed["s"] == 0.0
    assert plain["s.ci_low"] > 0.3  # every resample repeats rows
    assert fixed["s.ci_low"] <= 0.0 <= fixed["s.ci_high"]
    width = plain["s.ci_high"] - plain["s.ci_low"]
    assert fixed["s.ci_high"] - fixed["s.ci_low"] == pytest.approx(width)
