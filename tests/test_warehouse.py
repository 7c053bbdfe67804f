"""WarehouseTableDataset on its default backend, a DuckDB file."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import AbstractDataset, DatasetError

from disease_pipeline.datasets.warehouse import WarehouseTableDataset


def sample_frame() -> pd.DataFrame:
    """Every column type the warehouse tables use, with missing values."""
    return pd.DataFrame(
        {
            "encounter_id": ["e1", "e2", None],
            "severity": pd.array([2, None, 3], dtype="Int64"),
            "start": pd.to_datetime(["2023-01-05T08:12:00Z", None, "2024-02-29T23:59:59Z"]),
            "present": [True, False, True],
            "value": [38.5, float("nan"), 1.0],
        }
    )


def test_round_trip_keeps_values_and_types(tmp_path):
    dataset = WarehouseTableDataset(table="symptoms", filepath=str(tmp_path / "w.duckdb"))
    dataset.save(sample_frame())
    loaded = dataset.load()
    pd.testing.assert_frame_equal(loaded, sample_frame(), check_dtype=False)
    assert str(loaded["start"].dt.tz) == "UTC"
    assert loaded["severity"].dtype == "Int64"


def test_save_replaces_the_table_and_tables_share_one_file(tmp_path):
    path = str(tmp_path / "w.duckdb")
    patients = WarehouseTableDataset(table="patients", filepath=path)
    notes = WarehouseTableDataset(table="notes", filepath=path)
    patients.save(sample_frame())
    notes.save(pd.DataFrame({"text": ["a"]}))
    patients.save(sample_frame().iloc[:1])
    assert len(patients.load()) == 1 and notes.load()["text"].tolist() == ["a"]


def test_exists_and_column_subset(tmp_path):
    dataset = WarehouseTableDataset(
        table="labs", filepath=str(tmp_path / "w.duckdb"), load_args={"columns": ["value"]}
    )
    assert not dataset.exists()
    dataset.save(sample_frame())
    assert dataset.exists()
    assert list(dataset.load().columns) == ["value"]


def test_catalog_style_configuration(tmp_path):
    dataset = AbstractDataset.from_config(
        "prm_patients",
        {
            "type": "disease_pipeline.datasets.warehouse.WarehouseTableDataset",
            "table": "patients",
            "filepath": str(tmp_path / "03_primary" / "warehouse.duckdb"),
        },
    )
    dataset.save(sample_frame())
    assert (tmp_path / "03_primary" / "warehouse.duckdb").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "pa tients", "filepath": "w.duckdb"}, "table 'pa tients' is not a plain SQL"),
        (
            {"table": "t", "backend": "oracle", "filepath": "w"},
            "unknown warehouse backend 'oracle'",
        ),
        ({"table": "t"}, "backend 'duckdb' needs a 'filepath'"),
        ({"table": "t", "backend": "snowflake"}, "backend 'snowflake' needs credentials"),
    ],
)
def test_bad_configuration_is_named(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        WarehouseTableDataset(**kwargs)


def test_bad_data_is_refused_before_writing(tmp_path):
    dataset = WarehouseTableDataset(table="t", filepath=str(tmp_path / "w.duckdb"))
    with pytest.raises(DatasetError, match="column of table 't'"):
        dataset.save(pd.DataFrame({'bad"name': [1]}))
    with pytest.raises(DatasetError, match="expects a pandas DataFrame"):
        dataset.save([1, 2])
    assert not (tmp_path / "w.duckdb").exists()


def test_loading_a_missing_warehouse_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match="warehouse file .*missing.duckdb does not exist"):
        WarehouseTableDataset(table="t", filepath=str(tmp_path / "missing.duckdb")).load()


def test_threads_reading_and_writing_one_file_take_turns(tmp_path):
    """Two nodes of the threaded runner: one reads a table while another replaces
    another. DuckDB refuses a read-write connection to a file another thread holds open
    read-only ("different configuration"); the backend's per-file lock serialises them."""
    import threading

    path = tmp_path / "warehouse.duckdb"
    reader = WarehouseTableDataset(table="a", backend="duckdb", filepath=str(path))
    writer = WarehouseTableDataset(table="b", backend="duckdb", filepath=str(path))
    frame = pd.DataFrame({"x": range(20_000), "y": [f"v{i}" for i in range(20_000)]})
    reader.save(frame)
    errors: list[BaseException] = []

    def repeat(action) -> None:
        try:
            for _ in range(40):
                action()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion
            errors.append(error)

    threads = [
        threading.Thread(target=repeat, args=(reader.load,)),
        threading.Thread(target=repeat, args=(lambda: writer.save(frame),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert len(writer.load()) == len(frame)
