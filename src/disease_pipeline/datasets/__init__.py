"""Custom Kedro datasets of the project."""

from disease_pipeline.datasets.optional_dataset import OptionalDataset
from disease_pipeline.datasets.text_lines_dataset import TextLines, TextLinesDataset

__all__ = ["OptionalDataset", "TextLines", "TextLinesDataset"]
