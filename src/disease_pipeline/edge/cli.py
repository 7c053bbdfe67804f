"""``disease-pipeline-edge predict patient.json``: the edge answer on the command line.

    disease-pipeline-edge predict patient.json --package data/06_models/edge
    disease-pipeline-edge predict patient.json --json --top-k 5
    disease-pipeline-edge predict patient.json --engine onnx
    disease-pipeline-edge info --package data/06_models/edge

``patient.json`` holds one patient record (the service's ``PatientRecord`` fields) or
a list of them; ``-`` reads standard input. A bad record exits with status 2 and a
message naming the field (``patient.labs[0].unit: …``). The package folder defaults
to ``$DISEASE_PIPELINE_EDGE`` or ``data/06_models/edge``. ``--engine`` chooses how the
boosters run: ``exact`` (default: the package's node arrays in numpy, XGBoost's outputs
bit for bit) or ``onnx`` (the package's ONNX tree ensembles in onnxruntime).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from disease_pipeline.edge.models import DEFAULT_ENGINE, ENGINES
from disease_pipeline.edge.package import DEFAULT_PACKAGE, PackageError
from disease_pipeline.edge.record import EdgeInputError

EXIT_BAD_INPUT = 2
EXIT_BAD_PACKAGE = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disease-pipeline-edge",
        description="Offline disease prediction from an edge package (onnxruntime + numpy).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    default = os.environ.get("DISEASE_PIPELINE_EDGE", str(DEFAULT_PACKAGE))
    predict = commands.add_parser("predict", help="rank the differential of patient records")
    predict.add_argument("patient", help="JSON file with one record or a list ('-': stdin)")
    predict.add_argument("--package", default=default, help=f"package folder ({default})")
    predict.add_argument("--top-k", type=int, default=10, help="differential length (10)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="how the boosters run: exact (numpy, XGBoost's outputs bit for bit; default) "
        "or onnx (onnxruntime's tree ensembles)",
    )
    info = commands.add_parser("info", help="print the package's manifest")
    info.add_argument("--package", default=default, help=f"package folder ({default})")
    return parser


def _read(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EdgeInputError("patient", f"not valid JSON ({error})") from None


def render(prediction: dict[str, Any]) -> str:
    """A prediction as a short text table."""
    lines = [f"{'rank':>4}  {'probability':>11}  {'category':8}  disease"]
    for rank, entry in enumerate(prediction["differential"], start=1):
        flag = "  [must not miss: " + entry["rule_out"] + "]" if entry.get("must_not_miss") else ""
        lines.append(
            f"{rank:>4}  {entry['probability']:>11.4f}  {entry['category']:8}  "
            f"{entry['name']} ({entry['code']}){flag}"
        )
    severity = prediction["severity"]
    probabilities = ", ".join(f"{k} {v:.3f}" for k, v in severity["probabilities"].items())
    lines.append(f"P(rare): {prediction['p_rare']:.4f}")
    lines.append(f"severity: {severity['level']} ({probabilities})")
    if severity.get("note"):
        lines.append(f"  {severity['note']}")
    lines += [f"note: {note}" for note in prediction.get("notes", [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``disease-pipeline-edge`` console script."""
    args = _parser().parse_args(argv)
    from disease_pipeline.edge.predict import EdgePredictor

    try:
        if args.command == "info":
            from disease_pipeline.edge.package import load_package

            print(json.dumps(load_package(args.package).manifest, indent=2))
            return 0
        records = _read(args.patient)
        predictor = EdgePredictor.load(args.package, engine=args.engine)
        many = isinstance(records, list)
        outputs = []
        for i, record in enumerate(records if many else [records]):
            where = f"patient[{i}]" if many else "patient"
            outputs.append(predictor.predict(predictor.rules.patient(record, where), args.top_k))
    except EdgeInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (PackageError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_PACKAGE
    if args.json:
        print(json.dumps(outputs if many else outputs[0], indent=2))
    else:
        print("\n\n".join(render(o) for o in outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
