"""The Spark engine: a session from the settings, and the lake it shares with DuckDB.

`SparkEngine(settings, location=...)` starts nothing until asked: `session()` first
checks what can be checked from here (a Java runtime, a reachable master, a writable
lake) and says which setting to change, never with a JVM stack trace.

The DuckDB warehouse stays the catalog every later stage reads. Work handed to Spark
crosses through the lake as Parquet, never through the driver: `export` writes a DuckDB
query's rows to `<location>/<name>/`, `read` gives them to Spark, `write` stores a Spark
result there and `duckdb_source` names it for DuckDB's `read_parquet`. Scratch tables of
one run live under `<location>/_scratch/<run>/` and go with `cleanup`. The raw tables'
copy that `cip load` keeps (`warehouse.lake`, under `lake_folder()`) is `read_raw`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.class_sharing import driver_options
from warehouse.database import literal
from warehouse.dialect import splink_settings_to_spark
from warehouse.engine import EngineError, EngineName, SparkSettings
from warehouse.lake import raw_folder
from warehouse.spark_udf import jar, register

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from splink.internals.database_api import DatabaseAPI
    from splink.internals.splink_dataframe import SplinkDataFrame

__all__ = ["SparkEngine"]

_LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties").as_uri()
_LOCAL_MASTER = re.compile(r"^local(\[(\*|\d+)(,\s*\d+)?\])?$")
# The JIT compiles methods of any size: the whole-stage generated code of wide
# projections (Splink's comparisons, the features' aggregations) exceeds HotSpot's 8,000
# bytes and otherwise stays interpreted.
_JAVA_OPTIONS = "-XX:-DontCompileHugeMethods"
_SESSION_DEFAULTS = {
    "spark.executor.extraJavaOptions": _JAVA_OPTIONS,
    # Broadcast joins decided on the sizes met at run time (AQE), not on Parquet file sizes:
    # those undercount what a table takes in memory, so that the millions of blocked pairs
    # would be broadcast to join the few candidates.
    "spark.sql.sources.fileCompressionFactor": "8",
    "spark.sql.adaptive.autoBroadcastJoinThreshold": "64m",
    # A join whose shuffled partitions are all small hashes one side instead of sorting both.
    "spark.sql.adaptive.maxShuffledHashJoinLocalMapThreshold": "64m",
    # Round-robin repartitions (Splink's) without sorting every row first: their inputs
    # are written to Parquet, so a retried task has no lineage to recompute differently.
    "spark.sql.execution.sortBeforeRepartition": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
}


def _java() -> str | None:
    """The `java` Spark will run (JAVA_HOME's, else the PATH's) and its time; None if none."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").exists():
        java = Path(java_home, "bin", "java").resolve()
    elif found := shutil.which("java"):
        java = Path(found).resolve()
    else:
        return None
    return f"{java}@{java.stat().st_mtime_ns}"  # an upgraded JDK is another runtime


class SparkEngine:
    """Spark at `settings.master`, its lake at `location`; the session starts on first use."""

    name: EngineName = "spark"

    def __init__(self, settings: SparkSettings, *, location: str) -> None:
        self.settings = settings
        local = urlparse(location).scheme in ("", "file")
        self.location = str(self._local(location).resolve()) if local else location.rstrip("/")
        self.run = uuid.uuid4().hex[:8]
        self._session: SparkSession | None = None

    # -- the session ------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse, naming the setting, what would otherwise fail deep inside the JVM."""
        if _java() is None:
            raise EngineError(
                "engine: spark needs a Java runtime (17 or later) and none was found (no "
                "`java` on PATH, JAVA_HOME unset or wrong). Install one (Debian: apt-get "
                "install openjdk-17-jdk-headless: a JDK, whose javac builds one function) or "
                "set engine: duckdb (CIP_ENGINE)."
            )
        master = self.settings.master
        if master.startswith("spark://"):
            for host_port in master.removeprefix("spark://").split(","):
                host, _, port = host_port.partition(":")
                try:
                    socket.create_connection((host, int(port or 7077)), timeout=5).close()
                except (OSError, ValueError) as error:
                    raise EngineError(
                        f"spark.master={master}: cannot reach {host_port} ({error}). Start "
                        "the cluster, or set spark.master (CIP_SPARK__MASTER), e.g. local[*]."
                    ) from None
        elif not (_LOCAL_MASTER.match(master) or master == "yarn" or master.startswith("k8s://")):
            raise EngineError(
                f"spark.master={master!r} is not a Spark master URL: use local[*], local[N], "
                "spark://HOST:PORT, yarn or k8s://https://HOST:PORT (CIP_SPARK__MASTER)."
            )
        if self._is_local:
            self.lake_folder()

    def lake_folder(self) -> Path:
        """The lake as a folder of this machine (local or a shared file system), checked
        writable: where `cip load` copies the raw tables (`warehouse.lake`)."""
        if not self._is_local:
            raise EngineError(
                f"spark.location={self.location}: the DuckDB warehouse writes to the lake "
                "as a folder (a local or shared file system, e.g. NFS or EFS); an object "
                "store needs DuckDB's httpfs credentials. Point spark.location "
                "(CIP_SPARK__LOCATION) at a shared folder."
            )
        folder = self._local(self.location)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".cip-write-check-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise EngineError(
                f"spark.location={self.location}: the lake is not writable "
                f"({error.strerror or error}). Point spark.location (CIP_SPARK__LOCATION) "
                "at a folder this user can write."
            ) from None
        return folder

    def session(self) -> SparkSession:
        """The Spark session (started once; clear errors, see `check`)."""
        if self._session is not None:
            return self._session
        self.check()
        import pyspark
        from pyspark.sql import SparkSession
        from splink.backends.spark import similarity_jar_location

        s = self.settings
        jars = f"{similarity_jar_location()},{jar()}"  # Splink's, DuckDB's Jaro-Winkler
        classes = driver_options(f"{_java()}|{pyspark.__version__}|{jars}|{_JAVA_OPTIONS}")
        conf = {
            "spark.jars": jars,
            "spark.driver.memory": s.driver_memory,
            "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
            "spark.sql.warehouse.dir": self.path("_spark-warehouse"),
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_LOG_CONFIG} "
            f"{_JAVA_OPTIONS} {classes}",
            **_SESSION_DEFAULTS,
            **s.conf,
        }
        builder = SparkSession.builder.master(s.master).appName(s.app_name)
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as error:  # a JVM that would not start, a master that refused us
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise EngineError(
                f"Spark did not start with spark.master={s.master} ({first}). Check "
                "spark.master and spark.conf (CIP_SPARK__...), or set engine: duckdb."
            ) from None
        session.sparkContext.setLogLevel("ERROR")
        register(session)
        session.sparkContext.setCheckpointDir(self.path(f"_scratch/{self.run}/checkpoints"))
        self._session = session
        return session

    def stop(self) -> None:
        """Stop the session (tests and benchmarks; a CLI process simply exits)."""
        if self._session is not None:
            self._session.stop()
            self._session = None

    def splink_api(self) -> DatabaseAPI:
        from splink import SparkAPI

        return SparkAPI(spark_session=self.session(), break_lineage_method="parquet")

    def register(self, api: DatabaseAPI, table: pa.Table) -> SplinkDataFrame:
        """`table` written to the lake and read by Spark (not sent through the driver)."""
        name = self.scratch(f"splink-input-{uuid.uuid4().hex[:6]}")
        if not self._is_local:
            return api.register(table)
        folder = self._local(self.path(name))
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet", row_group_size=262_144)
        return api.register(self.read(name))

    def splink_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The settings with their SQL in Spark's dialect (`warehouse.dialect`)."""
        return splink_settings_to_spark(settings)

    def to_arrow(self, frame: SplinkDataFrame, *, columns: list[str]) -> pa.Table:
        """The result read from the Parquet files Splink wrote it to (`splink_api` breaks
        lineage with Parquet), not sent through the driver; collected when not local."""
        files = [urlparse(f) for f in frame.as_spark_dataframe().inputFiles()]
        if files and all(f.scheme in ("", "file") for f in files):
            return pq.read_table([unquote(f.path) for f in files], columns=columns)
        return frame.as_pyarrow_table().select(columns)

    # -- the lake -----------------------------------------------------------------------------

    @property
    def _is_local(self) -> bool:
        return urlparse(self.location).scheme in ("", "file")

    @staticmethod
    def _local(location: str) -> Path:
        return Path(urlparse(location).path if location.startswith("file:") else location)

    def path(self, name: str) -> str:
        """Where the lake keeps table `name` (a folder of Parquet files)."""
        return f"{self.location}/{name}"

    def scratch(self, name: str) -> str:
        """A table name in this run's scratch space."""
        return f"_scratch/{self.run}/{name}"

    def export(self, con: duckdb.DuckDBPyConnection, *, query: str, name: str) -> DataFrame:
        """Write the rows of the DuckDB `query` to the lake as `name`; Spark reads them."""
        if not self._is_local:
            raise EngineError(
                f"spark.location={self.location}: the DuckDB warehouse hands tables to Spark "
                "through a shared folder; an object store needs DuckDB's httpfs credentials"
            )
        folder = self._local(self.path(name))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        con.execute(
            f"COPY ({query}) TO {literal(str(folder / 'part-0.parquet'))} "
            "(FORMAT parquet, ROW_GROUP_SIZE 262144)"
        )
        return self.read(name)

    def read(self, name: str) -> DataFrame:
        """Table `name` of the lake as a Spark DataFrame."""
        return self.session().read.parquet(self.path(name))

    def read_raw(self, table: str) -> DataFrame:
        """The lake's copy of raw table `table` (`warehouse.lake`), its columns only."""
        folder = str(raw_folder(self._local(self.location), table))
        return self.session().read.option("recursiveFileLookup", "true").parquet(folder)

    def write(self, frame: DataFrame, name: str) -> DataFrame:
        """Store `frame` in the lake as `name` (replacing it); returns it read back, so that
        the plans built on it start from the files."""
        frame.write.mode("overwrite").parquet(self.path(name))
        return self.read(name)

    def duckdb_source(self, name: str) -> str:
        """`read_parquet(...)` of table `name` of the lake, for DuckDB SQL."""
        return f"read_parquet({literal(self.path(name) + '/*.parquet')})"

    def cleanup(self) -> None:
        """Remove this run's scratch tables."""
        if self._is_local:
            shutil.rmtree(self._local(self.path(f"_scratch/{self.run}")), ignore_errors=True)
