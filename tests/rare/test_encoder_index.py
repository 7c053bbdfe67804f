"""The phenotype encoder at prediction time (numpy): the PyTorch tower's embeddings,
and a fitted rare model that scores without importing PyTorch."""

from __future__ import annotations

import pickle
import textwrap

import numpy as np
import torch

from disease_pipeline.rare.encoder import (
    EncoderParams,
    PhenotypeEncoder,
    patient_tensors,
    tower_arrays,
)
from disease_pipeline.rare.encoder_index import EncoderIndex, Featuriser, PatientInput
from disease_pipeline.rare.model import patient_input
from tests.conftest import run_python


def _patients(base, cases) -> list[PatientInput]:
    patients = [patient_input(base.space, c) for c in cases]
    # no term at all, no age, a sex outside the two encoded ones
    patients.append(PatientInput(np.zeros(0, np.int64), np.zeros(0, np.int64), None, "other"))
    patients.append(PatientInput(np.array([0, 5, 9]), np.array([3]), 130.0, "male"))
    return patients


def test_numpy_tower_equals_the_pytorch_tower(base, cases):
    torch.manual_seed(11)
    model = PhenotypeEncoder(
        base.space.n_terms, EncoderParams(term_dim=16, hidden=32, out_dim=8)
    ).eval()
    ic = np.random.default_rng(0).uniform(0.1, 8.0, base.space.n_terms)
    featuriser = Featuriser(base.space, ic)
    patients = _patients(base, cases)
    with torch.no_grad():
        expected = model.embed_patients(*patient_tensors(featuriser, patients)).numpy()
    present_table, absent_table, layers = tower_arrays(model)
    prototypes = np.eye(8, dtype=np.float32)
    index = EncoderIndex(
        featuriser,
        present_table=present_table,
        absent_table=absent_table,
        layers=layers,
        profile_vectors=prototypes,
        prototype_vectors=prototypes,
    )
    got = index.embed(patients)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)
    np.testing.assert_allclose(index.similarity_batch(patients), expected, atol=2e-6)
    np.testing.assert_allclose(index.similarity(patients[0]), expected[0], atol=2e-6)
    assert index.embed([]).shape == (0, 8)


def test_a_fitted_rare_model_scores_without_pytorch(fitted, tmp_path):
    """The fitted model holds numpy arrays only: a process that unpickles it and ranks a
    patient never imports PyTorch (~200 MB of every serving worker)."""
    model, _ = fitted
    index = model.components.encoder
    assert isinstance(index, EncoderIndex)
    norms = np.linalg.norm(index.prototype_vectors, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    path = tmp_path / "rare.pkl"
    path.write_bytes(pickle.dumps(model))
    script = textwrap.dedent(
        f"""
        import pickle, sys
        import numpy as np
        from disease_pipeline.rare.encoder_index import PatientInput
        model = pickle.loads(open({str(path)!r}, "rb").read())
        patient = PatientInput(np.array([1, 2, 3]), np.zeros(0, np.int64), 4.0, "female")
        similarity = model.components.encoder.similarity(patient)
        assert similarity.shape == (len(model.candidates.table),), similarity.shape
        logits = model.hybrid_logits(patient)
        assert np.isfinite(logits).any()
        assert "torch" not in sys.modules, "the fitted rare model imported PyTorch"
        print("ok")
        """
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
