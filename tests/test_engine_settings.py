"""Engine settings without starting an engine (the engines themselves: test_engines*.py, marker
``engines``)."""

from __future__ import annotations

import pytest

from analysis.data.config import parse_config
from analysis.data.engines import check_engine, spark_memory
from analysis.errors import ConfigError


def test_engine_names_are_checked_with_the_fix_in_the_message():
    assert check_engine(None) is None
    assert check_engine(" Spark ") == "spark" and check_engine("duckdb") == "duckdb"
    with pytest.raises(ConfigError, match=r"unknown engine; use one of duckdb, spark"):
        check_engine("sparkk")
    with pytest.raises(ConfigError, match=r"computes in PostgreSQL; give its URL as the data"):
        check_engine("postgresql")


def test_config_engine_keys():
    cfg = parse_config({"engine": "spark", "spark_master": "spark://host:7077"})
    assert cfg.engine == "spark" and cfg.spark_master == "spark://host:7077" and cfg.spark_remote is None
    assert parse_config({}).engine == "duckdb"
    with pytest.raises(ConfigError, match="engine"):
        parse_config({"engine": "postgres"})


@pytest.mark.parametrize("limit, spark", [("1GB", "1024m"), ("512MiB", "512m"), ("1.5GB", "1536m"),
                                          ("2TB", "2097152m"), ("100KB", "256m")])
def test_memory_limit_becomes_the_spark_driver_memory(limit, spark):
    assert spark_memory(limit) == spark


def test_cli_refuses_an_unknown_engine_in_one_line(capsys):
    from analysis.__main__ import main

    from analysis.paths import SAMPLE_DATA

    code = main(["metrics", str(SAMPLE_DATA), "--metrics", "revenue", "--period", "2026-Q3", "--engine", "oracle"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown engine; use one of duckdb, spark" in err[0]


def test_load_db_refuses_a_url_that_is_not_postgresql(capsys):
    from analysis.__main__ import main

    from analysis.paths import SAMPLE_DATA

    code = main(["load-db", str(SAMPLE_DATA), "duckdb:///tmp/x.db"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "is not a PostgreSQL URL" in err[0]
