"""The workspace's in-memory copy of the warehouse: it never keeps the file open, and what a
stage writes shows on the next page, after a write, a compaction's rename or a writer that
held the file meanwhile (a real second process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

import warehouse as warehouse_db
from segments import EXAMPLES_DIR, load_definitions, refresh_segments
from serving.workspace.snapshot import Snapshot, _version

_WRITER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("UPDATE profiles SET first_name = 'Held' WHERE customer_id = 'c01'")
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def _refresh(path: Path, run_id: str) -> None:
    with duckdb.connect(str(path)) as con:
        refresh_segments(con, definitions=load_definitions(folders=[EXAMPLES_DIR]), run_id=run_id)


def test_pages_read_a_copy_and_leave_the_file_free_for_writers(segment_world: Path) -> None:
    _refresh(segment_world, "r1")
    snapshot = Snapshot(warehouse=segment_world)
    first = snapshot.segment("at_risk_valuable", shown=100)
    assert first.size > 0 and len(first.history) == 1
    assert snapshot.catalog().fields  # the evaluation copy too
    # Nothing stays attached: a writer opens the file at once (no waiting for a lock).
    with warehouse_db.connect(segment_world, wait_seconds=0) as con:
        con.execute("UPDATE profiles SET first_name = 'Renamed' WHERE customer_id = 'c01'")
    _refresh(segment_world, "r2")
    second = snapshot.segment("at_risk_valuable", shown=100)
    assert len(second.history) == 2
    assert "Renamed" in {p.name for p in snapshot.people(["c01"])}


def test_a_compaction_that_renames_a_new_file_in_is_seen(segment_world: Path) -> None:
    snapshot = Snapshot(warehouse=segment_world)
    assert snapshot.history().empty
    rewritten = segment_world.with_name("rewritten.duckdb")
    shutil.copy(segment_world, rewritten)
    _refresh(rewritten, "r1")
    stat = segment_world.stat()
    os.replace(rewritten, segment_world)
    os.utime(segment_world, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time, new inode
    assert list(snapshot.history()["run_id"].unique()) == ["r1"]


def test_while_a_writer_holds_the_file_the_last_copy_answers(segment_world: Path) -> None:
    _refresh(segment_world, "r1")
    snapshot = Snapshot(warehouse=segment_world)
    assert snapshot.people(["c01"])[0].name == "Namec01"
    before = _version(segment_world)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(segment_world)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        assert _version(segment_world) != before  # the write is in the file or its log
        started = time.perf_counter()
        assert snapshot.people(["c01"])[0].name == "Namec01"  # the copy from before
        assert snapshot.segment("at_risk_valuable", shown=10).size > 0
        assert time.perf_counter() - started < 2  # no waiting out the writer
    finally:
        writer.communicate("done\n", timeout=60)
    assert writer.returncode == 0
    assert snapshot.people(["c01"])[0].name == "Held"  # read once the writer let go
