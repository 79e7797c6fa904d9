"""Shared test fixtures: real stores in temporary folders."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Rich wraps at 80 columns without a terminal; CLI tests read whole lines.
os.environ.setdefault("COLUMNS", "200")

from pipelines.config import Settings  # noqa: E402

if TYPE_CHECKING:
    from warehouse.schemas import Source


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder is a fresh temporary directory."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def segment_world(settings: Settings) -> Path:
    """A small warehouse with a known answer for each example segment (see tests/test_segments.py).

    Customers c01..c12 are hand-made cases; s1..s8 are top-LTV seeds, l1..l5 behave like
    them, p01..p33 do not. The data's clock (newest event) is 2026-06-30 12:00.
    """
    from datetime import datetime, timedelta

    import duckdb
    import pandas as pd

    now = datetime(2026, 6, 30, 12)
    hand = [f"c{i:02d}" for i in range(1, 13)]
    seeds, looks, plain = (
        [f"s{i}" for i in range(1, 9)],
        [f"l{i}" for i in range(1, 6)],
        [f"p{i:02d}" for i in range(1, 34)],
    )
    ids = hand + seeds + looks + plain
    no_email, no_ads = {"c02"}, {"c03"}
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": [f"Name{c}" for c in ids],
            "email": [f"{c}@example.com" for c in ids],
            "phone": [f"+4420794600{n:02d}" for n in range(len(ids))],
            "consent_email": [c not in no_email for c in ids],
            "consent_sms": [True] * len(ids),
            "consent_ads": [c not in no_ads for c in ids],
            "consent_profiling": [True] * len(ids),
            "consent_push": [True] * len(ids),
            "is_known": [True] * len(ids),
        }
    )
    scored = {  # customer: (churn probability, churn decile, predicted ltv, ltv decile)
        "c01": (0.95, 9, 900, 9), "c02": (0.93, 9, 800, 9), "c03": (0.92, 8, 100, 5),
        "c04": (0.30, 5, 700, 9), "c10": (0.10, 1, 600, 8), "c11": (0.20, 3, 300, 6),
        "c12": (0.91, 7, 400, 7),
        **{s: (0.10, 2, 5000, 10) for s in seeds}, **{c: (0.2, 3, 1000, 9) for c in looks},
    }  # fmt: skip
    current = [("now", c, *v, now.date()) for c, v in scored.items()]
    # An older scoring whose 90-day outcome is known: c01, c02 and c05 bought nothing after it.
    old = [("old", c, 0.95 - 0.1 * i, 10 - i, 100.0, 5, datetime(2026, 1, 1).date())
           for i, c in enumerate(hand[:10])]  # fmt: skip
    scores = pd.DataFrame(
        old + current,
        columns=["scoring_id", "customer_id", "churn_probability", "churn_decile",
                 "predicted_ltv", "ltv_decile", "as_of"],
    )  # fmt: skip
    scores["scored_at"] = pd.to_datetime(scores["as_of"]) + pd.Timedelta(hours=1)
    features = [(c, now.replace(hour=0), 2, 60.0, 3, 180.0) for c in hand[:9]]
    features += [
        ("c10", now.replace(hour=0), 5, 120.0, 6, 720.0),
        ("c11", now.replace(hour=0), 5, 50.0, 5, 250.0),
        ("c11", datetime(2026, 5, 31), 6, 100.0, 6, 600.0),  # older snapshot: not used
        ("c12", now.replace(hour=0), 2, 200.0, 2, 400.0),
        ("c12", datetime(2026, 7, 31), 9, 200.0, 9, 1800.0),  # after the clock: not used
    ]
    features += [
        (s, now.replace(hour=0), 3, 250.0 + i, 20 + i, 5000.0 + 50 * i) for i, s in enumerate(seeds)
    ]
    features += [
        (c, now.replace(hour=0), 3, 245.0 + i, 19 + i, 4800.0 + 40 * i) for i, c in enumerate(looks)
    ]
    features += [
        (c, now.replace(hour=0), 1, 30.0 + i % 5, 1 + i % 2, 30.0 + i % 5)
        for i, c in enumerate(plain)
    ]
    order_features = pd.DataFrame(
        features,
        columns=["customer_id", "event_timestamp", "orders_365d", "avg_order_value",
                 "orders_total", "spend_total"],
    )  # fmt: skip
    order_features["spend_365d"] = order_features["orders_365d"] * order_features["avg_order_value"]
    # Web behaviour: the seeds and l1..l5 browse a lot, everyone else little.
    busy = {c: (20 + i, 100 + 10 * i) for i, c in enumerate(seeds + looks)}
    web_features = pd.DataFrame(
        [(c, now.replace(hour=0), *busy.get(c, (1 + i % 3, 3 + i % 5))) for i, c in enumerate(ids)],
        columns=["customer_id", "event_timestamp", "sessions_30d", "page_views_30d"],
    )
    day = timedelta(days=1)
    events = [  # (customer, type, event, time, order id)
        ("c05", "track", "Product Added", now - day, None),
        ("c06", "track", "Product Added", now - 2 * day, None),
        ("c07", "track", "Product Added", now - 5 * day, None),
        ("c08", "track", "Product Added", now - day, None),
        ("c09", "track", "Product Added", now - day, None),
        ("c09", "track", "Order Completed", now - day / 2, "web-9"),
        ("c03", "page", None, now - 3 * day, None), ("c04", "page", None, now - 40 * day, None),
        ("c10", "page", None, now - 3 * day, None), ("c11", "page", None, now - 3 * day, None),
        ("c12", "page", None, now - 3 * day, None),
        ("p01", "track", "Product Viewed", now, None),
    ]  # fmt: skip
    raw_events = pd.DataFrame(
        [(f"e{i}", t, e, ts, f'{{"order_id": "{o}"}}' if o else "{}")
         for i, (_, t, e, ts, o) in enumerate(events)],
        columns=["message_id", "type", "event", "timestamp", "properties"],
    )  # fmt: skip
    orders = [("c06", now - day), ("c08", now - 2 * day), ("c12", now - 10 * day)]
    orders += [(c, datetime(2026, 2, 1)) for c in ("c03", "c04", "c06", "c07", "c08", "c09", "c10")]
    raw_orders = pd.DataFrame(
        [(f"o{i}", "online", ts, 50.0) for i, (_, ts) in enumerate(orders)],
        columns=["order_id", "channel", "ordered_at", "amount"],
    )
    identity_map = pd.DataFrame(
        [("events", f"e{i}", c) for i, (c, *_) in enumerate(events)]
        + [("orders", f"o{i}", c) for i, (c, _) in enumerate(orders)],
        columns=["source", "record_key", "customer_id"],
    )
    path = settings.paths.warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        for name, frame in [
            ("profiles", profiles), ("scores", scores), ("customer_order_features", order_features),
            ("customer_web_features", web_features),
            ("raw_events", raw_events), ("raw_orders", raw_orders), ("identity_map", identity_map),
        ]:  # fmt: skip
            con.register("_frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
            con.unregister("_frame")
        con.execute("ALTER TABLE raw_events ALTER properties TYPE JSON")
        con.execute("ALTER TABLE profiles ADD COLUMN emails VARCHAR[]")
        con.execute("ALTER TABLE profiles ADD COLUMN phones VARCHAR[]")
        con.execute("UPDATE profiles SET emails = [email], phones = [phone]")
        con.execute(
            "CREATE VIEW current_scores AS SELECT * FROM scores WHERE scoring_id = "
            "(SELECT scoring_id FROM scores ORDER BY scored_at DESC LIMIT 1)"
        )
    return path


def raw_values(
    settings: Settings, customer_id: str, columns: Callable[[Source], list[str]]
) -> set[str]:
    """The values (stripped, as text) that the SQL `columns(source)` give on every raw
    record the identity map gives `customer_id`: what an erasure must leave nowhere."""
    import duckdb

    from warehouse.sources import SOURCES

    found: set[str] = set()
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        for source in SOURCES.values():
            selects = columns(source)
            if not selects:
                continue
            rows = con.execute(
                f"SELECT {', '.join(f'CAST(({s}) AS VARCHAR)' for s in selects)} "
                f"FROM {source.table} WHERE CAST({source.key} AS VARCHAR) IN (SELECT record_key "
                "FROM identity_map WHERE customer_id = ? AND source = ?)",
                [customer_id, source.name],
            ).fetchall()
            found |= {v.strip() for row in rows for v in row if v and v.strip()}
    return found


def write_orders_history(settings: Settings) -> Path:
    """An orders-only warehouse (raw_orders, identity_map and customer_identifiers: each
    customer known by a user id, nothing else) with a churn signal.

    400 customers join over two years (2024-2025); each buys at their own rate until an
    unseen dropout date, at their own typical order value. Returns the warehouse path.
    """
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd

    import warehouse

    rng = np.random.default_rng(11)
    start, days, rows = datetime(2024, 1, 1), 730, []
    for c in range(400):
        rate, value = rng.gamma(1.0, 1 / 20), rng.lognormal(3.5, 0.6)
        t = rng.uniform(0, days - 60)
        end = min(days, t + rng.exponential(300))
        while t < end:
            rows.append((f"c{c:03d}", start + timedelta(days=t), value * rng.lognormal(0, 0.3)))
            t += rng.exponential(1 / rate) + 1
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])
    orders["order_id"] = [f"o{i}" for i in range(len(orders))]
    con = warehouse.connect(settings.paths.warehouse)
    con.register("_orders", orders)
    now = datetime.now(UTC).replace(tzinfo=None)  # as the loader and resolution stamp rows
    con.execute(
        "INSERT INTO raw_orders (order_id, channel, user_id, ordered_at, amount, _source, _file,"
        " _row_number, _loaded_at) SELECT order_id, 'online', customer_id, ordered_at, amount,"
        " 'orders', 'test', row_number() OVER (), ?::TIMESTAMP FROM _orders",
        [now],
    )
    con.execute(
        "CREATE TABLE identity_map AS SELECT 'orders' AS source, order_id AS record_key,"
        " customer_id, 'deterministic' AS link_type, 'user_id' AS link_detail,"
        " ?::TIMESTAMP AS resolved_at FROM _orders",
        [now],
    )
    con.execute(
        "CREATE TABLE customer_identifiers AS SELECT DISTINCT 'user_id' AS id_type,"
        " customer_id AS id_value, customer_id FROM _orders"
    )
    con.close()
    return settings.paths.warehouse


@pytest.fixture
def orders_history(settings: Settings) -> Path:
    """`write_orders_history` in the test's own data folder."""
    return write_orders_history(settings)


@pytest.fixture(scope="module")
def orders_features(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """READ-ONLY within a module: `write_orders_history` with its features built (Feast)."""
    from pipelines import flows

    settings = Settings(data_dir=tmp_path_factory.mktemp("orders") / "data")
    write_orders_history(settings)
    flows.features.run(settings)
    return settings


SMALL_UNIVERSE = {"people": 400, "seed": 7}


@pytest.fixture(scope="session")
def small_universe(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """READ-ONLY: a generated universe of 400 people (seed 7, locale en) loaded into a warehouse.

    Its data folder holds sources/, truth/ and warehouse.duckdb (raw tables filled by
    `warehouse.load_directory`). Shared by the whole session: never write to it; use
    `universe_copy` for a test that writes.
    """
    import warehouse
    from warehouse.synthetic import generate

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("small_universe") / "data", generate=SMALL_UNIVERSE
    )
    paths = settings.paths
    generate(settings=settings.generate, sources_dir=paths.sources, truth_dir=paths.truth)
    con = warehouse.connect(paths.warehouse)
    try:
        warehouse.load_directory(con, directory=paths.sources)
    finally:
        con.close()
    return settings


@pytest.fixture
def universe_copy(small_universe: Settings, tmp_path: Path) -> Settings:
    """A private, writable copy of `small_universe`'s data folder."""
    root = tmp_path / "data"
    shutil.copytree(small_universe.data_dir, root)
    return small_universe.model_copy(update={"data_dir": root})


# The scoring service's data: the small universe through the real `cip run`, once per test
# run (every xdist worker waits for the one that builds it), then copied for each worker.

FAST_MODELS = {"CIP_MODELS__SEARCH__TRIALS": "1", "CIP_MODELS__TRAIN_CUTOFFS": "3"}


@dataclass(frozen=True)
class Built:
    """The small universe after `cip run --from resolve --until score`, and what it printed."""

    data_dir: Path
    console: str


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this test run sees (without xdist: the run's own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (one process at a time, across workers)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def built(small_universe: Settings, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """READ-ONLY, shared by every worker: the small universe resolved, featurized, trained
    (champions registered) and scored by the `cip` command a user runs, in a subprocess;
    its console output is kept (`tests/test_quiet_console.py` reads it). Tests use a
    worker's copy, `served`."""
    shared = _shared_dir(tmp_path_factory) / "built"
    shared.mkdir(exist_ok=True)
    console, failed = shared / "console.txt", shared / "failed.txt"
    with _exclusive(shared / ".lock"):
        if failed.exists():
            pytest.fail(f"the build failed in another worker:\n{failed.read_text()[-5000:]}")
        if not console.exists():
            data = shared / "data"
            shutil.copytree(small_universe.data_dir, data)
            env = {**os.environ, "CIP_DATA_DIR": str(data), "COLUMNS": "120", **FAST_MODELS}
            env.pop("MLFLOW_CONFIGURE_LOGGING", None)  # as a user's shell has it
            cip = str(Path(sys.executable).with_name("cip"))
            run = subprocess.run(
                [cip, "run", "--from", "resolve", "--until", "score"],
                env=env, capture_output=True, text=True, timeout=1500,
            )  # fmt: skip
            output = run.stdout + run.stderr
            if run.returncode != 0:
                failed.write_text(output)
                pytest.fail(f"cip run failed:\n{output[-5000:]}")
            console.write_text(output)  # written last: the build is complete
    return Built(shared / "data", console.read_text())


@pytest.fixture(scope="session")
def served(
    built: Built, small_universe: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """READ-ONLY within a worker's tests that share it: this worker's copy of `built`,
    re-pointed as any copied data folder is (`pipelines.relocate`), with the settings it
    was built with (tests/test_serving*.py serve it)."""
    from pipelines.relocate import relocate

    root = tmp_path_factory.mktemp("served") / "data"
    shutil.copytree(built.data_dir, root)
    settings = small_universe.model_copy(
        update={
            "data_dir": root,
            "models": small_universe.models.model_copy(
                update={
                    "search": small_universe.models.search.model_copy(update={"trials": 1}),
                    "train_cutoffs": 3,
                }
            ),
        }
    )
    relocate(settings)
    return settings


@pytest.fixture(scope="session")
def facts(served: Settings) -> dict[str, list[tuple]]:
    """What `cip score` and resolution wrote, read before the service (and the collector's
    loader inside it, which opens the warehouse for writing) starts."""
    import duckdb

    queries = {
        "scores": "SELECT customer_id, churn_probability, churn_decile, predicted_ltv,"
        " ltv_decile, churn_reasons, ltv_reasons, churn_model_version, ltv_model_version,"
        " feature_service, expected_orders, orders_model_version FROM current_scores"
        " ORDER BY churn_reasons IS NULL, customer_id",
        "email_and_cookie": "SELECT e.customer_id, e.id_value, a.id_value"
        " FROM customer_identifiers e JOIN customer_identifiers a USING (customer_id)"
        " JOIN current_scores USING (customer_id)"
        " WHERE e.id_type = 'email' AND a.id_type = 'anonymous_id' ORDER BY 1",
        "customers": "SELECT count(*) FROM profiles",
    }
    con = duckdb.connect(str(served.paths.warehouse), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        con.close()
