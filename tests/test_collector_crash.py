"""kill -9 of a real uvicorn collector under load: every acknowledged event lands exactly once.

The scenario is the benchmark's `crash` mode (benchmarks/bench_collector.py): concurrent
clients post analytics-python batches, the collector process gets SIGKILL partway, restarts on
the same log and warehouse, and the clients resend what failed. This test then checks the
warehouse itself against the acknowledged messageIds the scenario wrote down.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_collector.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_collector", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_kill_9_under_load_loses_nothing_acknowledged_and_duplicates_nothing(tmp_path):
    args = argparse.Namespace(seconds=2.0, clients=8, batch=100, loader=True)

    result = _bench().crash(args, tmp_path)

    acked = (tmp_path / "acked.txt").read_text().split()
    assert result["requests_acked"] > 0 and len(acked) == result["acked_unique_ids"]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        con.register("acked", pa.table({"message_id": pa.array(acked, pa.string())}))
        counts = con.execute(
            "SELECT count(*) FILTER (WHERE n IS NULL), count(*) FILTER (WHERE n > 1) "
            "FROM acked LEFT JOIN (SELECT message_id, count(*) AS n FROM raw_events GROUP BY 1) "
            "USING (message_id)"
        ).fetchall()
        [(rows, distinct)] = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM raw_events"
        ).fetchall()
    finally:
        con.close()
    assert counts == [(0, 0)]  # none missing, none twice
    assert rows == distinct >= len(acked)
    assert list((tmp_path / "collector").glob("*.log")) == []  # every segment finished
