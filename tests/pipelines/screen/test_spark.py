"""The Spark path (pyspark in local[2] mode, a real JVM) gives the pandas path's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disease_pipeline.pipelines.screen.nodes import window_tables
from disease_pipeline.predictor.screening import score_tables

from .conftest import screen_params

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark():
    from disease_pipeline.pipelines.screen.spark import spark_session

    session = spark_session("local[2]", **{"spark.driver.memory": "1g"})
    yield session
    session.stop()


def test_spark_rows_equal_the_pandas_rows(spark, screen_prm, screen_predictor):
    from disease_pipeline.pipelines.screen.spark import pandas_to_spark, score_spark

    params = screen_params()
    tables, _ = window_tables(**screen_prm, params=params)
    options = {"top_k": params["top_k"], "top_n": params["top_n"], "batch_size": 64}
    expected = score_tables(screen_predictor, tables, progress=False, **options)
    frames = pandas_to_spark(spark, tables)
    result = score_spark(spark, screen_predictor, frames, partitions=3, **options)
    assert result.rdd.getNumPartitions() == 3
    got = result.toPandas().set_index("encounter_id").loc[expected["encounter_id"]].reset_index()
    assert len(got) == len(expected) == len(tables["encounters"])
    numeric = [c for c in expected.columns if expected[c].dtype.kind == "f"]
    text = [c for c in expected.columns if c not in numeric and c != "encounter_start"]
    assert np.allclose(got[numeric], expected[numeric], atol=1e-9, equal_nan=True)
    for column in text:
        left, right = got[column].astype(object), expected[column].astype(object)
        same = (left == right) | (left.isna() & right.isna())
        assert same.all(), column
    starts = pd.to_datetime(got["encounter_start"]).dt.tz_localize("UTC")
    assert (starts == expected["encounter_start"]).all()


def test_the_spark_engine_of_the_node_gives_the_pandas_rows(spark, screen_prm, screen_predictor):
    """``screen_engine.name: spark`` (conf/spark) in ``score_window`` gives the pandas
    engine's table, column types included."""
    from disease_pipeline.pipelines.screen.nodes import score_window

    params = screen_params()
    tables, window = window_tables(**screen_prm, params=params)
    common = {"predictor": screen_predictor, "tables": tables, "window": window}
    common |= {"model": "m1", "data": "d1", "params": params}
    engine = {"name": "spark", "spark": {"master": "local[2]", "partitions": 2}}
    on_spark = score_window(**common, engine=engine)
    in_process = score_window(**common, engine={"name": "pandas"})
    keep = [c for c in in_process.columns if c not in ("screen_run", "screened_at")]
    pd.testing.assert_frame_equal(on_spark[keep], in_process[keep], check_exact=False, atol=1e-9)
