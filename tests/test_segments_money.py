"""Thresholds in money per currency on the hand-made segment warehouse: each customer is
compared with the amount for the currency of their own orders, and a wrong threshold gets
the CLI's clear error."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from segments.definition import DefinitionError, parse_definition
from segments.evaluate import evaluate_segments

# The currency of each customer's orders in the hand-made world (c04, c07, c08, c09: EUR).
CURRENCIES = {"c03": "RUB", "c06": "USD", "c10": "USD", "c12": "RUB"}


@pytest.fixture
def priced(segment_world: Path) -> Path:
    with duckdb.connect(str(segment_world)) as con:
        con.execute("ALTER TABLE raw_orders ADD COLUMN currency VARCHAR DEFAULT 'EUR'")
        for customer, currency in CURRENCIES.items():
            con.execute(
                "UPDATE raw_orders SET currency = ? WHERE order_id IN (SELECT record_key "
                "FROM identity_map WHERE source = 'orders' AND customer_id = ?)",
                [currency, customer],
            )
    return segment_world


def _members(path: Path, rule: dict) -> set[str]:
    definition = parse_definition({"name": "money", "description": "test", "rule": rule})
    with duckdb.connect(str(path)) as con:
        return set(evaluate_segments(con, definitions=[definition])["money"])


def test_each_customer_is_compared_in_their_own_currency(priced: Path) -> None:
    # Average orders: c03, c06 60; c10 120; c12 200 (the order feature snapshots).
    at_least = {"field": "order.avg_order_value", "op": ">=", "value": {"USD": 100, "RUB": 50}}
    assert _members(priced, at_least) == {"c03", "c10", "c12"}
    between = {"field": "order.avg_order_value", "op": "between",
               "value": {"USD": [50, 100], "RUB": [100, 300]}}  # fmt: skip
    assert _members(priced, between) == {"c06", "c12"}
    # A currency the rule does not name matches no amount: `not` of it holds for them.
    unnamed = _members(priced, {"not": at_least})
    assert {"c04", "c07", "c08", "c09"} <= unnamed and not unnamed & {"c03", "c10", "c12"}
    assert _members(priced, {"field": "order.currency", "op": "=", "value": "RUB"}) == {
        "c03",
        "c12",
    }


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"field": "order.avg_order_value", "op": ">=", "value": {"usd": 80}},
         "currency 'usd' is not a three-letter ISO 4217 code"),
        ({"field": "order.avg_order_value", "op": ">=", "value": {"USD": "80"}},
         "USD: needs a number value"),
        ({"field": "order.avg_order_value", "op": "top_percent", "value": {"USD": 10}},
         "a threshold per currency takes a number field and"),
        ({"field": "order.avg_order_value", "op": ">=", "value": {}},
         "needs at least one currency"),
    ],
)  # fmt: skip
def test_a_wrong_threshold_per_currency_says_what_is_wrong(
    priced: Path, condition: dict, problem: str
) -> None:
    with pytest.raises(
        DefinitionError, match="segment 'money': field 'order.avg_order_value'"
    ) as e:
        _members(priced, condition)
    assert problem in str(e.value)


def test_without_the_orders_currency_a_threshold_per_currency_is_refused(
    segment_world: Path,
) -> None:
    condition = {"field": "order.avg_order_value", "op": ">=", "value": {"USD": 80}}
    with pytest.raises(DefinitionError, match="needs the orders' currency"):
        _members(segment_world, condition)


def test_the_builder_reads_an_amount_per_currency_and_writes_the_clis_yaml(priced: Path) -> None:
    from datetime import datetime

    import yaml

    from segments.fields import Catalog
    from serving.workspace.builder import draft, rows_from_form, to_yaml

    form = {"name": "money", "kind_0": "field", "field_0": "order.avg_order_value",
            "op_0": ">=", "value_0": "USD 100, RUB 50"}  # fmt: skip
    catalog = Catalog(
        as_of=datetime(2026, 6, 30), fields={"order.avg_order_value": "number"}, events=frozenset()
    )
    data = draft(form, rows=rows_from_form(form), excluded=[], catalog=catalog)
    assert yaml.safe_load(to_yaml(data))["rule"] == {
        "field": "order.avg_order_value", "op": ">=", "value": {"USD": 100, "RUB": 50}
    }  # fmt: skip
    assert _members(priced, data["rule"]) == {"c03", "c10", "c12"}
