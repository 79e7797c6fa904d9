"""Resolution of any person table, given which of its columns play which role.

Real users bring their own CRM export, not our sources' schema. `resolve_table`
takes a table and a mapping of roles to its columns, e.g.

    resolve_file(Path("crm.csv"), mapping={"first_name": "Vorname", "surname": "Nachname",
                 "email": "E-Mail", "date_of_birth": "dob"}, id_column="id",
                 settings=ResolutionSettings())

and returns one row per input record: `record_id`, `cluster_id`, `link_type`,
`link_detail`. Roles: `first_name`, `surname`, `full_name` (split into first
and last when those are not mapped), `email`, `phone`, `date_of_birth`,
`address`, `city`, `postcode`; `extra_columns` are compared exactly. Emails and
phones link deterministically (guarded against explosion); everything is then
matched by a Splink model trained on the table itself (or loaded from
`model_dir` when one is saved there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from resolution.clusters import IDENTITY_MAP
from resolution.model import MATCH_COLUMNS
from resolution.records import RAW_COLUMNS, RECORDS, normalize_table
from resolution.resolver import ResolutionResult, link_records
from resolution.settings import ResolutionSettings

__all__ = ["ROLES", "read_table", "resolve_file", "resolve_table"]

ROLES = (
    "first_name",
    "surname",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "address",
    "city",
    "postcode",
)
_ROLE_TO_COLUMN = {"surname": "last_name"}


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as an Arrow table (every CSV column read as text)."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix in (".csv", ".tsv", ".txt"):
        head = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
        types = dict.fromkeys(head.column_names, pa.string())
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def resolve_file(
    path: Path,
    *,
    mapping: Mapping[str, str],
    settings: ResolutionSettings,
    id_column: str | None = None,
    extra_columns: Sequence[str] = (),
    model_dir: Path | None = None,
) -> tuple[pa.Table, ResolutionResult]:
    """`resolve_table` on a CSV or Parquet file."""
    return resolve_table(
        read_table(path),
        mapping=mapping,
        settings=settings,
        id_column=id_column,
        extra_columns=extra_columns,
        model_dir=model_dir,
    )


def resolve_table(
    table: pa.Table,
    *,
    mapping: Mapping[str, str],
    settings: ResolutionSettings,
    id_column: str | None = None,
    extra_columns: Sequence[str] = (),
    model_dir: Path | None = None,
) -> tuple[pa.Table, ResolutionResult]:
    """Cluster the records of `table`; returns the record-to-cluster assignment and figures."""
    _check_mapping(table, mapping, id_column, extra_columns)
    con = duckdb.connect()
    try:
        con.register("res_input", table)
        con.execute(
            f"CREATE TEMP TABLE res_raw_input AS {_raw_select(mapping, id_column, extra_columns)}"
        )
        duplicates = con.execute(
            "SELECT record_key, count(*) FROM res_raw_input GROUP BY 1 HAVING count(*) > 1 LIMIT 3"
        ).fetchall()
        if duplicates:
            keys = ", ".join(repr(k) for k, _ in duplicates)
            raise ValueError(f"id column {id_column!r} is not unique (e.g. {keys})")
        extras = [_extra_name(c) for c in extra_columns]
        normalize_table(
            con,
            "res_raw_input",
            RECORDS,
            phone_region=settings.default_phone_region,
            extra_columns=extras,
        )
        present = [c for c in MATCH_COLUMNS if _mapped(c, mapping)] + extras
        result = link_records(con, settings=settings, model_dir=model_dir, columns=present)
        assignment = con.sql(f"""
            SELECT record_key AS record_id, customer_id AS cluster_id, link_type, link_detail
            FROM {IDENTITY_MAP} ORDER BY TRY_CAST(record_key AS BIGINT), record_key
        """).to_arrow_table()
    finally:
        con.close()
    return assignment, result


def _mapped(column: str, mapping: Mapping[str, str]) -> bool:
    roles = {_ROLE_TO_COLUMN.get(role, role) for role in mapping}
    if "full_name" in mapping:
        roles |= {"first_name", "last_name"}
    return column in roles


def _extra_name(column: str) -> str:
    return "extra_" + "".join(ch if ch.isalnum() else "_" for ch in column.lower())


def _check_mapping(
    table: pa.Table,
    mapping: Mapping[str, str],
    id_column: str | None,
    extra_columns: Sequence[str],
) -> None:
    unknown = set(mapping) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {', '.join(ROLES)}")
    wanted = [*mapping.values(), *extra_columns, *([id_column] if id_column else [])]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise ValueError(
            f"columns {missing} are not in the table; it has {', '.join(table.column_names)}"
        )
    if not mapping and not extra_columns:
        raise ValueError("map at least one column to a role")


def _raw_select(
    mapping: Mapping[str, str], id_column: str | None, extra_columns: Sequence[str]
) -> str:
    def col(role: str) -> str:
        name = mapping.get(role)
        if name is None:
            return "NULL::VARCHAR"
        return 'CAST("' + name.replace('"', '""') + '" AS VARCHAR)'

    key = (
        f'CAST("{id_column}" AS VARCHAR)' if id_column else "CAST(row_number() OVER () AS VARCHAR)"
    )
    dob = f"TRY_CAST({col('date_of_birth')} AS DATE)"
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
        "date_of_birth": dob,
        "is_person": "TRUE",
    }
    columns = [c.strip() for c in RAW_COLUMNS.split(",")]
    select = [
        f"{values.get(c, 'NULL::BOOLEAN' if c.startswith('consent') else 'NULL::VARCHAR')} AS {c}"
        for c in columns
    ]
    extras = [f'CAST("{c}" AS VARCHAR) AS {_extra_name(c)}' for c in extra_columns]
    return f"SELECT {', '.join(select + extras)} FROM res_input"
