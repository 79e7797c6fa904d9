"""Labels, cutoffs and leakage on hand-made orders where the right answer is known."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import warehouse
from models import (
    HorizonError,
    build_examples,
    data_span,
    orders_sql,
    plan_cutoffs,
    population_counts,
    visible_until,
)

CUTOFF = datetime(2025, 3, 1)

ORDERS = [  # customer, ordered_at, amount
    ("a", "2025-01-10", 10.0),  # active, buys again in the window: not churned
    ("a", "2025-02-10", 30.0),
    ("a", "2025-03-15", 50.0),
    ("a", "2025-06-15", 999.0),  # after the 90-day window
    ("b", "2024-12-01", 20.0),  # active, silent afterwards: churned
    ("c", "2023-01-01", 40.0),  # quiet for two years: still a customer, and buys again
    ("c", "2025-03-02", 40.0),
    ("c", "2025-03-09", 10.0),
    ("d", "2025-03-01 00:00:00", 70.0),  # exactly at the cutoff: a future order, not history
    ("f", "2025-02-01", 25.0),  # a fragment: an anonymous till slip nobody can contact
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    frame = pd.DataFrame(ORDERS, columns=["customer_id", "ordered_at", "amount"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], format="ISO8601")
    frame["order_id"] = [f"o{i}" for i in range(len(frame))]
    con.register("_orders", frame)
    con.execute("CREATE TABLE raw_orders AS SELECT order_id, ordered_at, amount FROM _orders")
    con.execute(
        "CREATE TABLE identity_map AS "
        "SELECT 'orders' AS source, order_id AS record_key, customer_id FROM _orders"
    )
    con.execute(
        "CREATE TABLE customer_identifiers AS SELECT * FROM (VALUES ('email', 'a@x.org', 'a'), "
        "('phone', '+15550100', 'b'), ('user_id', 'u-c', 'c'), ('user_id', 'u-d', 'd'), "
        "('anonymous_id', 'cookie-f', 'f')) AS t(id_type, id_value, customer_id)"
    )
    return con


def examples(con: duckdb.DuckDBPyConnection, **kw: object) -> pd.DataFrame:
    params = {"cutoffs": [CUTOFF], "horizon_days": 90, "min_orders": 1, "orders": orders_sql()}
    return build_examples(con, **{**params, **kw}).set_index("customer_id")


def test_population_and_labels(con: duckdb.DuckDBPyConnection) -> None:
    rows = examples(con)
    # c has been quiet for two years and is scored all the same (and buys twice); d had no
    # order before the cutoff; the fragment f is no customer to model
    assert sorted(rows.index) == ["a", "b", "c"]
    assert not rows.loc["a", "churned"] and rows.loc["b", "churned"]
    assert not rows.loc["c", "churned"] and rows.loc["c", "orders"] == 2
    assert rows.loc["a", "revenue"] == 50.0 and rows.loc["a", "orders"] == 1  # 999 is later
    assert rows.loc["b", "revenue"] == 0.0 and rows.loc["b", "orders"] == 0
    everyone = examples(con, orders=orders_sql(include_fragments=True))
    assert sorted(everyone.index) == ["a", "b", "c", "f"]


def test_fragments_are_counted_apart(con: duckdb.DuckDBPyConnection) -> None:
    counts = population_counts(con, before=CUTOFF)
    assert (counts["people"], counts["fragments"]) == (3, 1)
    assert counts["fragment_order_share"] == pytest.approx(1 / 5)  # 5 orders before it
    assert counts["fragment_revenue_share"] == pytest.approx(25 / 125)


def test_history_columns_see_nothing_after_the_cutoff(con: duckdb.DuckDBPyConnection) -> None:
    a = examples(con).loc["a"]
    assert a["rfm_frequency"] == 2 and a["rfm_monetary"] == 20.0
    assert a["rfm_recency_days"] == (CUTOFF - datetime(2025, 2, 10)).days
    assert a["past_revenue"] == 40.0  # both orders fall in the 90 days before


def test_planting_a_future_order_changes_labels_only(con: duckdb.DuckDBPyConnection) -> None:
    before = examples(con)
    con.execute("INSERT INTO raw_orders VALUES ('late', TIMESTAMP '2025-03-20', 500.0)")
    con.execute("INSERT INTO identity_map VALUES ('orders', 'late', 'b')")
    after = examples(con)
    history = [c for c in before.columns if c not in ("churned", "orders", "revenue")]
    pd.testing.assert_frame_equal(before[history], after[history])
    assert not after.loc["b", "churned"] and after.loc["b", "revenue"] == 500.0


def test_activity_rule_is_a_setting(con: duckdb.DuckDBPyConnection) -> None:
    assert list(examples(con, min_orders=2).index) == ["a"]


def test_scoring_examples_have_no_labels(con: duckdb.DuckDBPyConnection) -> None:
    rows = examples(con, with_labels=False)
    assert not {"churned", "orders", "revenue"} & set(rows.columns)


def test_as_of_hides_later_orders(con: duckdb.DuckDBPyConnection) -> None:
    assert data_span(con) == (date(2023, 1, 1), date(2025, 6, 15))
    assert data_span(con, as_of=date(2025, 3, 1)) == (date(2023, 1, 1), date(2025, 3, 1))
    with pytest.raises(HorizonError, match="no orders on or before 2022-01-01"):
        data_span(con, as_of=date(2022, 1, 1))


def test_cutoff_plan_keeps_every_label_window_before_the_test_cutoff() -> None:
    plan = plan_cutoffs(
        first_order=date(2023, 1, 1),
        as_of=date(2025, 6, 30),
        horizon_days=90,
        step_months=1,
        train_cutoffs=4,
        min_history_days=90,
    )
    horizon = pd.Timedelta(days=90)
    end = visible_until(date(2025, 6, 30))
    assert plan.test + horizon <= end < plan.test + horizon + pd.Timedelta(days=31)
    assert all(c.day == 1 and c == c.replace(hour=0) for c in plan.all)  # month starts
    assert plan.valid + horizon <= plan.test
    assert len(plan.train) == 4 and all(c + horizon < plan.test for c in plan.train)
    assert list(plan.train) == sorted(plan.train) and plan.train[-1] < plan.valid


def test_short_history_uses_fewer_cutoffs_then_says_what_is_missing() -> None:
    common = {"as_of": date(2025, 6, 30), "step_months": 1, "train_cutoffs": 6}
    plan = plan_cutoffs(
        first_order=date(2024, 6, 1), horizon_days=90, min_history_days=90, **common
    )
    assert 0 < len(plan.train) < 6
    with pytest.raises(HorizonError) as error:
        plan_cutoffs(
            first_order=date(2025, 1, 1),
            horizon_days=180,
            min_history_days=90,
            what="ltv",
            **common,
        )
    message = str(error.value)
    assert "ltv horizon of 180 days" in message and "need about 480 days" in message
    assert "covers 181 days" in message


def test_a_warehouse_without_resolution_is_refused_clearly(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "warehouse.duckdb")  # raw tables only, no identity_map
    with pytest.raises(HorizonError, match="identity_map.*run `cip load` and `cip resolve`"):
        data_span(con)
    con.close()
