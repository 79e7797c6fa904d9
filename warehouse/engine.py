"""Which engine runs the heavy work: DuckDB (the embedded default) or Spark (at scale).

The seam is small, as Splink's database APIs are. The definitions (blocking rules,
comparisons, feature SQL) are written once; what differs between the engines is here:

- `EngineName` and `SparkSettings`: the `engine` setting (`CIP_ENGINE`) and, for Spark,
  the master, the lake location (a local or shared folder, or an object store URI) and
  Spark configuration (`CIP_SPARK__MASTER`, ...);
- `splink_api(engine)`: Splink's database API on the engine (`DuckDBAPI`, `SparkAPI`),
  and `release(api)` when done with it;
- `DUCKDB`, the default engine; `warehouse.spark.SparkEngine` the other one (imported
  only when `engine: spark`, so the default path never loads pyspark).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pyarrow as pa
    from splink.internals.database_api import DatabaseAPI
    from splink.internals.splink_dataframe import SplinkDataFrame

__all__ = [
    "DUCKDB",
    "Engine",
    "EngineError",
    "EngineName",
    "SparkSettings",
    "release",
    "splink_api",
]

EngineName = Literal["duckdb", "spark"]


class EngineError(RuntimeError):
    """The engine cannot run: says what is wrong and which setting to change."""


class SparkSettings(BaseModel):
    """Where and how Spark runs when `engine: spark`."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    master: str = "local[*]"
    """Spark master URL: `local[*]` (every core of this machine), `local[2]`,
    `spark://host:7077` (a standalone cluster), `yarn`, `k8s://https://host:443`."""

    location: str | None = None
    """The lake: where Spark reads its inputs and writes its results, as Parquet. A local
    or shared folder, or an object store URI (`s3a://bucket/cip`, with the connector on
    Spark's class path). Default: `lake/` in the data folder."""

    driver_memory: str = "4g"
    """Memory of the driver JVM (`spark.driver.memory`); in local mode it runs every task."""

    shuffle_partitions: int = Field(8, ge=1)
    """`spark.sql.shuffle.partitions`: a few per core locally, hundreds on a cluster."""

    conf: dict[str, str] = Field(default_factory=dict)
    """Any other Spark configuration, e.g. `{"spark.executor.memory": "8g"}`."""

    app_name: str = "cip"
    """The application name shown by the cluster manager."""


class Engine(Protocol):
    """What a stage needs from an engine beyond the DuckDB warehouse."""

    name: EngineName

    def splink_api(self) -> DatabaseAPI:
        """A fresh Splink database API on this engine."""
        ...

    def register(self, api: DatabaseAPI, table: pa.Table) -> SplinkDataFrame:
        """`table` as an input of Splink on this engine."""
        ...

    def splink_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A trained model's settings (written for DuckDB) in this engine's SQL dialect."""
        ...

    def to_arrow(self, frame: SplinkDataFrame, *, columns: list[str]) -> pa.Table:
        """The `columns` of a Splink result, as Arrow in this process."""
        ...


class _DuckDBEngine:
    """The embedded default: each Splink model runs in its own in-memory DuckDB."""

    name: EngineName = "duckdb"

    def splink_api(self) -> DatabaseAPI:
        from splink import DuckDBAPI

        return DuckDBAPI()

    def register(self, api: DatabaseAPI, table: pa.Table) -> SplinkDataFrame:
        return api.register(table)

    def splink_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return settings

    def to_arrow(self, frame: SplinkDataFrame, *, columns: list[str]) -> pa.Table:
        return frame.as_pyarrow_table().select(columns)


DUCKDB: Engine = _DuckDBEngine()


def splink_api(engine: Engine | None = None) -> DatabaseAPI:
    """Splink's database API on `engine` (DuckDB by default)."""
    return (engine or DUCKDB).splink_api()


def release(api: DatabaseAPI) -> None:
    """Free what a Splink database API holds (its in-memory DuckDB; Spark's tables are
    temporary views of the session, dropped with it)."""
    con = getattr(api, "duckdb_con", None)
    if con is not None:
        con.close()
