"""The privacy flows: forget people everywhere (GDPR art. 17, 152-FZ), and show what is held
about one (art. 15).

`forget` takes identifiers (e-mail, phone, user id, customer id), finds every customer
they name through resolution (`customer_identifiers`), and every record of theirs
(`identity_map`), then, as one request:

1. adds salted hashes of their identifiers to the suppression list
   (`warehouse.suppression`): loaders and the collector drop them from then on, even for
   an identifier that matched no one;
2. loads what the collector's log still holds, so that it is erased with the rest;
3. deletes them from every warehouse table (`warehouse.erasure`), rewrites the lake's
   copy of the raw tables from it where there is one (`warehouse.lake`: the partitions
   that held their rows) and compacts the file;
4. rewrites every other file of the data folder and of the lake that names them
   (`warehouse.scrub`): source files, exports, feature Parquet, resolution term tables,
   MLflow artifacts, logs, Spark's leftover scratch tables;
5. deletes them from the Feast online store (`features.erasure`);
6. writes the marketers' report again, and appends the audit log (hashes and counts only).

The plan is written first to `privacy/pending/<request>.json` and each step is marked in
it when done; any failure leaves it there, the request is reported `pending` (never
done), and the next call of `forget` replays it before anything else. The plan holds the
identifiers themselves (the files cannot be searched without them) and is deleted when
the request is done.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

import warehouse
from features.erasure import erase_online
from pipelines.config import Settings
from pipelines.engines import lake_folder
from pipelines.flows import collect, report
from pipelines.flows.progress import Progress, silent
from resolution import normalize
from segments import journeys
from segments.hashing import ad_email, ad_phone, sha256_hex
from warehouse.erasure import Erasure, compact, erase_people
from warehouse.lake import RAW, sync
from warehouse.scrub import Tokens, scrub_file
from warehouse.sources import SOURCES
from warehouse.suppression import Suppression, canonical, privacy_dir
from warehouse.tables import CUSTOMER_IDENTIFIERS, IDENTITY_MAP, PROFILES, table_names

__all__ = [
    "KINDS",
    "STEPS",
    "ForgetOutcome",
    "Identifier",
    "customers_named",
    "forget",
    "read_identifiers",
]

Kind = Literal["email", "phone", "user_id", "customer_id"]
KINDS: tuple[Kind, ...] = ("email", "phone", "user_id", "customer_id")
STEPS = (
    "suppress",
    "collector",
    "warehouse",
    "lake",
    "compact",
    "files",
    "online store",
    "report",
)
_BUSY_TRIES = 10
_RAW_ROLES = ("email", "phone", "user_id", "anonymous_id", "contact_id")


@dataclass(frozen=True)
class Identifier:
    """One identifier a request names a person by."""

    kind: Kind
    value: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown identifier kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        value = str(self.value).strip()
        if not value:
            raise ValueError(f"an empty {self.kind} names no one")
        if self.kind == "email" and "@" not in value:
            raise ValueError("an email must contain @")
        if self.kind == "phone" and canonical("phone", value) is None:
            raise ValueError("a phone number needs at least 7 digits")


@dataclass
class ForgetOutcome:
    """What one `forget` call did."""

    request_id: str
    status: Literal["done", "pending"]
    customers: int = 0
    unmatched: list[str] = field(default_factory=list)
    """Identifiers (masked) that named no one: suppressed all the same."""
    rows_erased: dict[str, int] = field(default_factory=dict)
    files_rewritten: int = 0
    replayed: list[str] = field(default_factory=list)
    """Earlier requests left pending and completed by this call."""
    error: str | None = None

    @property
    def figures(self) -> dict[str, object]:
        return {
            "request": self.request_id,
            "status": self.status,
            "customers erased": self.customers,
            "identifiers matching no one (suppressed)": len(self.unmatched),
            "warehouse rows erased": sum(self.rows_erased.values()),
            "files rewritten": self.files_rewritten,
            "pending requests completed": len(self.replayed),
        }


def read_identifiers(path: Path) -> list[Identifier]:
    """Identifiers from a CSV file with a header naming kinds (`email`, `phone`,
    `user_id`, `customer_id`): each non-blank cell is one identifier."""
    import csv

    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        unknown = set(reader.fieldnames or ()) - set(KINDS)
        if not reader.fieldnames or unknown:
            raise ValueError(
                f"{path}: the header must name identifier kinds ({', '.join(KINDS)}); "
                f"found {sorted(unknown) or 'no header'}"
            )
        return [
            Identifier(kind, value.strip())  # type: ignore[arg-type]
            for row in reader
            for kind, value in row.items()
            if value and value.strip()
        ]


def _mask(identifier: Identifier) -> str:
    value = identifier.value.strip()
    shown = value.split("@")[-1] if identifier.kind == "email" else value[-2:]
    return f"{identifier.kind} …{shown}"


# -- finding people ---------------------------------------------------------------------


def customers_named(
    con: duckdb.DuckDBPyConnection, identifiers: Sequence[Identifier], *, region: str
) -> dict[Identifier, set[str]]:
    """The customers each identifier names, through resolution's `customer_identifiers`
    (read normalized, as resolution wrote them)."""
    present = table_names(con)
    found: dict[Identifier, set[str]] = {}
    for identifier in identifiers:
        if identifier.kind == "customer_id":
            table, sql = PROFILES, f"SELECT customer_id FROM {PROFILES} WHERE customer_id = ?"
            key: str | None = identifier.value.strip()
        else:
            table = CUSTOMER_IDENTIFIERS
            sql = (
                f"SELECT customer_id FROM {CUSTOMER_IDENTIFIERS} "
                f"WHERE id_type = '{identifier.kind}' AND id_value = ?"
            )
            key = {
                "email": normalize.email,
                "phone": lambda v: normalize.phone(v, region),
                "user_id": lambda v: v.strip() or None,
            }[identifier.kind](identifier.value)
        rows = con.execute(sql, [key]).fetchall() if table in present and key else []
        found[identifier] = {c for (c,) in rows}
    return found


def _find(
    con: duckdb.DuckDBPyConnection, identifiers: Sequence[Identifier], *, region: str
) -> tuple[dict[Identifier, set[str]], dict]:
    """The customers each identifier names, and the plan to erase them all."""
    present = table_names(con)
    found = customers_named(con, identifiers, region=region)
    customers = sorted(set().union(*found.values()))
    records: list[tuple[str, str]] = []
    if customers and IDENTITY_MAP in present:
        con.register("_forget_ids", pa.table({"customer_id": pa.array(customers, pa.string())}))
        records = con.execute(
            f"SELECT source, record_key FROM {IDENTITY_MAP} "
            "WHERE customer_id IN (SELECT customer_id FROM _forget_ids) ORDER BY ALL"
        ).fetchall()
        con.unregister("_forget_ids")
    raw = _raw_values(con, records, present)
    requested = [(i.kind, i.value) for i in identifiers if i.kind != "customer_id"]
    emails = {v for k, v in [*requested, *raw] if k == "email"}
    phones = {v for k, v in [*requested, *raw] if k == "phone"}
    hashed = {sha256_hex(e) for e in filter(None, map(ad_email, emails))}
    for platform in ("google", "meta"):
        for p in phones:
            if e164 := ad_phone(p, region=region, platform=platform):
                hashed.add(sha256_hex(e164))
    suppress = {
        (k, c)
        for k, v in [*requested, *raw]
        if k in ("email", "phone", "user_id") and (c := canonical(k, v))
    }
    plan = {
        "customer_ids": customers,
        "records": [list(r) for r in records],
        # raw rows are also deleted by what the request itself names (unresolved records)
        "identifiers": sorted(
            [k, c]
            for k, v in requested
            if (c := canonical(k, v))  # type: ignore[arg-type]
        ),
        "suppress": sorted([k, c] for k, c in suppress),
        "values": sorted(
            {*customers, *(k for _, k in records), *emails, *(v for _, v in requested)}
            | {normalize.email(e) or "" for e in emails}
            | hashed
        ),
        "texts": sorted(
            {v for k, v in [*requested, *raw] if k in ("email", "phone", "name")} - {""}
        ),
    }
    return found, plan


def _raw_values(
    con: duckdb.DuckDBPyConnection, records: Sequence[tuple[str, str]], present: set[str]
) -> list[tuple[str, str]]:
    """(role, raw value) of the identifiers and full names in the records, as written."""
    values: list[tuple[str, str]] = []
    by_source: dict[str, list[str]] = {}
    for source, key in records:
        by_source.setdefault(source, []).append(key)
    for name, keys in by_source.items():
        source = SOURCES.get(name)
        if source is None or source.table not in present:
            continue
        roles = [r for r in _RAW_ROLES if r in source.records]
        names = [source.records[r] for r in ("first_name", "last_name") if r in source.records]
        full = source.records.get("full_name")
        selects = [f"CAST(({source.records[r]}) AS VARCHAR)" for r in roles]
        if len(names) == 2:
            selects.append(f"concat_ws(' ', {names[0]}, {names[1]})")
        if full:
            selects.append(f"CAST(({full}) AS VARCHAR)")
        if not selects:
            continue
        con.register("_forget_keys", pa.table({"k": pa.array(keys, pa.string())}))
        rows = con.execute(
            f"SELECT {', '.join(selects)} FROM {source.table} "
            f'WHERE CAST("{source.key}" AS VARCHAR) IN (SELECT k FROM _forget_keys)'
        ).fetchall()
        con.unregister("_forget_keys")
        kinds = [*roles] + ["name"] * (len(selects) - len(roles))
        values += [
            (k, v.strip())
            for row in rows
            for k, v in zip(kinds, row, strict=True)
            if v and v.strip()
        ]
    return values


# -- the steps --------------------------------------------------------------------------


def _files(settings: Settings) -> list[Path]:
    """Every file of the data folder and of the lake that `scrub_file` looks at (not the
    lake's raw tables: the lake step rewrote them from the warehouse)."""
    paths = settings.paths
    skipped = {
        paths.warehouse,
        paths.warehouse.with_name(paths.warehouse.name + ".wal"),
        paths.feast / "online.db",
    }
    kept_out = [privacy_dir(paths.warehouse)]
    roots = [settings.data_dir]
    lake = lake_folder(settings)
    if lake is not None:
        kept_out.append(lake / RAW)
        if settings.data_dir.resolve() not in lake.resolve().parents:
            roots.append(lake)
    return sorted(
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_file()
        and p not in skipped
        and not any(folder in p.parents for folder in kept_out)
        and not p.name.endswith((".lock", ".compact"))
    )


def _steps(settings: Settings, plan: dict) -> dict[str, Callable[[], dict]]:
    erasure = Erasure(
        customer_ids=frozenset(plan["customer_ids"]),
        records=frozenset(tuple(r) for r in plan["records"]),
        identifiers=frozenset(tuple(i) for i in plan["identifiers"]),
    )
    tokens = Tokens.of(values=plan["values"], texts=plan["texts"])
    customers = plan["customer_ids"]

    def suppress() -> dict:
        folder = privacy_dir(settings.paths.warehouse)
        Suppression.open(folder).add((k, v) for k, v in plan["suppress"])
        return {}

    def collector() -> dict:
        for _ in range(_BUSY_TRIES):  # a running collector holds the warehouse briefly
            if not collect.run(settings).busy:
                return {}
            time.sleep(1)
        raise RuntimeError("the warehouse is busy: the collector log could not be loaded")

    def erase() -> dict:
        with warehouse.connect(settings.paths.warehouse) as con:
            journey_rows = journeys.erase_customers(con, customer_ids=customers)
            rows = erase_people(con, erasure=erasure)
        return {"rows_erased": rows | {"journeys": journey_rows}}

    def lake() -> dict:
        folder = lake_folder(settings)
        if folder is None or not (folder / RAW).is_dir():
            return {}
        with warehouse.connect(settings.paths.warehouse) as con:
            synced = sync(con, lake=folder)
        return {"lake_partitions_rewritten": sum(synced.written.values())}

    def compaction() -> dict:
        compact(settings.paths.warehouse)
        return {}

    def files() -> dict:
        rewritten, residue = 0, []
        for path in _files(settings):
            result = scrub_file(path, tokens=tokens)
            rewritten += bool(result.removed)
            if result.residue:
                residue.append(str(path.relative_to(settings.data_dir)))
        if residue:
            raise RuntimeError(f"files that cannot be rewritten name the person: {residue}")
        return {"files_rewritten": rewritten}

    def online() -> dict:
        online_db = settings.paths.feast / "online.db"
        return {"online_rows_erased": erase_online(online_db=online_db, customer_ids=customers)}

    def rewrite_report() -> dict:
        if (settings.paths.exports / settings.segments.report_file).exists():
            report.write(settings)
        return {}

    return dict(
        zip(
            STEPS,
            (suppress, collector, erase, lake, compaction, files, online, rewrite_report),
            strict=True,
        )
    )


# -- requests ---------------------------------------------------------------------------


def _pending_dir(settings: Settings) -> Path:
    return privacy_dir(settings.paths.warehouse) / "pending"


def _save(path: Path, record: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, path)


def _run_request(settings: Settings, path: Path, progress: Progress) -> dict:
    """Carry out the steps of the pending request at `path` not yet done; delete it and
    append the audit log when all are. Raises when a step fails (the request stays)."""
    record = json.loads(path.read_text())
    steps = _steps(settings, record["plan"])
    for i, name in enumerate(STEPS):
        if name in record["done"]:
            continue
        progress(f"forgetting: {name}", done=i, total=len(STEPS))
        for key, value in steps[name]().items():
            record["result"][key] = value
        record["done"].append(name)
        _save(path, record)
    progress("forgetting: done", done=len(STEPS), total=len(STEPS))
    audit = {
        "request_id": record["request_id"],
        "requested_at": record["requested_at"],
        "completed_at": datetime.now(UTC).isoformat(),
        "identifiers": record["hashes"],
        "customers_erased": len(record["plan"]["customer_ids"]),
        "records_erased": len(record["plan"]["records"]),
        **record["result"],
    }
    with (privacy_dir(settings.paths.warehouse) / "audit.jsonl").open("a") as handle:
        handle.write(json.dumps(audit) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
    return record["result"]


def forget(
    settings: Settings,
    *,
    identifiers: Sequence[Identifier],
    progress: Progress = silent,
) -> ForgetOutcome:
    """Forget everyone the identifiers name (see the module docstring); pending requests
    left by an earlier failure are completed first."""
    pending = _pending_dir(settings)
    pending.mkdir(parents=True, exist_ok=True)
    request_id = uuid.uuid4().hex[:16]
    replayed = []
    for path in sorted(pending.glob("*.json")):
        try:
            _run_request(settings, path, progress)
        except Exception as error:  # still pending: nothing new starts before it is done
            message = (
                f"earlier request {path.stem} is still pending: {type(error).__name__}: {error}"
            )
            return ForgetOutcome(request_id, "pending", replayed=replayed, error=message)
        replayed.append(path.stem)
    if not identifiers:
        return ForgetOutcome(request_id, "done", replayed=replayed)
    progress("finding the people", done=0, total=len(STEPS))
    with warehouse.connect(settings.paths.warehouse) as con:
        found, plan = _find(con, identifiers, region=settings.resolution.default_phone_region)
    suppression = Suppression.open(privacy_dir(settings.paths.warehouse))
    record = {
        "request_id": request_id,
        "requested_at": datetime.now(UTC).isoformat(),
        "hashes": sorted(
            {suppression.digest(i.kind, i.value.strip().lower()) for i in identifiers}
        ),
        "plan": plan,
        "done": [],
        "result": {},
    }
    path = pending / f"{request_id}.json"
    _save(path, record)
    outcome = ForgetOutcome(
        request_id,
        "pending",
        customers=len(plan["customer_ids"]),
        unmatched=[_mask(i) for i, ids in found.items() if not ids],
        replayed=replayed,
    )
    try:
        result = _run_request(settings, path, progress)
    except Exception as error:  # the request stays pending: the next call replays it
        outcome.error = f"{type(error).__name__}: {error}"
        return outcome
    outcome.status = "done"
    outcome.rows_erased = result.get("rows_erased", {})
    outcome.files_rewritten = result.get("files_rewritten", 0)
    return outcome
