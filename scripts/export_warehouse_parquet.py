"""Exports the DuckDB warehouse's screening tables as the Parquet folders the spark
environment reads (conf/spark/catalog_screen.yml, docs/scale.md): one folder per
table, ``encounters`` partitioned by ``start_date`` (the UTC date of ``start``), times
in microseconds (what Spark reads).

    python scripts/export_warehouse_parquet.py            # data/03_primary/export
    python scripts/export_warehouse_parquet.py --warehouse w.duckdb --out /mnt/export

A Snowflake warehouse exports the same layout with ``COPY INTO @stage/encounters
FROM (SELECT *, TO_VARCHAR(start::DATE) AS start_date FROM encounters)
PARTITION BY ('start_date=' || start_date) FILE_FORMAT = (TYPE = PARQUET)
HEADER = TRUE``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import duckdb

TABLES = ("patients", "encounters", "symptoms", "vitals", "labs", "diagnoses")


def export(warehouse: Path, out: Path) -> list[Path]:
    """Writes ``out/<table>`` for each table of :data:`TABLES` (replacing it)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    folders = []
    try:
        for table in TABLES:
            folder = out / table
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if table == "encounters":
                query = (
                    "SELECT *, strftime(CAST(start AS TIMESTAMPTZ), '%Y-%m-%d') AS start_date"
                    " FROM encounters"
                )
                options = "FORMAT PARQUET, PARTITION_BY (start_date)"
            else:
                query, options = f"SELECT * FROM {table}", "FORMAT PARQUET"
                folder.mkdir()
                folder = folder / "part-0.parquet"
            con.execute(f"COPY ({query}) TO '{folder}' ({options})")
            folders.append(out / table)
    finally:
        con.close()
    return folders


def main() -> None:
    root = Path(__file__).resolve().parents[1] / "data" / "03_primary"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=root / "warehouse.duckdb")
    parser.add_argument("--out", type=Path, default=root / "export")
    args = parser.parse_args()
    for folder in export(args.warehouse, args.out):
        print(folder)


if __name__ == "__main__":
    main()
