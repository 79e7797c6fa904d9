"""Rules compiled to DuckDB SQL over the evaluation tables built by `segments.fields.prepare`.

A rule becomes a boolean expression over the base table (alias `b`) with `?`
parameters. A condition on a missing value (no score yet, no feature snapshot)
is false, and so `not` of it is true: `not` means "does not match".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from segments.definition import AllOf, AnyOf, EventCondition, FieldCondition, Not, Rule
from segments.fields import BASE_TABLE, CURRENCY_FIELD, EVENTS_TABLE

__all__ = ["compile_rule"]

_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}


def compile_rule(rule: Rule, *, as_of: datetime) -> tuple[str, list[object]]:
    """SQL predicate over `b` (the base table) and its parameters."""
    params: list[object] = []
    return _sql(rule, as_of, params), params


def _sql(rule: Rule, as_of: datetime, params: list[object]) -> str:
    match rule:
        case AllOf(all=rules):
            return "(" + " AND ".join(_sql(r, as_of, params) for r in rules) + ")"
        case AnyOf(any=rules):
            return (
                "(" + " OR ".join(f"coalesce({_sql(r, as_of, params)}, FALSE)" for r in rules) + ")"
            )
        case Not(not_=inner):
            return f"(NOT coalesce({_sql(inner, as_of, params)}, FALSE))"
        case FieldCondition():
            return _field_sql(rule, as_of, params)
        case EventCondition():
            return _event_sql(rule, as_of, params)
    raise TypeError(f"not a rule: {rule!r}")


def _field_sql(rule: FieldCondition, as_of: datetime, params: list[object]) -> str:
    column = f'b."{rule.field}"'
    op, value = rule.op, rule.value
    if op == "is_null":
        return f"({column} IS NULL)"
    if op == "not_null":
        return f"({column} IS NOT NULL)"
    if isinstance(value, dict):
        return _money_sql(column, op, value, params)
    if op in _COMPARISONS:
        params.append(value)
        return f"({column} {op} ?)"
    if op == "between":
        params.extend(value)
        return f"({column} BETWEEN ? AND ?)"
    if op in ("in", "not_in"):
        params.extend(value)
        negate = "NOT " if op == "not_in" else ""
        return f"({column} {negate}IN ({', '.join('?' * len(value))}))"
    if op == "contains":
        params.append(value)
        return f"list_contains({column}, ?)"
    if op in ("top_percent", "bottom_percent"):
        return _quantile_sql(rule, as_of, params)
    params.append(as_of - timedelta(days=value))
    return f"({column} > ?)" if op == "within_days" else f"({column} <= ?)"


def _money_sql(column: str, op: str, value: dict, params: list[object]) -> str:
    """A threshold per currency: each customer compared with their own currency's amount;
    a customer in a currency the rule does not name matches no amount (NULL, i.e. false)."""
    cases = []
    for code, amount in value.items():
        params.append(code)
        if op == "between":
            params.extend(amount)
            cases.append(f"WHEN ? THEN {column} BETWEEN ? AND ?")
        else:
            params.append(amount)
            cases.append(f"WHEN ? THEN {column} {op} ?")
    return f'(CASE b."{CURRENCY_FIELD}" {" ".join(cases)} END)'


def _quantile_sql(rule: FieldCondition, as_of: datetime, params: list[object]) -> str:
    """`b.field` among the `value`% highest (lowest) of the population: at or beyond the
    value of its ceil(value% x N)-th member in that order, so ties at the threshold are in.
    The population (everyone with a value, or who matches `among`) is the base table again,
    aliased `b` inside the subquery so that `among` compiles as any rule does."""
    column = f'b."{rule.field}"'
    top = rule.op == "top_percent"
    among = f" AND coalesce({_sql(rule.among, as_of, params)}, FALSE)" if rule.among else ""
    params.append(rule.value / 100)
    order, pick, compare = ("DESC", "min", ">=") if top else ("ASC", "max", "<=")
    threshold = (
        f"(SELECT {pick}(v) FROM (SELECT {column} AS v, row_number() OVER (ORDER BY {column} "
        f"{order}) AS r, count(*) OVER () AS n FROM {BASE_TABLE} b "
        f"WHERE {column} IS NOT NULL{among}) WHERE r <= ceil(? * n))"
    )
    return f"({column} {compare} {threshold})"


def _event_sql(rule: EventCondition, as_of: datetime, params: list[object]) -> str:
    where = ["e.customer_id = b.customer_id", "e.kind = ?"]
    params.append(rule.event)
    if rule.within_days is not None:
        where.append("e.occurred_at > ?")
        params.append(as_of - timedelta(days=rule.within_days))
    if rule.after_last is not None:
        where.append(
            f"e.occurred_at > (SELECT max(l.occurred_at) FROM {EVENTS_TABLE} l "
            "WHERE l.customer_id = b.customer_id AND l.kind = ?)"
        )
        params.append(rule.after_last)
    count = f"(SELECT count(*) FROM {EVENTS_TABLE} e WHERE {' AND '.join(where)})"
    low, high = rule.bounds
    params.append(low)
    if high is None:
        return f"({count} >= ?)"
    params.append(high)
    return f"({count} BETWEEN ? AND ?)"
