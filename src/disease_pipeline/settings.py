"""Kedro project settings.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the defaults.
kedro-mlflow registers its hooks through its plugin entry point.
"""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}
