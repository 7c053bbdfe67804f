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
