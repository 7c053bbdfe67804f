"""FHIR R4 ``collection`` bundles, one per encounter, serialised as NDJSON lines.

Entry errors (impossible or wrongly-united vitals, malformed HPO/ICD-10 codes, a birth
date after the encounter) and repeated Observation entries (new id, same content) are
injected here and returned as ground-truth rows. Every bundle stays valid FHIR: the
errors are in values and codes, never in the structure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disease_pipeline.pipelines.simulate import corrupt
from disease_pipeline.pipelines.simulate import resources as res
from disease_pipeline.pipelines.simulate.common import (
    SECONDS_PER_DAY,
    SEVERITY_SNOMED,
    group_offsets,
    iso_dates,
    iso_datetimes,
    stream,
    uuid_strings,
)

ERROR_KINDS = np.array(["vital_value", "vital_unit", "hpo_code", "icd_code", "birth_date"])


def plan_faults(
    rng: np.random.Generator, cfg: dict[str, Any], encounters: pd.DataFrame, counts: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Error kind per bundle (``""`` = none) and the bundles that repeat an Observation.

    ``counts`` holds per-encounter arrays ``vitals``, ``hpo`` (HPO-coded symptoms) and
    ``observations``; an error kind is only drawn where it has something to corrupt.
    """
    n = len(encounters)
    allowed = np.stack(
        [
            counts["vitals"] > 0,
            counts["vitals"] > 0,
            counts["hpo"] > 0,
            (encounters["system"] == "ICD10").to_numpy(),
            np.ones(n, bool),
        ],
        axis=1,
    )
    keys = np.where(allowed, rng.random(allowed.shape), np.inf)
    drawn = ERROR_KINDS[np.argmin(keys, axis=1)]
    kind = np.where(rng.random(n) < cfg["errors"]["rate"], drawn, "")
    repeat = (
        (rng.random(n) < cfg["duplicates"]["rate"]) & (kind == "") & (counts["observations"] > 0)
    )
    return kind, repeat


@dataclass
class _BundleWriter:
    """Builds bundle ``i`` from pre-extracted columns; collects ground-truth rows."""

    rng: np.random.Generator
    ids: Any  # iterator of fresh resource ids
    lab_rows: dict[str, dict]
    names: dict[str, str]
    truth: list[tuple] = field(default_factory=list)

    def condition(self, ctx: dict, diagnosis: dict, recorded: str) -> str:
        if ctx["fault"] == "icd_code":
            bad = corrupt.malformed_icd10(self.rng, diagnosis["code"])
            desc = f"malformed ICD-10 code {bad!r} (was {diagnosis['code']})"
            self.truth.append(("fhir", ctx["line"], 2, "error", "code.coding[0].code", desc))
            diagnosis = diagnosis | {"code": bad}
        condition = res.condition_resource(next(self.ids), ctx["refs"], diagnosis, recorded)
        return res.entry_json(condition)

    def patient(self, ctx: dict, patient: dict, cached: str) -> str:
        if ctx["fault"] != "birth_date":
            return cached
        bad_day = int(ctx["start_s"] // SECONDS_PER_DAY) + int(self.rng.integers(1, 3650))
        bad = str(iso_dates(np.array([bad_day]))[0])
        desc = f"birth date {bad} after encounter start {ctx['start']}"
        self.truth.append(("fhir", ctx["line"], 0, "error", "birthDate", desc))
        return res.entry_json(res.patient_resource(patient) | {"birthDate": bad})

    def symptoms(self, ctx: dict, first: int, rows: list) -> list[dict]:
        hpo = [k for k, row in enumerate(rows) if row[4] == "HPO"]
        bad_k = hpo[int(self.rng.integers(len(hpo)))] if ctx["fault"] == "hpo_code" else -1
        out = []
        for k, (hpo_id, present, severity, onset, system, recorded_code) in enumerate(rows):
            code = recorded_code
            if k == bad_k:
                code = corrupt.malformed_hpo(self.rng, recorded_code)
                desc = f"malformed HPO code {code!r} (was {recorded_code})"
                self.truth.append(
                    ("fhir", ctx["line"], first + k, "error", "code.coding[0].code", desc)
                )
            finding = {
                "system": system, "code": code, "name": self.names[hpo_id],
                "present": bool(present), "severity": int(severity), "onset_days": int(onset),
            }  # fmt: skip
            out.append(res.symptom_observation(next(self.ids), ctx["refs"], ctx["start"], finding))
        return out

    def vitals(self, ctx: dict, first: int, rows: list) -> list[dict]:
        fault, line = ctx["fault"], ctx["line"]
        bad_k = int(self.rng.integers(len(rows))) if fault.startswith("vital") else -1
        out = []
        for k, (loinc, measured, measured_unit, decimals, when) in enumerate(rows):
            row = self.lab_rows[loinc]
            unit = measured_unit
            value = int(round(measured)) if decimals == 0 else round(float(measured), int(decimals))
            if k == bad_k and fault == "vital_value":
                value, desc = corrupt.impossible_value(self.rng, row, unit, int(decimals))
                self.truth.append(("fhir", line, first + k, "error", "valueQuantity.value", desc))
            elif k == bad_k:
                unit = corrupt.wrong_unit(self.rng, row)
                desc = f"{row['name']}: unit {unit!r} not convertible to {row['canonical_unit']}"
                self.truth.append(("fhir", line, first + k, "error", "valueQuantity.unit", desc))
            vital = {"loinc": loinc, "name": row["name"], "value": value, "unit": unit}
            out.append(res.vital_observation(next(self.ids), ctx["refs"], when, vital))
        return out

    def repeat(self, ctx: dict, first: int, observations: list[dict]) -> None:
        pick = int(self.rng.integers(len(observations)))
        observations.insert(pick + 1, observations[pick] | {"id": next(self.ids)})
        desc = f"repeat of entry {first + pick} with a new id"
        self.truth.append(("fhir", ctx["line"], first + pick + 1, "duplicate", "Observation", desc))


def build_bundles(cfg: dict[str, Any], tables: dict[str, pd.DataFrame], notes: np.ndarray,
                  names: dict[str, str]) -> tuple[list[str], pd.DataFrame]:  # fmt: skip
    """NDJSON lines (one bundle per encounter, in time order) and their ground-truth rows.

    ``tables`` holds the simulated ``patients``, ``encounters``, ``symptoms``, ``vitals``
    and the LOINC ``lab_table``.
    """
    rng = stream(cfg["seed"], "fhir")
    tz = str(cfg["timezone"])
    encounters, symptoms, vitals = tables["encounters"], tables["symptoms"], tables["vitals"]
    n = len(encounters)
    start_s = encounters["start_s"].to_numpy()
    start = iso_datetimes(start_s, tz)
    recorded = iso_datetimes(start_s + rng.integers(1800, 14_400, size=n), tz)
    v_enc = vitals["encounter"].to_numpy()
    vital_time = iso_datetimes(start_s[v_enc] + 60 * vitals["minutes"].to_numpy(), tz)
    s_off = group_offsets(symptoms["encounter"].to_numpy(), n)
    v_off = group_offsets(v_enc, n)
    hpo_coded = symptoms["encounter"].to_numpy()[(symptoms["system"] == "HPO").to_numpy()]
    counts = {
        "vitals": np.diff(v_off),
        "hpo": np.bincount(hpo_coded, minlength=n),
        "observations": np.diff(s_off) + np.diff(v_off),
    }
    fault, repeat = plan_faults(rng, cfg, encounters, counts)
    n_ids = 3 * n + len(symptoms) + len(vitals) + int(repeat.sum())
    writer = _BundleWriter(
        rng=rng,
        ids=iter(uuid_strings(rng, n_ids)),
        lab_rows={r["loinc"]: r for r in tables["lab_table"].to_dict("records")},
        names=names,
    )
    patients = tables["patients"].to_dict("records")
    cached = [res.entry_json(res.patient_resource(p)) for p in patients]
    sym_cols = ["hpo_id", "present", "severity", "onset_days", "system", "code"]
    sym = symptoms[sym_cols].to_numpy().tolist()
    vit = vitals[["loinc", "value", "unit", "decimals"]].assign(when=vital_time)
    vit = vit.to_numpy().tolist()
    enc_cols = ["encounter_id", "patient", "system", "code", "disease_name", "severity"]
    enc = encounters[[*enc_cols, "encounter_class"]].to_numpy().tolist()
    lines: list[str] = []
    for i in tqdm(range(n), desc="simulate: FHIR bundles", unit="bundle", mininterval=1.0):
        eid, patient, system, code, disease, severity, klass = enc[i]
        pid = patients[patient]["patient_id"]
        refs = {
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{eid}"},
        }
        ctx = {"line": i + 1, "refs": refs, "fault": str(fault[i]), "start": start[i],
               "start_s": int(start_s[i])}  # fmt: skip
        sev_code, sev_name = SEVERITY_SNOMED[severity]
        diagnosis = {"system": system, "code": code, "name": disease,
                     "severity_code": sev_code, "severity_name": sev_name}  # fmt: skip
        entries = [
            writer.patient(ctx, patients[patient], cached[patient]),
            res.entry_json(res.encounter_resource(eid, refs, klass, start[i])),
            writer.condition(ctx, diagnosis, recorded[i]),
        ]
        first = len(entries)
        observations = writer.symptoms(ctx, first, sym[s_off[i] : s_off[i + 1]])
        observations += writer.vitals(ctx, first + len(observations), vit[v_off[i] : v_off[i + 1]])
        if repeat[i]:
            writer.repeat(ctx, first, observations)
        entries.extend(res.entry_json(o) for o in observations)
        if notes[i]:
            note = res.document_reference(next(writer.ids), refs, start[i], klass, notes[i])
            entries.append(res.entry_json(note))
        lines.append(res.bundle_json(next(writer.ids), entries))
    return lines, corrupt.ground_truth(writer.truth)


def validate_bundles(lines: list[str], indices: np.ndarray | list[int]) -> None:
    """Validate the bundles at ``indices`` with the ``fhir.resources`` R4B models.

    Raises:
        ValueError: naming the first invalid bundle's line and the validation message.
    """
    from fhir.resources.R4B.bundle import Bundle

    for i in indices:
        try:
            Bundle.model_validate(json.loads(lines[i]))
        except Exception as exc:  # pydantic's ValidationError or a JSON error
            raise ValueError(f"FHIR bundle on line {i + 1} is not valid R4(B): {exc}") from exc
