"""DuckDB SQL as Spark SQL: sqlglot's translation, and where it needs help, the fix.

The stages write their SQL once, in DuckDB's dialect. sqlglot translates it for Spark,
as Splink translates its own; this module corrects what it does not translate with the
same meaning (each fix says what DuckDB means):

- `date_diff('day', a, b)` counts day boundaries (`datediff` of the dates), not 24-hour
  periods; `date_sub('year', a, b)` counts whole years;
- `epoch(ts)` keeps fractions of a second;
- `list(DISTINCT x ORDER BY x)` is a sorted set; `len(list)` the list's size;
- `json_extract_string(j, '$[*].f')` is the list of `f` of every element;
- `jaro_winkler_similarity` is DuckDB's function built for Spark (`warehouse.spark_udf`;
  Splink's `jaro_winkler` counts transpositions otherwise);
- `json_group_object(k, v)`, `count(DISTINCT (a, b))`, `UNPIVOT (...) ON ... INTO NAME
  ... VALUE ...` and a lambda's `w[1]`, `w[2:]` (1-based) have Spark spellings.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import sqlglot
from sqlglot import exp

from warehouse.spark_udf import JARO_WINKLER

__all__ = ["splink_settings_to_spark", "to_spark"]

_UNPIVOT = re.compile(
    r"UNPIVOT\s*\((?P<query>.*)\)\s*ON\s+(?P<columns>[\w\s,]+?)\s+INTO\s+NAME\s+(?P<name>\w+)"
    r"\s+VALUE\s+(?P<value>\w+)",
    re.S | re.I,
)
_JSON_LIST = re.compile(r"json_extract_string\((\w+),\s*'\$\[\*\]\.(\w+)'\)", re.I)
_SLICES = (
    (re.compile(r"\b(\w)\[1\]"), r"substr(\1, 1, 1)"),
    (re.compile(r"\b(\w)\[2:\]"), r"substr(\1, 2)"),
)


def _before_parsing(sql: str) -> str:
    """Textual fixes for what sqlglot cannot parse or parses with another meaning."""
    match = _UNPIVOT.search(sql)
    if match:
        columns = ", ".join(c.strip() for c in match["columns"].split(","))
        sql = (
            sql[: match.start()]
            + f"SELECT * FROM ({match['query']}) UNPIVOT ({match['value']} FOR "
            + f"{match['name']} IN ({columns}))"
            + sql[match.end() :]
        )
    sql = _JSON_LIST.sub(r"__cip_json_list(\1, '\2')", sql)
    for pattern, replacement in _SLICES:
        sql = pattern.sub(replacement, sql)
    return re.sub(r"\blen\(", "array_length(", sql)


def _fix(node: exp.Expression) -> exp.Expression:
    """Tree fixes after parsing DuckDB (visited from the root down)."""
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(this=JARO_WINKLER, expressions=[node.this, node.expression])
    if isinstance(node, exp.Filter) and _sorted_set(node.this) is not None:
        values = node.this.this.this.expressions
        chosen = exp.Filter(
            this=exp.func("collect_set", values[0].copy()), expression=node.expression
        )
        return exp.func("array_sort", chosen)
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.JSON:
        return node.this  # Spark keeps JSON as text
    if isinstance(node, exp.DateDiff) and node.unit and node.unit.name.lower() == "day":
        start, end = node.expression, node.this
        return exp.func(
            "datediff",
            exp.cast(end.copy(), "DATE"),
            exp.cast(start.copy(), "DATE"),
        )
    if isinstance(node, exp.Anonymous) and node.name.lower() == "date_sub":
        unit, start, end = node.expressions
        if unit.name.lower() == "year":
            s, e = start.sql("spark"), end.sql("spark")
            whole_years = sqlglot.parse_one(
                f"year({e}) - year({s}) - CASE WHEN month({e}) * 100 + day({e}) < "
                f"month({s}) * 100 + day({s}) THEN 1 ELSE 0 END",
                read="spark",
            )
            return exp.Paren(this=whole_years)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "__cip_json_list":
        column, field = node.expressions
        return sqlglot.parse_one(
            f"transform(from_json({column.sql('spark')}, 'ARRAY<STRUCT<{field.name}: STRING>>'),"
            f" x -> x.{field.name})",
            read="spark",
        )
    if isinstance(node, exp.Anonymous) and node.name.lower() == "json_group_object":
        key, value = node.expressions
        return sqlglot.parse_one(
            f"to_json(map_from_entries(collect_list(struct({key.sql('spark')}, "
            f"{value.sql('spark')}))))",
            read="spark",
        )
    if isinstance(node, exp.TimeToUnix | exp.UnixSeconds) or (
        isinstance(node, exp.Anonymous) and node.name.lower() == "epoch"
    ):
        arg = node.this if not isinstance(node, exp.Anonymous) else node.expressions[0]
        return sqlglot.parse_one(
            f"unix_micros(CAST({arg.sql('spark')} AS TIMESTAMP_LTZ)) / 1e6", read="spark"
        )
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
        values = node.this.expressions
        if len(values) == 1 and isinstance(values[0], exp.Tuple):
            return exp.Count(this=exp.Distinct(expressions=values[0].expressions))
    if _sorted_set(node) is not None:
        return _sorted_set(node)
    return node


def _sorted_set(node: exp.Expression) -> exp.Expression | None:
    """`list(DISTINCT x ORDER BY x)`: a sorted set of the values."""
    inner = node.this if isinstance(node, exp.ArrayAgg) else None
    if isinstance(inner, exp.Order) and isinstance(inner.this, exp.Distinct):
        values = inner.this.expressions
        return exp.func("array_sort", exp.func("collect_set", values[0].copy()))
    return None


def to_spark(statement: exp.Expression | str) -> str:
    """Spark SQL with the meaning of the DuckDB SQL `statement`."""
    if isinstance(statement, str):
        tree = sqlglot.parse_one(_before_parsing(statement), read="duckdb")
    else:
        tree = sqlglot.parse_one(_before_parsing(statement.sql("duckdb")), read="duckdb")
    return tree.transform(_fix).sql("spark")


def splink_settings_to_spark(settings: dict[str, Any]) -> dict[str, Any]:
    """A Splink model's settings, written for DuckDB, with every SQL condition and blocking
    rule in Spark SQL (the model's parameters unchanged)."""
    translated = copy.deepcopy(settings)
    translated["sql_dialect"] = "spark"
    for comparison in translated["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level["sql_condition"].strip().upper() != "ELSE":
                level["sql_condition"] = to_spark(level["sql_condition"])
    rules = translated.get("blocking_rules_to_generate_predictions", [])
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            rule["blocking_rule"] = to_spark(rule["blocking_rule"])
            rule["sql_dialect"] = "spark"
        else:
            rules[i] = to_spark(rule)
    return translated
