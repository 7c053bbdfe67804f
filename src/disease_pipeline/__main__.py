"""disease_pipeline file for ensuring the package is executable
as `disease-pipeline` and `python -m disease_pipeline`
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

from disease_pipeline.edge_export.cli import EXPORT_COMMANDS, export_edge
from disease_pipeline.registry_cli import REGISTRY_COMMANDS, registry_cli


def main(*args, **kwargs) -> Any:
    if not args and len(sys.argv) > 1 and sys.argv[1] in EXPORT_COMMANDS:
        # `disease-pipeline export-edge …`: the edge package (edge_export/cli.py),
        # whose writer loads PyTorch and the ONNX converters only when it runs
        return export_edge(sys.argv[2:], standalone_mode=not hasattr(sys, "ps1"))
    if not args and len(sys.argv) > 1 and sys.argv[1] in REGISTRY_COMMANDS:
        # `disease-pipeline promote|rollback …`: registry aliases (registry_cli.py)
        return registry_cli(standalone_mode=not hasattr(sys, "ps1"))
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
