"""Features over the generated universe, end to end through Feast.

The identity map is the synthetic truth (each record linked to its real person), so this
test checks features, not resolution: every snapshot figure checked here is recounted
independently from the raw tables.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

import features
import warehouse
from pipelines.config import Settings


@pytest.fixture
def linked(universe_copy: Settings) -> duckdb.DuckDBPyConnection:
    truth = universe_copy.paths.truth
    con = warehouse.connect(universe_copy.paths.warehouse)
    con.execute(
        "CREATE TABLE identity_map AS SELECT source, record_key, person_id AS customer_id "
        f"FROM '{truth}/record_truth.parquet'"
    )
    con.execute(
        "CREATE TABLE profiles AS SELECT person_id AS customer_id, city, date_of_birth, "
        "NULL::BOOLEAN AS consent_email, NULL::BOOLEAN AS consent_sms, "
        f"NULL::BOOLEAN AS consent_ads FROM '{truth}/people.parquet'"
    )
    yield con
    con.close()


def test_universe_snapshots_and_feast(linked: duckdb.DuckDBPyConnection, universe_copy: Settings):
    settings, feast_dir = universe_copy.features, universe_copy.paths.feast
    dates = features.default_schedule(linked, settings=settings)
    report = features.build_snapshots(linked, as_of=dates, feast_dir=feast_dir, settings=settings)
    assert report.groups_without_data == []
    assert all(report.rows[name] > 0 for name in features.GROUPS)
    latest = dates[-1]

    def recount(sql: str) -> float:
        return linked.execute(sql, [latest]).fetchone()[0]

    def snapshot_sum(table: str, column: str) -> float:
        return recount(f"SELECT sum({column}) FROM {table} WHERE event_timestamp = ?")

    assert snapshot_sum("customer_order_features", "orders_total") == recount(
        "SELECT count(*) FROM raw_orders WHERE ordered_at < ?"
    )
    assert snapshot_sum("customer_order_features", "spend_total") == pytest.approx(
        recount("SELECT sum(amount) FROM raw_orders WHERE ordered_at < ?")
    )
    assert snapshot_sum("customer_email_features", "email_sends_365d") == recount(
        "SELECT count(*) FROM raw_email_events WHERE event_type = 'send' "
        "AND occurred_at >= $1::TIMESTAMP - INTERVAL 365 DAY AND occurred_at < $1"
    )
    assert snapshot_sum("customer_support_features", "negative_tickets_90d") == recount(
        "SELECT count(*) FROM raw_support_tickets WHERE sentiment = 'negative' "
        "AND created_at >= $1::TIMESTAMP - INTERVAL 90 DAY AND created_at < $1"
    )
    assert snapshot_sum("customer_web_features", "page_views_30d") == recount(
        "SELECT count(*) FROM raw_events WHERE type IN ('page', 'screen') "
        "AND timestamp >= $1::TIMESTAMP - INTERVAL 30 DAY AND timestamp < $1"
    )

    store = features.open_store(feast_dir=feast_dir, settings=settings)
    features.apply_repo(store, feast_dir=feast_dir, settings=settings)
    people = [c for (c,) in linked.execute("SELECT customer_id FROM profiles").fetchall()]
    entities = pd.DataFrame(
        {
            "customer_id": people * 3,
            "event_timestamp": [dates[-13]] * len(people)
            + [dates[-7]] * len(people)
            + [latest] * len(people),
        }
    )
    frame = features.training_set(store, entity_df=entities, service="churn_v1")
    assert len(frame) == len(entities)
    at_latest = frame[frame["event_timestamp"] == latest].set_index("customer_id")
    expected = linked.execute(
        "SELECT customer_id, orders_total FROM customer_order_features WHERE event_timestamp = ?",
        [latest],
    ).df()
    assert at_latest.loc[expected["customer_id"], "orders_total"].tolist() == (
        expected["orders_total"].tolist()
    )
    no_orders = sorted(set(people) - set(expected["customer_id"]))
    assert at_latest.loc[no_orders, "orders_total"].isna().all()

    features.materialize(store, until=latest)
    online = features.OnlineFeatures(store, service="ltv_v1").get_many(expected["customer_id"][:20])
    assert online["orders_total"].tolist() == expected["orders_total"][:20].tolist()
