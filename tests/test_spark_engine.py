"""The Spark engine (`engine: spark`) gives what the DuckDB default gives.

On a small generated universe, resolution with the identity graph's components and
Splink's scoring on Spark (`local[2]`) yields the same customers, record for record, as
DuckDB, and the feature snapshots built on Spark hold the same values; the connected
components agree with scipy's on a graph of long diameter; a second driver maps the
classes the first one archived; and a Spark that cannot run here says which setting to
change, without a JVM trace. One Spark session serves the
module (`spark_engine`); its tests share one xdist group (`--dist loadgroup`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import features
import resolution
import warehouse
from pipelines.config import Settings
from resolution.graph import components, label_records
from warehouse.class_sharing import driver_options
from warehouse.dialect import to_spark
from warehouse.engine import EngineError, SparkSettings
from warehouse.spark import SparkEngine
from warehouse.spark_udf import jar

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

LOCAL = SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g")


@pytest.fixture(scope="module")
def spark_engine(tmp_path_factory: pytest.TempPathFactory):
    """One local[2] Spark session for the module, its lake in a temporary folder."""
    engine = SparkEngine(LOCAL, location=str(tmp_path_factory.mktemp("lake")))
    yield engine
    engine.stop()


def _copy(settings: Settings, root: Path) -> Settings:
    shutil.copytree(settings.data_dir, root)
    return settings.model_copy(update={"data_dir": root})


@pytest.fixture(scope="module")
def resolved(small_universe: Settings, spark_engine: SparkEngine, tmp_path_factory):
    """The small universe resolved twice from the same raw tables: on DuckDB (training the
    model) and on Spark (the same model, loaded): the two data folders."""
    root = tmp_path_factory.mktemp("engines")
    model_dir = root / "model"
    out = {}
    for name, engine in (("duckdb", None), ("spark", spark_engine)):
        settings = _copy(small_universe, root / name)
        con = warehouse.connect(settings.paths.warehouse)
        try:
            resolution.resolve(
                con, settings=settings.resolution, model_dir=model_dir, engine=engine
            )
        finally:
            con.close()
        out[name] = settings
    spark_engine.cleanup()
    return out


def _rows(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_spark_resolution_gives_the_same_customers(resolved: dict[str, Settings]) -> None:
    identity = (
        "SELECT source, record_key, customer_id, link_type, link_detail FROM identity_map "
        "ORDER BY ALL"
    )
    duck, spark = (_rows(resolved[name], identity) for name in ("duckdb", "spark"))
    assert len(duck) > 20_000 and len({row[2] for row in duck}) > 500
    assert spark == duck  # the same clusters, the same ids, the same evidence
    identifiers = "SELECT id_type, id_value, customer_id FROM customer_identifiers ORDER BY ALL"
    assert _rows(resolved["spark"], identifiers) == _rows(resolved["duckdb"], identifiers)
    pairs = "SELECT unique_id_l, unique_id_r, match_probability FROM resolution_pairs ORDER BY 1, 2"
    duck_pairs, spark_pairs = (_rows(resolved[name], pairs) for name in ("duckdb", "spark"))
    assert [p[:2] for p in spark_pairs] == [p[:2] for p in duck_pairs]
    assert len(duck_pairs) > 1_000
    np.testing.assert_allclose(
        [p[2] for p in spark_pairs], [p[2] for p in duck_pairs], rtol=0, atol=1e-6
    )


@pytest.fixture(scope="module")
def snapshots(
    resolved: dict[str, Settings], spark_engine: SparkEngine
) -> dict[str, dict[str, pd.DataFrame]]:
    """Every group's snapshots at the last three as-of dates, built on each engine into its
    data folder (and its Feast files); the rows by engine and table."""
    frames = {}
    for name, engine in (("duckdb", None), ("spark", spark_engine)):
        settings = resolved[name]
        con = warehouse.connect(settings.paths.warehouse)
        try:
            dates = features.default_schedule(con, settings=settings.features)[-3:]
            report = features.build_snapshots(
                con,
                as_of=dates,
                feast_dir=settings.paths.feast,
                settings=settings.features,
                replace=True,
                engine=engine,
            )
            assert not report.groups_without_data
            frames[name] = {
                group.table: con.execute(
                    f"SELECT * FROM {group.table} ORDER BY customer_id, event_timestamp"
                ).df()
                for group in features.GROUPS.values()
            }
        finally:
            con.close()
    spark_engine.cleanup()
    return frames


def test_spark_features_equal_duckdb_features(
    snapshots: dict[str, dict[str, pd.DataFrame]],
) -> None:
    """Every feature of every group at three as-of dates, from the same definitions."""
    for table, duck in snapshots["duckdb"].items():
        spark = snapshots["spark"][table]
        assert len(duck) > 100, table
        assert list(spark.columns) == list(duck.columns), table
        assert spark.dtypes.tolist() == duck.dtypes.tolist(), table
        pd.testing.assert_frame_equal(spark, duck, check_exact=False, rtol=1e-9, atol=1e-9)


def test_training_sets_through_feasts_spark_offline_store_equal_duckdbs(
    resolved: dict[str, Settings],
    snapshots: dict[str, dict[str, pd.DataFrame]],
    spark_engine: SparkEngine,
    tmp_path: Path,
) -> None:
    """The same entity rows, point in time, through Feast's DuckDB and Spark offline stores
    over the same snapshot files: the same rows and values, nulls where nothing is known
    (before the first snapshot, past the TTL, unknown customers)."""
    settings = resolved["duckdb"]
    orders = snapshots["duckdb"]["customer_order_features"]
    dates = sorted(orders["event_timestamp"].unique())
    customers = sorted(orders["customer_id"].unique())[::3] + ["nobody"]
    ttl = pd.Timedelta(days=settings.features.ttl_days)
    moments = [
        *dates,
        dates[0] + pd.Timedelta(days=10, hours=5),
        dates[-1] + ttl,
        dates[-1] + ttl + pd.Timedelta(seconds=1),
        dates[0] - pd.Timedelta(days=1),
    ]
    entities = pd.DataFrame(
        [(c, m, n) for n, (c, m) in enumerate((c, m) for m in moments for c in customers)],
        columns=["customer_id", "event_timestamp", "label"],
    ).sample(frac=1, random_state=5)
    out = {}
    for name, engine in (("duckdb", None), ("spark", spark_engine)):
        feast_dir = tmp_path / name
        feast_dir.mkdir()
        for table in snapshots["duckdb"]:
            shutil.copy(settings.paths.feast / f"{table}.parquet", feast_dir)
        store = features.open_store(feast_dir=feast_dir, settings=settings.features, engine=engine)
        features.apply_repo(store, feast_dir=feast_dir, settings=settings.features)
        assert features.registered_offline(store) == store.config.offline_store.type == name
        out[name] = features.training_set(store, entity_df=entities, service="churn_v1")
    staged = Path(spark_engine.path(spark_engine.scratch("feast")))
    assert any(staged.iterdir())  # Spark wrote the result to the lake, not through the driver
    spark_engine.cleanup()
    duck, spark = out["duckdb"], out["spark"]
    assert len(duck) == len(entities) > 1_000
    assert list(duck.index) == list(spark.index) == list(entities.index)
    assert list(spark.columns) == list(duck.columns)
    pd.testing.assert_frame_equal(spark, duck, check_exact=False, rtol=1e-9, atol=1e-9)
    known = duck["orders_total"].notna()
    assert known.sum() > 200 and (~known).sum() > 200
    late = duck["event_timestamp"] > dates[-1] + ttl
    assert late.any() and duck.loc[late, "orders_total"].isna().all()  # the TTL, both stores
    assert duck.loc[duck["event_timestamp"] == dates[-1] + ttl, "orders_total"].notna().any()
    other = features.open_store(feast_dir=tmp_path / "spark", settings=settings.features)
    with pytest.raises(ValueError, match="applied with engine: spark.*CIP_ENGINE"):
        features.training_set(other, entity_df=entities, service="churn_v1")


def test_components_on_spark_match_scipy_on_a_deep_graph(spark_engine: SparkEngine) -> None:
    """A long shuffled path (many rounds), a star, pairs and lone records."""
    rng = np.random.default_rng(3)
    n_records = 600
    path = rng.permutation(300)  # a diameter of 299: min-label propagation would take 299 rounds
    edges = [(int(a), int(b)) for a, b in zip(path[:-1], path[1:], strict=True)]
    edges += [(300, int(leaf)) for leaf in range(301, 400)]  # a star
    edges += [(i, i + 1) for i in range(400, 500, 2)]  # pairs; 500.. stay alone
    edges += [(450, 650), (651, 20)]  # through nodes past the records
    con = duckdb.connect()
    con.execute("CREATE TABLE e (a BIGINT, b BIGINT)")
    con.executemany("INSERT INTO e VALUES (?, ?)", edges)
    found = label_records(
        con, edges="SELECT a, b FROM e", n_records=n_records, name="lab", engine=spark_engine
    )
    spark_labels = [
        label for (label,) in con.execute("SELECT label FROM lab ORDER BY node").fetchall()
    ]
    left, right = (np.array(side) for side in zip(*edges, strict=True))
    expected = components(652, left, right)[:n_records]
    assert spark_labels == expected.tolist()
    assert found == len(set(expected)) == 1 + 1 + 50 + 100  # path, star, pairs, alone


def _name_pairs(n: int, seed: int = 16) -> list[tuple[int, str | None, str | None]]:
    """Pairs of names as records hold them: typos, transpositions, other names, unicode
    (accents, combining marks, characters beyond 16 bits), long, short, empty and NULL."""
    rng = np.random.default_rng(seed)
    names = [
        "riley", "reilly", "baker", "parker", "martha", "marhta", "dixon", "dicksonx",
        "jonathan", "johnathan", "catherine", "kathryn", "o'neill", "oneil", "smith-jones",
        "josé", "jose", "zoë", "müller", "mueller", "søren", "łukasz", "françois", "nguyễn",
        "straße", "strasse", "李小龍", "李小龙", "cafe\u0301", "café", "😀ann", "ann😀",
        "a", "b", "ab", "ba", "abc", "",
        "42 high street, flat 3, little snoring, norfolk nr21 0ab, united kingdom",
        "42 high st, flat 3, little snoring, norfolk nr21 0ab, united kingdom of gb",
    ]  # fmt: skip
    alphabet = list("abcdeilmnorsty é😀")

    def typo(word: str) -> str:
        chars = list(word)
        kind = rng.integers(5)
        at = int(rng.integers(len(chars))) if chars else 0
        if kind == 0 and len(chars) > 1:  # transpose neighbours
            at = min(at, len(chars) - 2)
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
        elif kind == 1 and chars:
            del chars[at]
        elif kind == 2:
            chars.insert(at, str(rng.choice(alphabet)))
        elif kind == 3 and chars:
            chars[at] = str(rng.choice(alphabet))
        else:  # a far move: a letter shifted by a few places
            if chars:
                chars.insert(min(len(chars), at + 3), chars.pop(at))
        return "".join(chars)

    pairs = []
    for i in range(n):
        a = str(rng.choice(names))
        b = str(rng.choice(names)) if rng.random() < 0.3 else a
        for _ in range(int(rng.integers(3))):
            b = typo(b)
        if rng.random() < 0.5:
            a, b = b, a
        pairs.append((i, a if rng.random() > 0.02 else None, b if rng.random() > 0.02 else None))
    return pairs


def test_spark_jaro_winkler_is_duckdbs(spark_engine: SparkEngine) -> None:
    """The Spark SQL the dialect writes for `jaro_winkler_similarity` gives DuckDB's values,
    to the last bit (a pair at a level's threshold stays on its side), on pairs where
    Splink's Spark `jaro_winkler` does not."""
    pairs = _name_pairs(4000)
    con = duckdb.connect()
    con.execute("CREATE TABLE pairs (id INTEGER, a VARCHAR, b VARCHAR)")
    con.executemany("INSERT INTO pairs VALUES (?, ?, ?)", pairs)
    query = "SELECT jaro_winkler_similarity(a, b) FROM pairs ORDER BY id"
    duck = [v for (v,) in con.execute(query).fetchall()]
    spark_engine.splink_api()  # registers Splink's functions, for the comparison below
    frame = spark_engine.session().createDataFrame(pairs, "id INT, a STRING, b STRING")
    rows = frame.selectExpr(
        "id", f"{to_spark('jaro_winkler_similarity(a, b)')} AS ours", "jaro_winkler(a, b) AS splink"
    ).collect()
    rows.sort(key=lambda row: row.id)
    ours = [row.ours for row in rows]
    assert sum(v is None for v in duck) > 50
    wrong = [
        (pair, mine, theirs)
        for pair, mine, theirs in zip(pairs, ours, duck, strict=True)
        if mine != theirs
    ]
    assert not wrong, wrong[:5]
    splink_differs = sum(
        abs(row.splink - value) > 1e-9
        for row, value in zip(rows, duck, strict=True)
        if value is not None
    )
    assert splink_differs > 100  # the pairs tell the two counts of transpositions apart


_START_AND_SAY_IF_MAPPED = """
import sys
from pyspark import SparkContext
from warehouse.engine import SparkSettings
from warehouse.spark import SparkEngine
engine = SparkEngine(SparkSettings(master="local[1]", driver_memory="512m"), location=sys.argv[1])
assert engine.session().range(10).count() == 10
maps = open(f"/proc/{SparkContext._gateway.proc.pid}/maps").read()
print("mapped" if "spark-classes-" in maps else "not mapped")
"""


def test_a_second_spark_start_maps_the_classes_the_first_archived(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cache = tmp_path / "cache" / "cip"
    said = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-c", _START_AND_SAY_IF_MAPPED, str(tmp_path / "lake")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        assert "cds" not in run.stderr.lower() and "Traceback" not in run.stderr, run.stderr
        said.append(run.stdout.strip())
        assert [p.suffix for p in cache.glob("spark-classes-*")] == [".jsa"]  # no partial
    assert said == ["not mapped", "mapped"]


def test_a_start_keeps_the_archive_a_killed_run_left_whole_and_deletes_the_rest(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    written = Path(driver_options("a key").split()[0].split("=", 1)[1])  # ArchiveClassesAtExit
    archive = written.with_name(written.name.removesuffix(f".{os.getpid()}.partial"))
    finished = [subprocess.Popen(["true"]) for _ in range(2)]
    for process in finished:
        process.wait()
    whole, half, running = (
        written.with_name(written.name.replace(f".{os.getpid()}.", f".{pid}."))
        for pid in (finished[0].pid, finished[1].pid, os.getppid())
    )
    whole.write_bytes((0xF00BABA8).to_bytes(4, "little") + b" the JVM's header, last")
    half.write_bytes(bytes(64))  # its header never written: killed while writing
    os.utime(half, (0, 0))
    running.write_bytes(bytes(64))  # a live process's JVM, still writing
    assert driver_options("a key").startswith(f"-XX:SharedArchiveFile={archive} ")
    assert archive.read_bytes().endswith(b"last")
    assert (whole.exists(), half.exists(), running.exists()) == (False, False, True)


def test_spark_without_javac_says_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing built yet
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match=r"no `javac`.*JDK 17"):
        jar()


def test_spark_that_cannot_run_names_the_setting(tmp_path: Path, monkeypatch) -> None:
    unreachable = SparkEngine(
        SparkSettings(master="spark://127.0.0.1:9"), location=str(tmp_path / "lake")
    )
    with pytest.raises(EngineError, match=r"spark\.master=spark://127\.0\.0\.1:9.*CIP_SPARK"):
        unreachable.check()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = SparkEngine(LOCAL, location=str(blocked / "lake"))
    with pytest.raises(EngineError, match=r"spark\.location=.*not writable"):
        unwritable.check()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match="needs a Java runtime"):
        SparkEngine(LOCAL, location=str(tmp_path / "lake")).check()


def test_cli_with_an_unreachable_master_says_so_without_a_trace(
    universe_copy: Settings,
) -> None:
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(universe_copy.data_dir),
        "CIP_ENGINE": "spark",
        "CIP_SPARK__MASTER": "spark://127.0.0.1:9",
    }
    cip = str(Path(sys.executable).with_name("cip"))
    run = subprocess.run([cip, "resolve"], env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "spark.master=spark://127.0.0.1:9" in output and "CIP_SPARK__MASTER" in output
    assert "Traceback" not in output and "java." not in output
