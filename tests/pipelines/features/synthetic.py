"""Tiny warehouse-shaped tables (layer 03 columns) for the features tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: disease code → (system, category, characteristic HPO terms, vital shifts)
DISEASES = {
    "J18.9": ("ICD10", "COMMON", ["HP:0001945", "HP:0012735", "HP:0002094"], {"9279-1": 8}),
    "J06.9": ("ICD10", "COMMON", ["HP:0031417", "HP:0001742", "HP:0012735"], {}),
    "K35.8": ("ICD10", "COMMON", ["HP:0002027", "HP:0002018", "HP:0001945"], {"8867-4": 20}),
    "154700": ("OMIM", "RARE", ["HP:0001166", "HP:0001519", "HP:0000545"], {}),
}
VITALS = {"8867-4": 75, "9279-1": 16, "8310-5": 36.8, "59408-5": 97, "8480-6": 120, "8462-4": 78}
LABS = {"6690-2": 7.0, "1988-5": 5.0, "2345-7": 95.0}
SEVERITIES = ["low", "moderate", "high", "critical"]


def warehouse_tables(n_patients: int = 60, seed: int = 0, registry: int = 4) -> dict:
    """``prm_*`` frames: patients, encounters, symptoms, vitals, labs, diagnoses."""
    rng = np.random.default_rng(seed)
    codes = list(DISEASES)
    patients, encounters, symptoms, vitals, labs, diagnoses = [], [], [], [], [], []
    start0 = pd.Timestamp("2021-01-01", tz="UTC")
    for p in range(n_patients + registry):
        pid = f"p{p:04d}"
        is_registry = p >= n_patients
        patients.append(
            {
                "patient_id": pid,
                "source": "phenopacket" if is_registry else "fhir",
                "sex": ["female", "male", "unknown"][p % 3],
                "zip3": "123",
            }
        )
        for k in range(1 if is_registry else int(rng.integers(1, 4))):
            eid = f"e{p:04d}_{k}"
            start = (start0 + pd.Timedelta(days=float(rng.uniform(0, 3 * 365)))).floor("s")
            code = "154700" if is_registry else codes[int(rng.integers(0, len(codes)))]
            system, category, terms, shifts = DISEASES[code]
            encounters.append(
                {
                    "encounter_id": eid,
                    "patient_id": pid,
                    "source": "phenopacket" if is_registry else "fhir",
                    "start": start,
                    "encounter_class": "AMB",
                    "age_years": float(rng.integers(1, 95)),
                    "age_90_plus": False,
                }
            )
            for term in terms:
                if rng.random() < 0.8:
                    symptoms.append(
                        {
                            "encounter_id": eid,
                            "hpo_id": term,
                            "present": True,
                            "severity": int(rng.integers(1, 4)) if rng.random() < 0.7 else None,
                            "onset_days": float(rng.integers(0, 120))
                            if rng.random() < 0.7
                            else None,
                            "source": "fhir",
                            "original_system": "HPO",
                            "original_code": term,
                        }
                    )
            if rng.random() < 0.4:
                symptoms.append(
                    {
                        "encounter_id": eid,
                        "hpo_id": "HP:0002315",
                        "present": False,
                        "severity": None,
                        "onset_days": None,
                        "source": "fhir",
                        "original_system": "HPO",
                        "original_code": "HP:0002315",
                    }
                )
            diagnoses.append(
                {
                    "encounter_id": eid,
                    "code": code,
                    "system": system,
                    "name": code,
                    "category": category,
                    "role": "primary",
                    "severity": SEVERITIES[int(rng.integers(0, 4))],
                }
            )
            if rng.random() < 0.3:
                diagnoses.append(
                    {
                        "encounter_id": eid,
                        "code": ["E11.9", "I10"][int(rng.integers(0, 2))],
                        "system": "ICD10",
                        "name": "",
                        "category": "COMMON",
                        "role": "comorbidity",
                        "severity": None,
                    }
                )
            if is_registry:
                continue
            for loinc, mean in VITALS.items():
                if rng.random() < 0.9:
                    vitals.append(
                        {
                            "encounter_id": eid,
                            "loinc": loinc,
                            "name": loinc,
                            "unit": "",
                            "value": mean + shifts.get(loinc, 0) + rng.normal(0, 2),
                        }
                    )
            for loinc, mean in LABS.items():
                for _ in range(int(rng.integers(0, 3))):
                    labs.append(
                        {
                            "encounter_id": eid,
                            "loinc": loinc,
                            "name": loinc,
                            "value": mean * rng.uniform(0.7, 1.6),
                            "unit": "",
                            "original_value": None,
                            "original_unit": "",
                            "collected_at": start,
                        }
                    )
    return {
        "patients": pd.DataFrame(patients),
        "encounters": pd.DataFrame(encounters),
        "symptoms": pd.DataFrame(symptoms),
        "vitals": pd.DataFrame(vitals),
        "labs": pd.DataFrame(labs),
        "diagnoses": pd.DataFrame(diagnoses),
    }
