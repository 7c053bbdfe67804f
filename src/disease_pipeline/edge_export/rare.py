"""The rare-disease hybrid (``rare.model.RareDiseaseModel``) as edge arrays and ONNX.

The component scorers keep their sparse matrices as CSC/CSR index arrays (the same
float32 values the scorers walk); the phenotype encoder's patient tower, with its term
embeddings and every candidate's prototype, becomes one ONNX graph (torch.onnx) from
dense term-weight vectors to the cosine similarity with every candidate.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from disease_pipeline.edge_export.trees import tree_arrays
from disease_pipeline.rare.components import ROBUST_FLOOR
from disease_pipeline.rare.hybrid import FEATURES, RERANK_FEATURES

ENCODER_OPSET = 17
ENCODER_FILE = "rare_encoder.onnx"
#: prefix of the re-ranking trees' arrays in ``rare.npz``
RERANK_PREFIX = "rerank"


class _EncoderGraph(nn.Module):
    """The patient tower on dense bags: ``present``/``excluded`` (n, n_terms) weights,
    ``extra`` (n, 4) → cosine similarity (n, n_candidates) with the prototypes."""

    def __init__(self, index: Any) -> None:
        super().__init__()

        def buffer(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))

        self.register_buffer("present_table", buffer(index.present_table))
        self.register_buffer("absent_table", buffer(index.absent_table))
        self.register_buffer("prototypes", buffer(index.prototype_vectors.T))
        self.layers = nn.ModuleList()
        for weight, bias in index.layers:
            layer = nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                layer.weight.copy_(buffer(weight))
                layer.bias.copy_(buffer(bias))
            self.layers.append(layer)

    def forward(
        self, present: torch.Tensor, excluded: torch.Tensor, extra: torch.Tensor
    ) -> torch.Tensor:
        x = torch.cat([present @ self.present_table, excluded @ self.absent_table, extra], dim=1)
        for position, layer in enumerate(self.layers):
            x = layer(x)
            if position < len(self.layers) - 1:
                x = nn.functional.gelu(x)
        return nn.functional.normalize(x, dim=1) @ self.prototypes


def encoder_onnx(index: Any) -> bytes:
    """The encoder index (``rare.encoder_index.EncoderIndex``) as serialised ONNX."""
    graph = _EncoderGraph(index).eval()
    n_terms, term_dim = index.present_table.shape
    n_extra = index.layers[0][0].shape[1] - 2 * term_dim
    example = (torch.zeros(1, n_terms), torch.zeros(1, n_terms), torch.zeros(1, n_extra))
    names = ["present", "excluded", "extra"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            graph,
            example,
            buffer,
            input_names=names,
            output_names=["similarity"],
            dynamic_axes={name: {0: "n"} for name in [*names, "similarity"]},
            opset_version=ENCODER_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _csc(prefix: str, indptr: np.ndarray, indices: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}_indptr": np.asarray(indptr), f"{prefix}_indices": np.asarray(indices)}


def rare_arrays(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, bytes]]:
    """``(config, arrays, onnx files)`` of a fitted ``RareDiseaseModel``."""
    components = model.components
    space = model.space
    lr = components.case_knowledge
    resnik, cases = components.resnik, components.case_resnik
    lookup = model._rare_lookup()
    anc = space.ancestor_lists
    arrays = {
        "space_ids": np.asarray(space.ids),
        "space_anc_indptr": np.concatenate([[0], np.cumsum([len(a) for a in anc])]),
        "space_anc_indices": np.concatenate(anc).astype(np.int32),
        **_csc("lr_ratio", lr._ratio.indptr, lr._ratio.indices),
        "lr_ratio_data": lr._ratio.data,
        **_csc("lr_freq", lr._freq.indptr, lr._freq.indices),
        "lr_freq_data": lr._freq.data,
        **_csc("lr_not", lr._not.indptr, lr._not.indices),
        "lr_background": np.asarray(lr.background, np.float64),
        **_csc("resnik", resnik.indptr, resnik.indices),
        "resnik_ic": resnik.ic,
        "resnik_direct_terms": resnik.direct_terms,
        "resnik_dm_indptr": resnik.direct_mean.indptr,
        "resnik_dm_indices": resnik.direct_mean.indices,
        "resnik_dm_data": resnik.direct_mean.data,
        **_csc("resnik_desc", resnik.descendant_indptr, resnik.descendant_indices),
        **_csc("resnik_exact", resnik.exact.indptr, resnik.exact.indices),
        **_csc("cases", cases.indptr, cases.indices),
        "cases_ic": cases.ic,
        "has_cases": components.has_cases,
        "has_published": components.has_published,
        "not_omim": components.not_omim,
        "weights": np.asarray(model.weights, np.float64),
        "rare_columns": lookup.columns,
        "rare_ids": lookup.id_array,
        "rare_names": lookup.names.astype(str),
    }
    if np.array_equal(arrays["lr_ratio_indptr"], arrays["lr_freq_indptr"]) and np.array_equal(
        arrays["lr_ratio_indices"], arrays["lr_freq_indices"]
    ):  # one structure, stored once
        for key in ("lr_freq_indptr", "lr_freq_indices"):
            del arrays[key]
    reranker = getattr(components, "reranker", None)
    rerank: dict[str, Any] | None = None
    if reranker is not None:
        rerank, trees = tree_arrays(reranker, len(RERANK_FEATURES))
        rerank |= {
            "prefix": RERANK_PREFIX,
            "top": int(components.rerank_top),
            "features": list(RERANK_FEATURES),
        }
        arrays |= {f"{RERANK_PREFIX}_{key}": value for key, value in trees.items()}
    groups = getattr(model, "equivalence", None)
    if groups is not None:
        arrays["equivalence_primary"] = np.asarray(groups.primary)
    files: dict[str, bytes] = {}
    encoder = components.encoder
    if encoder is not None:
        arrays["encoder_ic"] = encoder.featuriser.ic
        files[ENCODER_FILE] = encoder_onnx(encoder)
    p = lr.params
    config = {
        "features": list(FEATURES),
        "temperature": float(model.temperature),
        "serving_top_k": int(model.serving_top_k),
        "encoder": ENCODER_FILE if encoder is not None else None,
        "n_candidates": int(len(components.has_cases)),
        "lr_noise": p.noise,
        "lr_ancestor_discount": p.ancestor_discount,
        "lr_not_annotated": p.not_annotated,
        "lr_excluded_floor": p.excluded_floor,
        "robust_floor": ROBUST_FLOOR,
        "hpo_version": model.ontology.version,
        "rerank": rerank,
    }
    return config, arrays, files
