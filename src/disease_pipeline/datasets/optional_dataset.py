"""A dataset that may legitimately be absent: ``load`` returns None instead of failing.

Used for inputs that exist only in some deployments, such as the simulator's ground
truth (absent for a real hospital export) or the phenopacket registry folder.
"""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps any dataset; loading it when its data does not exist gives None.

    Example:
        ```yaml
        raw_injected_errors:
          type: disease_pipeline.datasets.OptionalDataset
          dataset:
            type: pandas.CSVDataset
            filepath: ${globals:data_root}/01_raw/ground_truth/injected.csv
        ```
    """

    def __init__(self, *, dataset: dict[str, Any] | str, metadata: dict[str, Any] | None = None):
        config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        self._dataset = AbstractDataset.from_config("optional_inner", config)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}

    def load(self) -> Any | None:
        """The wrapped dataset's data, or None when it does not exist."""
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: Any) -> None:
        """Save through the wrapped dataset."""
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()
