"""Synthetic patients sampled from annotations look like recorded phenotypes."""

from __future__ import annotations

import numpy as np
import pytest

from disease_pipeline.rare.profiles import build_candidates, knowledge_profiles
from disease_pipeline.rare.synth import CaseSampler, SynthParams


def test_samples_come_from_the_profile_its_parents_or_noise(base):
    candidates = build_candidates(base.annotations, None)
    profiles = knowledge_profiles(base.annotations, None, candidates, base.space, 1.0)
    params = SynthParams(noise_terms=0.0, random_excluded=0.0)
    sampler = CaseSampler(profiles.direct, base.space, params, seed=0)
    row = candidates.index["OMIM:154700"]
    terms = set(profiles.direct[row].indices.tolist())
    allowed = terms | {int(p) for t in terms for p in base.space.parent_lists[t]}
    sizes = []
    for _ in range(50):
        present, excluded = sampler.sample(row)
        assert len(present) >= 1 and set(present.tolist()) <= allowed
        assert set(excluded.tolist()) <= terms
        assert not set(excluded.tolist()) & set(base.space.propagate(present).tolist())
        sizes.append(len(present))
    assert 3 <= np.median(sizes) <= 12


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="rare_model.synthetic.generalise"):
        SynthParams(generalise=1.5)
