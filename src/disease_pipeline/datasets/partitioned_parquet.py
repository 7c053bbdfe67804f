"""A pandas DataFrame written as a Parquet folder partitioned by columns (pyarrow's
``write_to_dataset``): ``<column>=<value>/`` folders; the partitions the frame touches
are replaced, the others kept. kedro-datasets' ``pandas.ParquetDataset`` refuses
``partition_cols``.

Example:
    ```yaml
    model_output_screenings_by_date:
      type: disease_pipeline.datasets.partitioned_parquet.PartitionedParquetDataset
      filepath: ${globals:data_root}/07_model_output/screenings_by_date
      partition_cols: [encounter_date]
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io.core import AbstractDataset


class PartitionedParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A Parquet folder partitioned by ``partition_cols``."""

    def __init__(
        self,
        *,
        filepath: str,
        partition_cols: list[str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._partition_cols = list(partition_cols)
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        return pq.read_table(self._filepath).to_pandas()

    def save(self, data: pd.DataFrame) -> None:
        self._filepath.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(data, preserve_index=False)
        pq.write_to_dataset(
            table,
            self._filepath,
            partition_cols=self._partition_cols,
            existing_data_behavior="delete_matching",
        )

    def _exists(self) -> bool:
        return self._filepath.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "partition_cols": self._partition_cols}
