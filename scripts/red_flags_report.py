"""Red-flag presentations and test recommendations of a trained predictor, for review.

Classic symptom-only presentations of time-critical diseases (and three everyday
patients) go through ``predict_records``; the differential's top 5, the flagged
can't-miss diagnoses with their rule-out test, the severity, the knowledge findings and
the recommended tests are written to ``data/08_reporting/red_flags.json``.

    python scripts/red_flags_report.py --predictor data/06_models/predictor.pkl
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: name → (age, sex, present HPO terms, expected can't-miss code or None)
PRESENTATIONS = {
    "58-year-old man, chest pain and dyspnoea": (58, "male", ["HP:0100749", "HP:0002094"], "I21"),
    "45-year-old woman, pleuritic chest pain, dyspnoea, haemoptysis": (
        45,
        "female",
        ["HP:0033771", "HP:0002094", "HP:0002105"],
        "I26",
    ),
    "72-year-old man, fever, confusion, tachypnoea, chills": (
        72,
        "male",
        ["HP:0001945", "HP:0001289", "HP:0002789", "HP:0025143"],
        "A41.9",
    ),
    "19-year-old man, abdominal pain, nausea, anorexia, fever": (
        19,
        "male",
        ["HP:0002027", "HP:0002018", "HP:0002039", "HP:0001945"],
        "K35.8",
    ),
    "17-year-old woman, polyuria, polydipsia, vomiting": (
        17,
        "female",
        ["HP:0000103", "HP:0001959", "HP:0002013"],
        "E10.1",
    ),
    "74-year-old man, hemiparesis, dysarthria, facial palsy": (
        74,
        "male",
        ["HP:0001269", "HP:0001260", "HP:0010628"],
        "I63.9",
    ),
    "30-year-old woman, urticaria, wheezing, dyspnoea": (
        30,
        "female",
        ["HP:0001025", "HP:0030828", "HP:0002094"],
        "T78.0",
    ),
    "25-year-old woman, runny nose, sneezing, sore throat": (
        25,
        "female",
        ["HP:0031417", "HP:0025095", "HP:0033050"],
        None,
    ),
    "40-year-old man, podagra and joint swelling": (40, "male", ["HP:0001854", "HP:0001386"], None),
    "34-year-old woman, dysuria and frequent urination": (
        34,
        "female",
        ["HP:0100518", "HP:0100515"],
        None,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictor", default="data/06_models/predictor.pkl")
    parser.add_argument("--output", default="data/08_reporting/red_flags.json")
    args = parser.parse_args()
    with (PROJECT_ROOT / args.predictor).open("rb") as handle:
        predictor = pickle.load(handle)
    report = {}
    for name, (age, sex, terms, expected) in PRESENTATIONS.items():
        record = {"age": age, "sex": sex, "symptoms": [{"code": t} for t in terms]}
        output = predictor.predict_records([record], top_k=10)[0]
        differential = output["differential"]
        codes = [e["code"] for e in differential]
        report[name] = {
            "expected_cant_miss": expected,
            "expected_rank": codes.index(expected) + 1 if expected in codes else None,
            "top5": [(e["code"], e["name"], round(e["probability"], 3)) for e in differential[:5]],
            "must_not_miss": [
                (e["code"], e["name"], round(e["probability"], 4), e["rule_out"])
                for e in differential
                if e.get("must_not_miss")
            ],
            "severity": output["severity"],
            "findings": [f["text"] for f in output["explanation"].get("findings", [])],
            "recommended_tests": [
                t["text"] for t in output["explanation"].get("recommended_tests", [])
            ],
        }
        print(
            f"\n{name}\n  top5: {report[name]['top5']}\n  flagged: {report[name]['must_not_miss']}"
        )
        print(f"  severity: {output['severity']['level']} {output['severity'].get('note', '')}")
        print(f"  tests: {report[name]['recommended_tests']}")
    path = PROJECT_ROOT / args.output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
