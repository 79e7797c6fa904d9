"""Resolution of any person table, given which of its columns play which role.

Real users bring their own CRM export, not our sources' schema:

    result = resolve_table("crm.csv", mapping={"first_name": "Vorname",
                           "surname": "Nachname", "email": "E-Mail", "date_of_birth": "dob"},
                           id_column="id", extra_columns=["Kundennummer"])
    result.clusters            # record_id, cluster_id, link_type, link_detail
    result.save_configuration("crm.splink.json")   # the model, as Splink JSON

The table may be a pandas DataFrame, an Arrow table, a DuckDB relation or a
CSV/Parquet path. Roles (`ROLES`): `first_name`, `surname`, `full_name` (split
into first and last when those are not mapped), `email`, `phone`,
`date_of_birth` (any common layout, see `resolution.dates`) or `birth_year`,
`birth_month` and `birth_day`, `address`, `city`, `postcode`. Extra columns
keep their own names and are compared by their profile (an id number with
edit-distance levels, free text with Jaro-Winkler, a category exactly).

Emails and phones link deterministically (guarded against explosion, as on
the platform); everything is then matched by a Splink model configured and
trained on the table itself (`resolution.configure`), or taken from a saved
configuration (`configuration=`, Splink JSON; trained parameters are reused,
a configuration without them is trained).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from resolution.clusters import IDENTITY_MAP
from resolution.comparisons import ROLE_KINDS
from resolution.configure import ModelChoices
from resolution.dates import DateReading, from_parts, read_dates
from resolution.linkage import PAIRS
from resolution.model import MATCH_COLUMNS, MatchModel
from resolution.profile import TableProfile, profile_columns
from resolution.records import RAW_COLUMNS, RECORDS, normalize_table
from resolution.resolver import link_records
from resolution.settings import ResolutionSettings
from warehouse.schemas import RECORD_ROLES

__all__ = ["ROLES", "InputError", "TableResolution", "read_table", "resolve_table"]

ROLES = (
    "first_name",
    "surname",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "birth_year",
    "birth_month",
    "birth_day",
    "address",
    "city",
    "postcode",
)
_DATE_PARTS = ("birth_year", "birth_month", "birth_day")
_ROLE_COLUMNS = {"surname": "last_name"}  # role -> the column it fills in the records
_RESERVED = {c.strip() for c in RAW_COLUMNS.split(",")} | {"uid", "unique_id"}
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class InputError(ValueError):
    """The table or its mapping cannot be resolved as given; the message says why."""


@dataclass
class TableResolution:
    """The outcome of `resolve_table`: clusters, the model used, and what was chosen."""

    clusters: pa.Table
    matches: pa.Table  # scored pairs at or above the threshold, by record id
    model: MatchModel
    profile: TableProfile
    choices: ModelChoices | None  # None when a trained configuration was reused
    figures: dict[str, int]

    @property
    def configuration(self) -> dict[str, Any]:
        """The Splink settings (comparisons, blocking rules, trained m and u, prior)."""
        return self.model.settings

    def save_configuration(self, path: str | Path) -> Path:
        """Write the configuration as Splink JSON, to reuse or edit (`configuration=`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model.settings, indent=2))
        return path

    def m_u_table(self) -> list[dict[str, Any]]:
        """One row per comparison level: m, u and the match weight (log2 of m/u)."""
        return self.model.parameters()


TableLike = pa.Table | duckdb.DuckDBPyRelation | str | Path | Any  # Any: a pandas DataFrame


def read_table(source: TableLike) -> pa.Table:
    """An Arrow table from a DataFrame, relation, Arrow table or CSV/Parquet path."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, duckdb.DuckDBPyRelation):
        return source.to_arrow_table()
    if isinstance(source, str | Path):
        return _read_file(Path(source))
    if hasattr(source, "to_arrow") and not hasattr(source, "columns"):
        return source.to_arrow()
    if hasattr(source, "columns") and hasattr(source, "dtypes"):  # pandas
        return pa.Table.from_pandas(source, preserve_index=False)
    raise InputError(
        f"cannot read a table from a {type(source).__name__}: give a pandas DataFrame, an "
        "Arrow table, a DuckDB relation or the path of a CSV or Parquet file"
    )


def _read_file(path: Path) -> pa.Table:
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix in (".csv", ".tsv", ".txt"):
            head = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
            types = dict.fromkeys(head.column_names, pa.string())
            options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
            return pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from error
    raise InputError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def resolve_table(
    table: TableLike,
    *,
    mapping: Mapping[str, str],
    id_column: str | None = None,
    extra_columns: Sequence[str] = (),
    settings: ResolutionSettings | None = None,
    configuration: str | Path | Mapping[str, Any] | None = None,
) -> TableResolution:
    """Cluster the records of `table`; see the module docstring for the roles."""
    settings = settings or ResolutionSettings()
    data = read_table(table)
    extras = _check(data, mapping, id_column, extra_columns)
    readings = _read_dates(data, mapping, month_first=settings.default_phone_region == "US")
    model = _configured_model(configuration)
    con = duckdb.connect()
    try:
        con.register("res_input", data)
        if readings:
            con.register("res_dates", pa.table({"iso": next(iter(readings.values())).values}))
        con.execute(
            f"CREATE TEMP TABLE res_raw_input AS "
            f"{_raw_select(mapping, id_column, extras, dates=bool(readings))}"
        )
        _check_unique(con, id_column)
        normalize_table(
            con,
            "res_raw_input",
            RECORDS,
            phone_region=settings.default_phone_region,
            extra_columns=list(extras),
        )
        present = [c for c in MATCH_COLUMNS if _mapped(c, mapping)] + list(extras)
        profile = _profile(con, present, mapping, extras, readings)
        result = link_records(
            con,
            settings=settings,
            model_dir=None,
            columns=present,
            profile=profile,
            model=model,
        )
        clusters = con.sql(f"""
            SELECT record_key AS record_id, customer_id AS cluster_id, link_type, link_detail
            FROM {IDENTITY_MAP} ORDER BY TRY_CAST(record_key AS BIGINT), record_key
        """).to_arrow_table()
        matches = con.sql(f"""
            SELECT l.record_key AS record_id_l, r.record_key AS record_id_r,
                   m.match_weight, m.match_probability
            FROM {PAIRS} m JOIN {RECORDS} l ON l.uid = m.unique_id_l
            JOIN {RECORDS} r ON r.uid = m.unique_id_r
            WHERE m.match_probability >= {settings.match_threshold}
            ORDER BY m.match_weight DESC
        """).to_arrow_table()
    finally:
        con.close()
    if result.model is None:
        raise InputError("fewer than two records to resolve")
    return TableResolution(
        clusters=clusters,
        matches=matches,
        model=result.model,
        profile=profile,
        choices=result.choices,
        figures=result.figures,
    )


def _configured_model(configuration: str | Path | Mapping[str, Any] | None) -> MatchModel | None:
    if configuration is None:
        return None
    if isinstance(configuration, Mapping):
        settings = dict(configuration)
    else:
        path = Path(configuration)
        try:
            settings = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable Splink JSON file ({error})") from error
    return MatchModel(settings)


def _mapped(column: str, mapping: Mapping[str, str]) -> bool:
    roles = {_ROLE_COLUMNS.get(role, role) for role in mapping}
    if "full_name" in mapping:
        roles |= {"first_name", "last_name"}
    if set(_DATE_PARTS) <= roles:
        roles.add("date_of_birth")
    return column in roles


def _safe_name(column: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", column.lower()).strip("_") or "column"
    return name if _IDENTIFIER.fullmatch(name) else f"c_{name}"


def _check(
    table: pa.Table,
    mapping: Mapping[str, str],
    id_column: str | None,
    extra_columns: Sequence[str],
) -> dict[str, str]:
    """Check the mapping against the table; returns extra columns by their record name."""
    unknown = sorted(set(mapping) - set(ROLES))
    if unknown:
        raise InputError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    parts = [r for r in _DATE_PARTS if r in mapping]
    if parts and len(parts) < len(_DATE_PARTS):
        missing = [r for r in _DATE_PARTS if r not in mapping]
        raise InputError(f"{', '.join(parts)} mapped without {', '.join(missing)}")
    if parts and "date_of_birth" in mapping:
        raise InputError("map either date_of_birth or birth_year/birth_month/birth_day")
    wanted = [*mapping.values(), *extra_columns, *([id_column] if id_column else [])]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise InputError(
            f"column {missing[0]!r} is not in the table; it has {', '.join(table.column_names)}"
        )
    if not mapping and not extra_columns:
        raise InputError("map at least one column to a role (or name an extra column)")
    if table.num_rows == 0:
        raise InputError("the table is empty")
    extras: dict[str, str] = {}
    for column in extra_columns:
        name = _safe_name(column)
        if name in _RESERVED or name in extras or name in MATCH_COLUMNS:
            raise InputError(
                f"extra column {column!r} clashes with a role or another column ({name!r}); "
                "map it to its role instead, or rename it"
            )
        extras[name] = column
    return extras


def _read_dates(
    table: pa.Table, mapping: Mapping[str, str], *, month_first: bool
) -> dict[str, DateReading]:
    def text(column: str) -> list[str | None]:
        return [None if v is None else str(v) for v in table.column(column).to_pylist()]

    if "date_of_birth" in mapping:
        return {
            "date_of_birth": read_dates(text(mapping["date_of_birth"]), month_first=month_first)
        }
    if all(r in mapping for r in _DATE_PARTS):
        return {"date_of_birth": from_parts(*(text(mapping[r]) for r in _DATE_PARTS))}
    return {}


def _raw_select(
    mapping: Mapping[str, str], id_column: str | None, extras: Mapping[str, str], *, dates: bool
) -> str:
    def col(role: str) -> str:
        name = mapping.get(role)
        return "NULL::VARCHAR" if name is None else f"CAST({_quote(name)} AS VARCHAR)"

    key = f"CAST({_quote(id_column)} AS VARCHAR)" if id_column else "CAST(i.__row AS VARCHAR)"
    values = {
        "source": "'input'",
        "record_key": key,
        "seen_at": "NULL::TIMESTAMP",
        "email": col("email"),
        "phone": col("phone"),
        "first_name": col("first_name"),
        "last_name": col("surname"),
        "full_name": col("full_name"),
        "address": col("address"),
        "city": col("city"),
        "postcode": col("postcode"),
        "date_of_birth": "d.iso" if dates else "NULL::VARCHAR",
        "is_person": "TRUE",
    }
    columns = [c.strip() for c in RAW_COLUMNS.split(",")]
    select = [f"{values.get(c, 'NULL::' + RECORD_ROLES.get(c, 'VARCHAR'))} AS {c}" for c in columns]
    select += [
        f"CAST({_quote(original)} AS VARCHAR) AS {name}" for name, original in extras.items()
    ]
    numbered = "(SELECT *, row_number() OVER () - 1 AS __row FROM res_input)"
    dated = "(SELECT *, row_number() OVER () - 1 AS __row FROM res_dates)"
    join = f" JOIN {dated} d USING (__row)" if dates else ""
    return f"SELECT {', '.join(select)} FROM {numbered} i{join} ORDER BY i.__row"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_unique(con: duckdb.DuckDBPyConnection, id_column: str | None) -> None:
    duplicates = con.execute(
        "SELECT record_key FROM res_raw_input GROUP BY 1 HAVING count(*) > 1 LIMIT 3"
    ).fetchall()
    if duplicates:
        keys = ", ".join(repr(k) for (k,) in duplicates)
        raise InputError(f"id column {id_column!r} is not unique (e.g. {keys})")
    nulls = con.execute("SELECT count(*) FROM res_raw_input WHERE record_key IS NULL").fetchall()
    if nulls[0][0]:
        raise InputError(f"id column {id_column!r} has {nulls[0][0]:,} empty values")


def _profile(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    mapping: Mapping[str, str],
    extras: Mapping[str, str],
    readings: Mapping[str, DateReading],
) -> TableProfile:
    """The profile of the normalized records, each column named after its input column."""
    sources = {_ROLE_COLUMNS.get(role, role): column for role, column in mapping.items()}
    if "full_name" in mapping:
        sources.setdefault("first_name", mapping["full_name"])
        sources.setdefault("last_name", mapping["full_name"])
    if all(r in mapping for r in _DATE_PARTS):
        sources["date_of_birth"] = "/".join(mapping[r] for r in _DATE_PARTS)
    sources |= dict(extras)
    records = con.sql(
        f"SELECT {', '.join(f'CAST({c} AS VARCHAR) AS {c}' for c in columns)} FROM {RECORDS}"
    ).to_arrow_table()
    direct = [
        c for c in columns if c != "date_of_birth" and sources.get(c) != mapping.get("full_name")
    ]
    filled = [f"count(nullif(trim({c}), ''))" for c in direct] or ["1"]
    counts = con.execute(f"SELECT {', '.join(filled)} FROM res_raw_input").fetchall()[0]
    filled_raw = dict(zip(direct, counts, strict=False))
    return profile_columns(
        records,
        kinds={c: ROLE_KINDS.get(c) if c in MATCH_COLUMNS else None for c in columns},
        sources=sources,
        readings=readings,
        filled_in_input=filled_raw,
    )
