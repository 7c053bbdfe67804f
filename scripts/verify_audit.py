"""Verify the hash chain of the service's audit trail (exit code 0 when intact).

    python scripts/verify_audit.py data/09_serving/audit_log.jsonl [--expect-head HASH]

Same as ``python -m disease_pipeline.serving.audit verify``.
"""

import sys

from disease_pipeline.serving.audit import main

if __name__ == "__main__":
    sys.exit(main(["verify", *sys.argv[1:]]))
