"""The synthetic universe: file contracts, determinism, truth consistency, learnable behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from warehouse.settings import GenerateSettings
from warehouse.sources import SOURCES
from warehouse.synthetic import FORMATS, generate, source_file

SEGMENT_KEYS = {
    "type", "event", "name", "messageId", "anonymousId", "userId", "previousId",
    "timestamp", "sentAt", "properties", "traits", "context",
}  # fmt: skip


def _generate(root: Path, **options: object) -> tuple[Path, Path]:
    sources, truth = root / "sources", root / "truth"
    generate(settings=GenerateSettings(**options), sources_dir=sources, truth_dir=truth)
    return sources, truth


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def db(small_universe: Settings) -> duckdb.DuckDBPyConnection:
    """The small universe's source files and truth as DuckDB views (in memory)."""
    sources, truth = small_universe.paths.sources, small_universe.paths.truth
    con = duckdb.connect()
    for source in FORMATS:
        path = source_file(sources, source)
        reader = {"csv": "read_csv", "jsonl": "read_json", "parquet": "read_parquet"}[
            FORMATS[source]
        ]
        options = ", all_varchar = true" if reader == "read_csv" else ""
        con.execute(f"CREATE VIEW {source} AS SELECT * FROM {reader}('{path}'{options})")
    for name in ("record_truth", "people"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{truth / name}.parquet'")
    con.execute("CREATE VIEW owner AS SELECT source, record_key, person_id FROM record_truth")
    yield con
    con.close()


def test_one_file_per_source_with_the_declared_columns(small_universe: Settings) -> None:
    sources = small_universe.paths.sources
    assert set(FORMATS) <= set(SOURCES)  # the generator writes sources the loader declares
    assert sorted(p.name for p in sources.iterdir()) == sorted(
        source_file(sources, s).name for s in FORMATS
    )
    for source, fmt in FORMATS.items():
        path = source_file(sources, source)
        if fmt == "csv":
            header = path.read_text().splitlines()[0].split(",")
            assert header == SOURCES[source].column_names, source
        elif fmt == "parquet":
            assert pq.read_schema(path).names == SOURCES[source].column_names
    orders = pq.read_table(source_file(sources, "orders")).to_pylist()
    items = json.loads(orders[0]["items"])
    assert set(items[0]) == {"sku", "category", "quantity", "unit_price"}
    assert {o["channel"] for o in orders} == {"online", "store"}
    assert all((o["user_id"] is None) == (o["channel"] == "store") for o in orders)


def test_events_are_segment_messages(small_universe: Settings) -> None:
    lines = source_file(small_universe.paths.sources, "events").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    assert all(set(m) <= SEGMENT_KEYS for m in messages)
    kinds = {(m["type"], m["event"]) for m in messages}
    for wanted in [
        ("page", None), ("screen", None), ("identify", None), ("alias", None),
        ("track", "Product Viewed"), ("track", "Product Added"),
        ("track", "Checkout Started"), ("track", "Order Completed"),
    ]:  # fmt: skip
        assert wanted in kinds
    identify = next(m for m in messages if m["type"] == "identify")
    assert identify["userId"] and identify["anonymousId"] and "@" in identify["traits"]["email"]
    alias = next(m for m in messages if m["type"] == "alias")
    assert alias["previousId"] == alias["anonymousId"] and alias["userId"]
    assert {"ip", "userAgent", "library"} <= set(messages[0]["context"])
    assert messages[0]["timestamp"].endswith("Z")
    assert [m["timestamp"] for m in messages] == sorted(m["timestamp"] for m in messages)
    assert 20 < len(messages) / small_universe.generate.people < 120


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    _generate(tmp_path / "a", people=120, seed=3)
    _generate(tmp_path / "b", people=120, seed=3)
    _generate(tmp_path / "c", people=120, seed=4)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    differing = [name for name in a if a[name] != c[name]]
    assert len(differing) >= len(FORMATS)


def test_every_record_has_exactly_one_truth_row(db: duckdb.DuckDBPyConnection) -> None:
    keys = {"events": '"messageId"'} | {s: SOURCES[s].key for s in FORMATS if s != "events"}
    for source, key in keys.items():
        missing, extra, total = db.execute(
            f"""
            SELECT count(*) FILTER (WHERE t.record_key IS NULL),
                   (SELECT count(*) FROM owner WHERE source = '{source}') - count(*),
                   count(*)
            FROM {source} s LEFT JOIN owner t ON t.source = '{source}' AND t.record_key = s.{key}
            """
        ).fetchall()[0]
        assert total > 0 and missing == 0 and extra == 0, source
    duplicated = "SELECT source, record_key FROM owner GROUP BY ALL HAVING count(*) > 1"
    assert db.execute(duplicated).fetchall() == []
    orphans = "SELECT count(*) FROM owner WHERE person_id NOT IN (SELECT person_id FROM people)"
    assert db.execute(orphans).fetchall()[0][0] == 0


def test_user_ids_in_events_belong_to_the_right_person(db: duckdb.DuckDBPyConnection) -> None:
    """Identify (and every logged-in event) ties the cookie to the account holder."""
    wrong, identified = db.execute(
        """
        SELECT count(*) FILTER (WHERE ev.person_id <> acc.person_id),
               count(*) FILTER (WHERE e.type = 'identify')
        FROM events e
        JOIN owner ev ON ev.source = 'events' AND ev.record_key = e."messageId"::VARCHAR
        JOIN owner acc ON acc.source = 'accounts' AND acc.record_key = e."userId"
        """
    ).fetchall()[0]
    assert identified > 50 and wrong == 0


def test_orders_lie_inside_each_persons_active_life(db: duckdb.DuckDBPyConnection) -> None:
    early, after_lapse, total = db.execute(
        """
        SELECT count(*) FILTER (WHERE o.ordered_at::DATE < p.acquired_at::DATE),
               count(*) FILTER (WHERE o.ordered_at::DATE > p.lapse_at::DATE),
               count(*)
        FROM orders o
        JOIN owner t ON t.source = 'orders' AND t.record_key = o.order_id
        JOIN people p USING (person_id)
        """
    ).fetchall()[0]
    assert total > 500 and early == 0 and after_lapse == 0


def test_engagement_fades_before_a_fading_lapse(db: duckdb.DuckDBPyConnection) -> None:
    """Visits per person-day in the last 3 weeks before lapse vs. 3 to 6 months before."""
    late, early = db.execute(
        """
        WITH visits AS (
            SELECT p.person_id, date_diff('day', e.timestamp::TIMESTAMP, p.lapse_at) AS before
            FROM events e
            JOIN owner t ON t.source = 'events' AND t.record_key = e."messageId"::VARCHAR
            JOIN people p USING (person_id)
            WHERE p.lapse_type = 'fading' AND p.lapse_at > DATE '2025-03-01'
              AND p.acquired_at < p.lapse_at - INTERVAL 200 DAY
        )
        SELECT count(*) FILTER (WHERE before BETWEEN 0 AND 20) / 21,
               count(*) FILTER (WHERE before BETWEEN 90 AND 180) / 91
        FROM visits
        """
    ).fetchall()[0]
    assert late < 0.6 * early


def test_orders_peak_before_christmas(db: duckdb.DuckDBPyConnection) -> None:
    peak, rest = db.execute(
        """
        SELECT count(*) FILTER (WHERE ordered_at >= '2025-11-15') / 47,
               count(*) FILTER (WHERE ordered_at < '2025-11-15') / 75
        FROM orders WHERE ordered_at BETWEEN '2025-09-01' AND '2026-01-01'
        """
    ).fetchall()[0]
    assert peak > 1.2 * rest


def test_universe_copy_is_a_private_loaded_copy(
    small_universe: Settings, universe_copy: Settings
) -> None:
    assert universe_copy.data_dir != small_universe.data_dir
    con = duckdb.connect(str(universe_copy.paths.warehouse))
    loaded = con.execute("SELECT count(*) FROM raw_events").fetchall()[0][0]
    con.execute("DELETE FROM raw_events")
    con.close()
    original = duckdb.connect(str(small_universe.paths.warehouse), read_only=True)
    assert original.execute("SELECT count(*) FROM raw_events").fetchall()[0][0] == loaded > 0
    original.close()


def test_every_online_order_has_its_order_completed_event(db: duckdb.DuckDBPyConnection) -> None:
    online, matched = db.execute(
        """
        SELECT count(*), count(e."messageId")
        FROM orders o
        LEFT JOIN events e ON e.event = 'Order Completed'
            AND e.properties.order_id = o.order_id AND e."userId" = o.user_id
        WHERE o.channel = 'online'
        """
    ).fetchall()[0]
    completed = db.execute(
        "SELECT count(*) FROM events WHERE event = 'Order Completed'"
    ).fetchall()[0][0]
    assert online > 100 and matched == online == completed
