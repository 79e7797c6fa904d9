"""The lake's copy of the raw tables (`engine: spark`, `warehouse.lake`) says what the
warehouse says.

`cip load` copies the small universe's raw tables to a lake outside the data folder, one
Parquet partition per loaded file, and Spark reads there exactly the warehouse's rows; a
re-load writes nothing; rows that reached the warehouse another way (the collector's) and
a copy that crashed half-way are put right by the next copy, without a duplicate; Spark
builds the linked sources from the lake as DuckDB does from the warehouse; a forgotten
person is in no Parquet file of the lake; a lake that cannot be written names the setting
before anything loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import raw_values

import resolution
import warehouse
from features import spark_snapshots
from features.snapshots import link_select
from pipelines import flows
from pipelines.config import Settings
from pipelines.flows import privacy
from pipelines.flows.privacy import Identifier
from warehouse import lake
from warehouse.engine import EngineError, SparkSettings
from warehouse.sources import SOURCES
from warehouse.spark import SparkEngine
from warehouse.tables import table_names

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

LOCAL = SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g")
TABLES = [s.table for s in SOURCES.values()]


def _with_lake(settings: Settings, root: Path, location: str) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": root,
            "engine": "spark",
            "spark": LOCAL.model_copy(update={"location": location}),
        }
    )


def _copy(settings: Settings, root: Path) -> Settings:
    """A private copy of a data folder and of its lake (kept beside it, as `root`'s)."""
    shutil.copytree(settings.data_dir, root / "data")
    shutil.copytree(settings.spark.location, root / "lake")
    return _with_lake(settings, root / "data", str(root / "lake"))


@pytest.fixture(scope="module")
def loaded(small_universe: Settings, tmp_path_factory: pytest.TempPathFactory):
    """READ-ONLY: the small universe's source files loaded by `cip load`'s flow with
    `engine: spark` into a fresh warehouse and a lake outside the data folder; the flow's
    outcome."""
    root = tmp_path_factory.mktemp("loaded")
    shutil.copytree(small_universe.paths.sources, root / "data" / "sources")
    settings = _with_lake(small_universe, root / "data", str(root / "lake"))
    return settings, flows.load.run(settings)


@pytest.fixture(scope="module")
def resolved(loaded, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """READ-ONLY: `loaded`, resolved (on DuckDB)."""
    settings = _copy(loaded[0], tmp_path_factory.mktemp("resolved"))
    with warehouse.connect(settings.paths.warehouse) as con:
        resolution.resolve(con, settings=settings.resolution, model_dir=settings.paths.resolution)
    return settings


@pytest.fixture(scope="module")
def spark_engine(loaded):
    """One local[2] Spark session for the module, on the lake of `loaded`."""
    engine = SparkEngine(LOCAL, location=loaded[0].spark.location)
    yield engine
    engine.stop()


def _keys(settings: Settings, source_name: str) -> tuple[list, list]:
    """The keys of a raw table in the warehouse and in the lake, sorted."""
    source = SOURCES[source_name]
    folder = lake.raw_folder(Path(settings.spark.location), source.table)
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        ours = con.execute(f"SELECT {source.key} FROM {source.table} ORDER BY 1").fetchall()
        files = [str(p) for p in folder.glob("load=*/*.parquet")]  # not the hidden ones
        read = f"SELECT {source.key} FROM read_parquet(?) ORDER BY 1"
        theirs = con.execute(read, [files]).fetchall() if files else []
        return [k for (k,) in ours], [k for (k,) in theirs]


def test_load_copies_the_raw_tables_and_spark_reads_the_same_rows(
    loaded, spark_engine: SparkEngine
) -> None:
    settings, outcome = loaded
    files = {warehouse.source_of(p) for p in settings.paths.sources.iterdir()}
    assert outcome.lake is not None
    assert {t: n for t, n in outcome.lake.written.items() if n} == {
        SOURCES[s].table: 1
        for s in files  # one partition per loaded file
    }
    assert outcome.figures["lake rows"] == outcome.totals["rows loaded"] > 20_000
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        for source in SOURCES.values():
            if source.name not in files:
                continue
            ours = con.execute(f"SELECT * FROM {source.table} ORDER BY {source.key}")
            columns = [d[0] for d in ours.description]
            ours = ours.fetchall()
            frame = spark_engine.read_raw(source.table)
            assert frame.columns == columns, source.table
            key = columns.index(source.key)
            theirs = sorted((tuple(row) for row in frame.collect()), key=lambda r: r[key])
            assert len(ours) > 100 and theirs == ours, source.table


def test_a_reload_writes_nothing_and_the_collectors_rows_arrive_after_a_crash(
    loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(loaded[0], tmp_path)
    parts = sorted(Path(settings.spark.location).rglob("*.parquet"))
    inodes = [p.stat().st_ino for p in parts]
    again = flows.load.run(settings)
    assert all(r.skipped for r in again.reports)
    assert sum(again.lake.written.values()) == 0 and sum(again.lake.deleted.values()) == 0
    assert [p.stat().st_ino for p in sorted(Path(settings.spark.location).rglob("*.parquet"))] == (
        inodes
    )

    def collect(first: int) -> None:  # a batch as the collector appends it
        batch = [
            {"message_id": f"late-{i}", "type": "track", "event": "Product Viewed",
             "anonymous_id": f"anon-{i}", "timestamp": "2026-11-30T10:00:00Z"}
            for i in range(first, first + 5)
        ]  # fmt: skip
        with warehouse.connect(settings.paths.warehouse) as con:
            report = warehouse.append_rows(con, source="events", rows=batch, origin="collector")
        assert report.rows_loaded == 5

    collect(0)
    flows.load.run(settings)  # the collector's day partition appears
    ours, theirs = _keys(settings, "events")
    assert theirs == ours and "late-4" in theirs

    # A copy that dies between moving the old partition away and moving the new one in ...
    collect(5)
    renames, rename = [], os.rename

    def dying_rename(source: object, target: object) -> None:
        renames.append(target)
        if len(renames) == 2:
            raise OSError("killed")
        rename(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(lake.os, "rename", dying_rename)
        with pytest.raises(OSError, match="killed"):
            flows.load.run(settings)
    ours, theirs = _keys(settings, "events")
    assert "late-0" not in theirs and len(theirs) == len(ours) - 10  # the partition is gone
    # ... is put right by the next copy: every row once, no leftovers.
    flows.load.run(settings)
    ours, theirs = _keys(settings, "events")
    assert theirs == ours and len(set(theirs)) == len(theirs)
    leftovers = [p for p in Path(settings.spark.location).rglob(".*") if p.name != ".lock"]
    assert leftovers == []


def test_linked_sources_on_spark_from_the_lake_equal_duckdbs(
    resolved: Settings, spark_engine: SparkEngine
) -> None:
    engine = SparkEngine(LOCAL, location=resolved.spark.location)  # the same session
    con = warehouse.connect(resolved.paths.warehouse)
    try:
        spark_snapshots.prepare(con, engine=engine, as_of=[datetime(2026, 1, 1)])
        tables = table_names(con)
        spark = spark_engine.session()
        for source in SOURCES.values():
            name = f"linked_{source.name}"
            ours = con.execute(f"{link_select(source, tables)} ORDER BY ALL").fetchall()
            theirs = [tuple(row) for row in spark.sql(f"SELECT * FROM {name}").collect()]
            if source.name != "consents":
                assert len(ours) > 100, name
            assert sorted(theirs, key=repr) == sorted(ours, key=repr), name
    finally:
        con.close()
        engine.cleanup()


def _needles(settings: Settings) -> tuple[str, set[str]]:
    """The customer with the most records: an e-mail of theirs, and the e-mails and phones
    as their raw records write them, and their record keys."""
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        ((customer, email),) = con.execute(
            "SELECT customer_id, min(id_value) FROM customer_identifiers "
            "WHERE id_type = 'email' AND customer_id = (SELECT customer_id FROM identity_map "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1) GROUP BY 1"
        ).fetchall()
    values = raw_values(
        settings,
        customer,
        lambda source: (
            [source.key] + [source.records[r] for r in ("email", "phone") if r in source.records]
        ),
    )
    return email, {v.lower() for v in values}


def _in_lake(root: Path, needles: set[str]) -> set[str]:
    """The needles some Parquet file under `root` holds as a value or a quoted JSON string."""
    found = set()
    for path in root.rglob("*.parquet"):
        for column in pq.read_table(path).columns:
            if str(column.type) in ("string", "large_string"):
                text = "\n" + "\n".join(v.strip().lower() for v in column.to_pylist() if v) + "\n"
                found |= {n for n in needles if f"\n{n}\n" in text or f'"{n}"' in text}
    return found


def test_a_forgotten_person_is_in_no_parquet_file_of_the_lake(
    resolved: Settings, tmp_path: Path
) -> None:
    settings = _copy(resolved, tmp_path)
    email, needles = _needles(settings)
    folder = Path(settings.spark.location)
    needles = _in_lake(folder, needles)  # those the lake holds now
    assert len(needles) > 10
    outcome = privacy.forget(settings, identifiers=[Identifier("email", email)])
    assert outcome.status == "done", outcome.error
    assert _in_lake(folder, needles) == set()
    for source in SOURCES.values():  # everyone else is still there
        ours, theirs = _keys(settings, source.name)
        assert theirs == ours, source.table


def test_a_lake_that_cannot_be_written_names_the_setting_before_anything_loads(
    small_universe: Settings, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    root = tmp_path / "data"
    shutil.copytree(small_universe.paths.sources, root / "sources")
    for location in (str(blocked / "lake"), "s3a://bucket/cip"):
        settings = _with_lake(small_universe, root, location)
        with pytest.raises(EngineError, match=r"spark\.location=.*CIP_SPARK__LOCATION"):
            flows.load.run(settings)
        assert not settings.paths.warehouse.exists()
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(root),
        "CIP_ENGINE": "spark",
        "CIP_SPARK__LOCATION": str(blocked / "lake"),
    }
    cip = str(Path(sys.executable).with_name("cip"))
    run = subprocess.run([cip, "load"], env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "spark.location=" in output and "not writable" in output
    assert "CIP_SPARK__LOCATION" in output and "Traceback" not in output
