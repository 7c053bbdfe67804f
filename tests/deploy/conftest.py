"""The trained test model's BentoML store and the session's tokens (tests/serving)."""

from tests.serving.conftest import tokens, trained_store  # noqa: F401
