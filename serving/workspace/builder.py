"""The segment builder's form, turned into the same YAML definition the CLI reads.

The form holds a name, a description, how conditions combine (`all` or `any`), segments
to exclude, and numbered condition rows. A row is a field condition (a field from the
catalog, an operator, a value typed as text) or an event condition (an event kind, at
least once or never, within so many days, after the customer's last event of a kind); it
may be negated, and it either selects people or excludes them. `draft` builds the
definition's mapping: values are parsed by the field's kind (numbers, true/false, comma
lists, `USD 80, RUB 6000` as an amount per currency), and anything that does not fit is
passed on as typed so that validation (`segments.parse_definition`,
`segments.definition.validate_definitions`) reports it with the CLI's own words. Field and
event names reach SQL only after that validation found them in the catalog; values only as
query parameters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from segments.fields import Catalog

__all__ = ["Row", "draft", "rows_from_form", "save_definition", "to_yaml"]

_ROW_KEY = re.compile(r"^(role|negate|kind|field|op|value|event|count|within|after)_(\d{1,3})$")
_LIST_OPS = {"in", "not_in", "between"}
_NO_VALUE = {"is_null", "not_null"}
_AMOUNT = re.compile(r"^([A-Za-z]{3})\s+(\S+)$")


@dataclass
class Row:
    """One condition row of the builder form, as typed."""

    index: int
    kind: str = ""
    role: str = "include"
    negate: bool = False
    field: str = ""
    op: str = "="
    value: str = ""
    event: str = ""
    count: str = "some"
    within: str = ""
    after: str = ""


def rows_from_form(form: Mapping[str, str], *, blank: int = 0) -> list[Row]:
    """The rows in `form` (by index), plus `blank` empty ones after them."""
    rows: dict[int, Row] = {}
    for key, value in form.items():
        match = _ROW_KEY.match(key)
        if match is None:
            continue
        name, index = match.group(1), int(match.group(2))
        row = rows.setdefault(index, Row(index))
        if name == "negate":
            row.negate = value in ("on", "true", "1")
        else:
            setattr(row, name, str(value).strip())
    found = [rows[i] for i in sorted(rows)]
    start = found[-1].index + 1 if found else 0
    return found + [Row(start + i) for i in range(blank)]


def draft(
    form: Mapping[str, str], *, rows: list[Row], excluded: list[str], catalog: Catalog
) -> dict[str, Any]:
    """The definition's mapping, in the order a person would write it."""
    include, exclude = [], []
    for row in rows:
        condition = _condition(row, catalog)
        if condition is None:
            continue
        if row.negate:
            condition = {"not": condition}
        (exclude if row.role == "exclude" else include).append(condition)
    data: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "description": str(form.get("description", "")).strip() or "Built in the workspace.",
    }
    if include:
        combine = "any" if form.get("combine") == "any" else "all"
        data["rule"] = include[0] if len(include) == 1 else {combine: include}
    if exclude or excluded:
        data["exclude"] = {}
        if excluded:
            data["exclude"]["segments"] = excluded
        if exclude:
            data["exclude"]["rule"] = exclude[0] if len(exclude) == 1 else {"any": exclude}
    return data


def to_yaml(data: Mapping[str, Any]) -> str:
    """The definition as its YAML file reads (flow style for each condition)."""
    return yaml.dump(
        _flowing(dict(data)), sort_keys=False, allow_unicode=True, width=88, Dumper=_Dumper
    )


def save_definition(data: Mapping[str, Any], *, folder: Path, replace: bool) -> Path:
    """Write `<folder>/<name>.yaml` atomically; FileExistsError unless `replace`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['name']}.yaml"
    if path.exists() and not replace:
        raise FileExistsError(f"{path.name} already exists: tick 'replace' to overwrite it")
    temporary = path.with_suffix(".yaml.tmp")
    temporary.write_text(to_yaml(data))
    os.replace(temporary, path)
    return path


def _condition(row: Row, catalog: Catalog) -> dict[str, Any] | None:
    if row.kind == "field" and row.field:
        condition: dict[str, Any] = {"field": row.field, "op": row.op}
        if row.op not in _NO_VALUE:
            condition["value"] = _value(row.value, catalog.fields.get(row.field), row.op)
        return condition
    if row.kind == "event" and row.event:
        condition = {"event": row.event}
        if row.within:
            condition["within_days"] = _number(row.within)
        if row.after:
            condition["after_last"] = row.after
        if row.count == "none":
            condition["max_count"] = 0
        return condition
    return None


def _value(text: str, kind: str | None, op: str) -> Any:
    amounts = [_AMOUNT.match(part.strip()) for part in text.split(",")]
    if kind == "number" and op not in _LIST_OPS and all(amounts) and amounts:
        return {match.group(1): _number(match.group(2)) for match in amounts}  # per currency
    if op in _LIST_OPS:
        return [_scalar(part.strip(), kind) for part in text.split(",") if part.strip()]
    if op in ("within_days", "before_days"):
        return _number(text)
    return _scalar(text, kind)


def _scalar(text: str, kind: str | None) -> Any:
    if kind == "number":
        return _number(text)
    if kind == "boolean":
        lowered = text.lower()
        return {"true": True, "yes": True, "false": False, "no": False}.get(lowered, text)
    return text


def _number(text: str) -> Any:
    """An int or float if `text` is one, else `text` itself (validation names the problem)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


class _Dumper(yaml.SafeDumper):
    pass


class _Flow(dict):
    """A mapping written on one line: `{field: scores.churn_decile, op: '>=', value: 6}`."""


_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, True)
)


def _flowing(node: Any) -> Any:
    """Conditions (mappings with `field` or `event`) in flow style, the rest in blocks."""
    if isinstance(node, dict):
        if "field" in node or "event" in node:
            return _Flow(node)
        return {key: _flowing(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_flowing(item) for item in node]
    return node
