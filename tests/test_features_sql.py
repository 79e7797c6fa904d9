"""Feature SQL on tiny hand-made warehouses where every answer is worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

import warehouse
from features import (
    FeatureInputError,
    FeatureSettings,
    build_snapshots,
    default_schedule,
    feature_names,
    fresh_dates,
    snapshot_dates,
)
from warehouse.sources import SOURCES

AS_OF = datetime(2025, 7, 1)
LATER = datetime(2025, 8, 1)


def insert(con: duckdb.DuckDBPyConnection, source: str, rows: list[dict]) -> None:
    """Insert raw rows with lineage and their identity_map entries (key -> customer)."""
    schema = SOURCES[source]
    for i, row in enumerate(rows, 1):
        customer = row.pop("customer")
        values = {**row, "_source": source, "_file": "test", "_row_number": i}
        names = ", ".join(f'"{k}"' for k in values)
        marks = ", ".join("?" for _ in values)
        con.execute(
            f"INSERT INTO {schema.table} ({names}, _loaded_at) VALUES ({marks}, ?)",
            [*values.values(), utc_now()],
        )
        con.execute(
            "INSERT INTO identity_map (source, record_key, customer_id, resolved_at) "
            "VALUES (?, ?, ?, ?)",
            [source, row[schema.key], customer, utc_now()],
        )


def utc_now() -> datetime:
    """Naive UTC, as the loader and resolution stamp `_loaded_at` and `resolved_at`."""
    return datetime.now(UTC).replace(tzinfo=None)


def items(*categories: str) -> str:
    return json.dumps(
        [{"sku": c, "category": c, "quantity": 1, "unit_price": 1} for c in categories]
    )


def resolution_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE identity_map (source VARCHAR, record_key VARCHAR, customer_id VARCHAR, "
        "resolved_at TIMESTAMP)"
    )
    con.execute(
        "CREATE TABLE profiles (customer_id VARCHAR, city VARCHAR, date_of_birth DATE, "
        "consent_email BOOLEAN, consent_sms BOOLEAN, consent_ads BOOLEAN)"
    )
    con.execute(
        "INSERT INTO profiles VALUES ('c1', 'Lyon', DATE '1985-07-02', true, false, NULL), "
        "('c2', NULL, NULL, NULL, NULL, NULL), ('c3', 'Nantes', NULL, false, false, false)"
    )


def order(key: str, at: str, amount: float, customer: str = "c1", **extra: object) -> dict:
    return {
        "order_id": key,
        "channel": extra.pop("channel", "online"),
        "ordered_at": at,
        "amount": amount,
        "customer": customer,
        **extra,
    }


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse where c1 has a bit of everything, c2 only a CRM record, c3 a late order."""
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    resolution_tables(con)
    insert(
        con,
        "orders",
        [
            order("o1", "2024-06-15", 100, discount=10, items=items("shoes")),
            order(
                "o2", "2025-03-01", 50, channel="store", discount=0, items=items("hats", "shoes")
            ),
            order("o3", "2025-06-16", 30, items=items("socks")),
            order("o4", "2025-07-01", 999),  # at the cutoff: not before it
            order("o5", "2025-08-01", 999),
            order("o6", "2025-07-15", 20, customer="c3"),
        ],
    )
    web = [
        ("2025-03-01 10:00", "page", None),
        ("2025-06-20 10:00", "page", None),
        ("2025-06-20 10:10", "track", "Product Viewed"),
        ("2025-06-20 10:20", "track", "Product Added"),
        ("2025-06-20 10:25", "track", "Checkout Started"),
        ("2025-06-20 12:00", "track", "Product Viewed"),  # 95 minutes later: a new session
        ("2025-06-25 09:00", "screen", None),
        ("2025-06-25 09:05", "track", "Checkout Started"),
        ("2025-06-25 09:06", "track", "Order Completed"),
        ("2025-07-02 09:00", "page", None),
    ]
    insert(
        con,
        "events",
        [
            {"message_id": f"e{i}", "timestamp": at, "type": kind, "event": name, "customer": "c1"}
            for i, (at, kind, name) in enumerate(web)
        ],
    )
    mails = [
        ("2025-01-10", "send"),
        ("2025-01-11", "open"),
        ("2025-06-05", "send"),
        ("2025-06-06", "open"),
        ("2025-06-10", "send"),
        ("2025-06-11", "open"),
        ("2025-06-11", "click"),
        ("2025-06-20", "send"),
        ("2025-07-05", "unsubscribe"),
    ]
    insert(
        con,
        "email_events",
        [
            {"email_event_id": f"m{i}", "email": "x", "event_type": kind, "occurred_at": at}
            | {"customer": "c1"}
            for i, (at, kind) in enumerate(mails)
        ],
    )
    tickets = [
        ("2025-02-01", "positive"),
        ("2025-06-10", "negative"),
        ("2025-06-30", "Negative"),
        ("2025-07-10", "negative"),
    ]
    insert(
        con,
        "support_tickets",
        [
            {"ticket_id": f"t{i}", "sentiment": s, "created_at": at, "customer": "c1"}
            for i, (at, s) in enumerate(tickets)
        ],
    )
    insert(
        con, "crm_contacts", [{"contact_id": "k1", "created_at": "2024-01-01", "customer": "c1"}]
    )
    insert(
        con, "crm_contacts", [{"contact_id": "k2", "created_at": "2025-01-01", "customer": "c2"}]
    )
    insert(
        con,
        "accounts",
        [{"user_id": "u1", "email": "x", "signup_at": "2024-03-01", "customer": "c1"}],
    )
    yield con
    con.close()


def snapshot(con: duckdb.DuckDBPyConnection, group: str, customer: str, at: datetime) -> dict:
    frame = con.execute(
        f"SELECT * FROM customer_{group}_features WHERE customer_id = ? AND event_timestamp = ?",
        [customer, at],
    ).df()
    assert len(frame) == 1, f"expected one {group} row for {customer} at {at}, got {len(frame)}"
    return frame.iloc[0].to_dict()


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    build_snapshots(
        con, as_of=[AS_OF, LATER], feast_dir=tmp_path / "feast", settings=FeatureSettings()
    )
    return con


def test_order_features(built: duckdb.DuckDBPyConnection) -> None:
    row = snapshot(built, "order", "c1", AS_OF)
    expected = {
        "days_since_last_order": 15,
        "days_since_first_order": 381,
        "orders_total": 3,
        "orders_30d": 1,
        "orders_90d": 1,
        "orders_365d": 2,
        "spend_total": 180.0,
        "spend_30d": 30.0,
        "spend_90d": 30.0,
        "spend_365d": 80.0,
        "avg_order_value": 60.0,
        "purchase_days": 3,
        "repeat_purchase_value": 40.0,  # the two orders after the first day's
        "spend_trend_90d": -0.25,  # (30 - 50) / (30 + 50)
        "days_between_orders": 183.0,  # gaps of 259 and 107 days
        "discount_share": pytest.approx(1 / 3),
        "category_breadth": 3,
        "online_share": pytest.approx(2 / 3),
    }
    assert {k: row[k] for k in expected} == expected
    assert row["order_gap_cv"] == pytest.approx(152 / 2**0.5 / 183)
    day = AS_OF.timetuple().tm_yday  # where the snapshot falls in the year, for everyone
    assert row["as_of_year_sin"] == pytest.approx(np.sin(2 * np.pi * day / 365.25))
    assert row["as_of_year_cos"] == pytest.approx(np.cos(2 * np.pi * day / 365.25))
    # c3's only order comes after the cutoff; c2 never ordered: no rows, hence nulls in Feast.
    customers = built.execute(
        "SELECT list(customer_id ORDER BY customer_id) FROM customer_order_features "
        "WHERE event_timestamp = ?",
        [AS_OF],
    ).fetchone()[0]
    assert customers == ["c1"]
    assert snapshot(built, "order", "c1", LATER)["orders_total"] == 4  # o4 counts a month on


def test_web_features(built: duckdb.DuckDBPyConnection) -> None:
    row = snapshot(built, "web", "c1", AS_OF)
    expected = {
        "days_since_last_visit": 6,
        "sessions_30d": 3,
        "sessions_90d": 3,
        "sessions_365d": 4,
        "page_views_30d": 2,
        "page_views_365d": 3,
        "product_views_30d": 2,
        "add_to_carts_30d": 1,
        "checkouts_30d": 2,
        "abandoned_checkouts_30d": 1,
    }
    assert {k: row[k] for k in expected} == expected


def test_email_features(built: duckdb.DuckDBPyConnection) -> None:
    row = snapshot(built, "email", "c1", AS_OF)
    assert row["email_sends_30d"] == 3
    assert row["email_open_rate_30d"] == pytest.approx(2 / 3)
    assert row["email_click_rate_30d"] == pytest.approx(1 / 3)
    assert row["email_sends_365d"] == 4
    assert row["email_open_rate_365d"] == pytest.approx(3 / 4)
    assert row["days_since_last_email_open"] == 20
    assert not row["email_unsubscribed"]
    assert snapshot(built, "email", "c1", LATER)["email_unsubscribed"]


def test_support_features(built: duckdb.DuckDBPyConnection) -> None:
    row = snapshot(built, "support", "c1", AS_OF)
    expected = {
        "tickets_30d": 2,
        "negative_tickets_30d": 2,
        "tickets_365d": 3,
        "negative_tickets_365d": 2,
        "days_since_last_ticket": 1,
    }
    assert {k: row[k] for k in expected} == expected


def test_profile_features(built: duckdb.DuckDBPyConnection) -> None:
    row = snapshot(built, "profile", "c1", AS_OF)
    # Before the cutoff: a CRM contact, an account, orders, events, email events and tickets.
    assert row["linked_identities"] == 2
    assert row["linked_sources"] == 6
    assert row["tenure_days"] == 547
    assert (row["age_band"], row["city"]) == ("30s", "Lyon")  # 39 the day before turning 40
    assert (row["consent_email"], row["consent_sms"]) == (True, False)
    assert snapshot(built, "profile", "c1", LATER)["age_band"] == "40s"
    c2 = snapshot(built, "profile", "c2", AS_OF)
    assert (c2["linked_identities"], c2["age_band"], c2["city"]) == (1, None, None)


def test_columns_follow_the_definitions(built: duckdb.DuckDBPyConnection) -> None:
    columns = []
    for group in ("order", "web", "email", "support", "profile"):
        names = built.execute(f"SELECT * FROM customer_{group}_features LIMIT 0").df().columns
        assert list(names[:2]) == ["customer_id", "event_timestamp"]
        columns += list(names[2:])
    assert columns == feature_names(service="churn_v1", settings=FeatureSettings())


def test_rebuilding_is_idempotent_and_replace_keeps_only_given_dates(
    built: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    before = built.execute("SELECT count(*) FROM customer_order_features").fetchone()
    build_snapshots(built, as_of=[AS_OF], feast_dir=tmp_path / "feast", settings=FeatureSettings())
    assert built.execute("SELECT count(*) FROM customer_order_features").fetchone() == before
    assert snapshot_dates(built) == [AS_OF, LATER]
    build_snapshots(
        built, as_of=[LATER], feast_dir=tmp_path / "feast", settings=FeatureSettings(), replace=True
    )
    assert snapshot_dates(built) == [LATER]
    exported = duckdb.sql(
        f"SELECT DISTINCT event_timestamp FROM '{tmp_path}/feast/customer_order_features.parquet'"
    ).fetchall()
    assert exported == [(LATER,)]


def test_days_and_categories_count_once_and_only_before_the_snapshot(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    no_category = json.dumps([{"sku": "gift-card", "quantity": 1, "unit_price": 5}])
    rows = [
        order("d1", "2025-05-02 18:00", 10, customer="c4", items=items("a", "b")),
        order("d2", "2025-05-02 09:00", 20, customer="c4", items=items("b")),  # same day
        order("d3", "2025-06-20", 30, customer="c4", items=no_category),
        order("d4", "2025-06-30 23:00", 40, customer="c4", items=items("b", "c")),
        order("d5", "2025-07-15", 50, customer="c4", items=items("a", "d")),  # after AS_OF
    ]
    insert(con, "orders", rows)
    build_snapshots(
        con, as_of=[AS_OF, LATER], feast_dir=tmp_path / "feast", settings=FeatureSettings()
    )
    first, later = (snapshot(con, "order", "c4", at) for at in (AS_OF, LATER))
    assert (first["purchase_days"], first["category_breadth"]) == (3, 3)
    assert first["repeat_purchase_value"] == 35.0  # (30 + 40) over the two later days
    assert (later["purchase_days"], later["category_breadth"]) == (4, 4)


def test_fresh_snapshots_are_reused_until_data_is_loaded_or_definitions_change(
    built: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    settings, feast_dir = FeatureSettings(), tmp_path / "feast"
    assert fresh_dates(built, settings=settings) == {AS_OF, LATER}
    assert fresh_dates(built, settings=FeatureSettings(windows=[7, 30])) == set()
    report = build_snapshots(
        built, as_of=[LATER], feast_dir=feast_dir, settings=settings, reuse=True
    )
    assert (report.as_of, report.reused) == ([], [LATER])
    insert(built, "orders", [order("o7", "2025-07-20", 40, customer="c3")])  # a later load
    assert fresh_dates(built, settings=settings) == set()
    report = build_snapshots(
        built, as_of=[AS_OF, LATER], feast_dir=feast_dir, settings=settings, reuse=True
    )
    assert (report.as_of, report.reused) == ([AS_OF, LATER], [])
    assert snapshot(built, "order", "c3", LATER)["purchase_days"] == 2
    assert fresh_dates(built, settings=settings) == {AS_OF, LATER}
    built.execute("UPDATE identity_map SET resolved_at = ?", [utc_now()])  # a later resolution
    assert fresh_dates(built, settings=settings) == set()


def test_default_schedule_is_monthly_plus_the_day_after_the_last_activity(
    con: duckdb.DuckDBPyConnection,
) -> None:
    dates = default_schedule(con, settings=FeatureSettings())
    assert dates[0] == datetime(2024, 7, 1)  # first month start after the first order
    assert dates[-2:] == [datetime(2025, 8, 1), datetime(2025, 8, 2)]
    assert len(dates) == 15
    quarterly = default_schedule(
        con, settings=FeatureSettings(snapshot_every_months=3, ttl_days=95)
    )
    assert quarterly == [
        datetime(2024, 7, 1),
        *(datetime(y, m, 1) for y, m in [(2024, 10), (2025, 1), (2025, 4), (2025, 7)]),
        datetime(2025, 8, 2),
    ]


def test_orders_only_degrades_to_order_features(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "orders_only.duckdb"))
    schema = SOURCES["orders"]
    con.execute(
        f"CREATE TABLE raw_orders ({', '.join(f'{c.name} {c.type}' for c in schema.columns)})"
    )
    resolution_tables(con)
    con.execute(
        "INSERT INTO raw_orders (order_id, channel, ordered_at, amount) VALUES "
        "('o1', 'online', '2025-01-05', 10), ('o2', 'store', '2025-02-05', 30)"
    )
    con.execute(
        "INSERT INTO identity_map (source, record_key, customer_id) "
        "VALUES ('orders', 'o1', 'c1'), ('orders', 'o2', 'c1')"
    )
    settings = FeatureSettings()
    dates = default_schedule(con, settings=settings)
    assert dates == [datetime(2025, 2, 1), datetime(2025, 2, 6)]
    report = build_snapshots(con, as_of=dates, feast_dir=tmp_path / "feast", settings=settings)
    assert report.groups_without_data == ["web", "email", "support"]
    assert report.rows == {"order": 2, "web": 0, "email": 0, "support": 0, "profile": 2}
    row = snapshot(con, "order", "c1", datetime(2025, 2, 6))
    assert (row["orders_total"], row["spend_total"], row["online_share"]) == (2, 40.0, 0.5)
    assert row["category_breadth"] == 0  # no items recorded
    assert snapshot(con, "profile", "c1", datetime(2025, 2, 6))["linked_sources"] == 1
    for group in ("web", "email", "support"):
        assert (tmp_path / "feast" / f"customer_{group}_features.parquet").exists()


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "empty.duckdb")
    with pytest.raises(FeatureInputError, match="cip load"):
        default_schedule(con, settings=FeatureSettings())
    with pytest.raises(FeatureInputError, match="identity_map.*cip resolve"):
        build_snapshots(
            con, as_of=[AS_OF], feast_dir=tmp_path / "feast", settings=FeatureSettings()
        )


def test_any_stored_timestamp_is_tolerated(tmp_path: Path) -> None:
    """Times a broken clock or a typo leaves (year 0001, 2300, 9999) neither stretch the
    schedule over centuries nor break the snapshots."""
    con = duckdb.connect(str(tmp_path / "odd_times.duckdb"))
    schema = SOURCES["orders"]
    con.execute(
        f"CREATE TABLE raw_orders ({', '.join(f'{c.name} {c.type}' for c in schema.columns)})"
    )
    resolution_tables(con)
    con.execute(
        "INSERT INTO raw_orders (order_id, channel, ordered_at, amount) VALUES "
        "('o1', 'online', '2025-01-05', 10), ('o2', 'store', '2025-02-05', 30), "
        "('o3', 'online', '0001-01-01', 5), ('o4', 'online', '2300-06-01', 7), "
        "('o5', 'online', '9999-12-31 23:59:59', 9)"
    )
    con.execute(
        "INSERT INTO identity_map (source, record_key, customer_id) "
        "SELECT 'orders', order_id, 'c1' FROM raw_orders"
    )
    settings = FeatureSettings()
    dates = default_schedule(con, settings=settings)
    assert dates == [datetime(2025, 2, 1), datetime(2025, 2, 6)]
    report = build_snapshots(con, as_of=dates, feast_dir=tmp_path / "feast", settings=settings)
    assert report.rows["order"] == 2
    row = snapshot(con, "order", "c1", datetime(2025, 2, 6))
    assert (row["orders_total"], row["spend_total"]) == (3, 45.0)  # 0001 is before, 2300 after
