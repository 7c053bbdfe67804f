"""The Kedro-free core: rules shared by the pipelines, the predictor and the service.

Each rule is defined once here — severity levels, the key and label columns of the
model tables, age top-coding, free-text scrubbing — and imported by everyone else.
``core`` imports nothing of ``disease_pipeline`` but itself, and neither Kedro nor
the pipelines (an import-linter contract in ``pyproject.toml`` checks it;
``docs/architecture.md`` draws the layers).
"""
