"""``python -m disease_pipeline.edge``: the ``disease-pipeline-edge`` command."""

import sys

from disease_pipeline.edge.cli import main

sys.exit(main())
