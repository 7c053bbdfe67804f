"""A folder of phenopackets → registry cases, through the ingestion pipeline's parser.

Used where the Kedro pipeline does not run: the stand-alone evaluation script and the
tests. The files are parsed and validated exactly as ``kedro run --pipeline=ingestion``
does (bad files are quarantined and counted, obsolete HPO ids replaced). It lives with
the pipelines, not in ``rare``, because it runs the ingestion nodes and a Kedro
``PartitionedDataset``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kedro_datasets.partitions import PartitionedDataset

from disease_pipeline.pipelines.ingestion.nodes import build_vocabulary, parse_phenopacket_folder
from disease_pipeline.rare.cases import registry_frame


def ingest_phenopackets(
    folder: Path | str, ingestion_params: dict[str, Any], anonymization_params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Registry-case table (``feat_registry_cases`` shape) of every phenopacket in ``folder``.

    ``ingestion_params`` and ``anonymization_params`` are the ``ingestion`` and
    ``anonymization`` parameters (ages are grouped as the warehouse groups them). Returns the table
    and counts: files read, rows quarantined, cases. Raises ``FileNotFoundError``
    naming the folder when it does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"phenopacket folder {root} does not exist")
    partitions = PartitionedDataset(
        path=str(root), dataset="text.TextDataset", filename_suffix=".json"
    ).load()
    params = {**ingestion_params, "phenopackets": {"folder": str(root)}}
    parsed = parse_phenopacket_folder(partitions or None, build_vocabulary(params), params)
    tables = parsed.tables
    frame = registry_frame(
        tables["symptoms"],
        tables["diagnoses"],
        tables["patients"],
        tables.get("encounters"),
        age_top_code=float(anonymization_params["age_top_code"]),
        age_decimals=int(anonymization_params["age_decimals"]),
    )
    counts = {
        "files": int(parsed.read),
        "quarantine_rows": len(parsed.quarantine),
        "cases": len(frame),
    }
    return frame, counts


def phenopacket_publications(folder: Path | str) -> dict[str, str]:
    """Phenopacket id → the publication it reports (the first ``PMID:`` id among
    ``metaData.externalReferences``) of every phenopacket in ``folder``, for the rare
    validation's ``new_publication`` protocol. A file that is not a JSON object, or
    names no PubMed reference, gives no entry (ingestion quarantines the bad files)."""
    out: dict[str, str] = {}
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            packet = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(packet, dict) or "id" not in packet:
            continue
        references = (packet.get("metaData") or {}).get("externalReferences") or []
        pmids = [
            str(r["id"])
            for r in references
            if isinstance(r, dict) and str(r.get("id", "")).upper().startswith("PMID:")
        ]
        if pmids:
            out[str(packet["id"])] = pmids[0]
    return out
