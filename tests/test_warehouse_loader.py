"""The file and row-batch loaders on a real DuckDB file: formats, quarantine, idempotency."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import warehouse

CRM_HEADER = "contact_id,first_name,email,date_of_birth,consent_email,created_at"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = warehouse.connect(tmp_path / "wh" / "warehouse.duckdb")
    yield connection
    connection.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def quarantine(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, dict | str]]:
    found = rows(con, "SELECT row_number, reason, row FROM quarantine ORDER BY row_number")
    return {n: (reason, json.loads(row)) for n, reason, row in found}


def reconciles(report: warehouse.LoadReport) -> bool:
    return report.rows_read == (
        report.rows_loaded + report.rows_duplicate + report.rows_quarantined
    )


def test_connect_creates_every_table_with_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "warehouse.duckdb"
    con = warehouse.connect(path)
    tables = {name for (name,) in rows(con, "SELECT table_name FROM duckdb_tables()")}
    assert {s.table for s in warehouse.SOURCES.values()} | {"quarantine", "load_log"} <= tables
    types = dict(
        rows(
            con,
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'raw_orders'",
        )
    )
    assert types["amount"] == "DOUBLE" and types["items"] == "JSON"
    assert types["_loaded_at"] == "TIMESTAMP" and types["_row_number"] == "BIGINT"
    con.close()
    warehouse.connect(path).close()  # idempotent
    reader = warehouse.connect(path, read_only=True)
    assert rows(reader, "SELECT count(*) FROM raw_events") == [(0,)]
    reader.close()
    with pytest.raises(FileNotFoundError, match="cip load"):
        warehouse.connect(tmp_path / "missing.duckdb", read_only=True)


def test_csv_loads_with_types_lineage_and_utc_timestamps(con, tmp_path: Path) -> None:
    path = write(
        tmp_path / "crm_contacts.csv",
        f"{CRM_HEADER}\n"
        "C1,Ann,ann@example.com,1990-01-02,true,2024-01-01T10:00:00Z\n"
        "C2,Bob,,,no,2024-01-01 11:00:00+03:00\n",
    )
    report = warehouse.load_file(con, path=path)
    assert (report.source, report.rows_read, report.rows_loaded) == ("crm_contacts", 2, 2)
    assert report.ignored_columns == [] and not report.skipped
    loaded = rows(
        con,
        "SELECT contact_id, email, date_of_birth, consent_email, created_at, "
        "_source, _file, _row_number, _loaded_at FROM raw_crm_contacts ORDER BY contact_id",
    )
    assert loaded[0][:5] == (
        "C1",
        "ann@example.com",
        date(1990, 1, 2),
        True,
        datetime(2024, 1, 1, 10),
    )
    # an empty field is NULL; an offset is converted to UTC
    assert loaded[1][:5] == ("C2", None, None, False, datetime(2024, 1, 1, 8))
    assert [r[5:8] for r in loaded] == [
        ("crm_contacts", str(path.resolve()), 1),
        ("crm_contacts", str(path.resolve()), 2),
    ]
    assert all(isinstance(r[8], datetime) for r in loaded)


def test_parquet_loads_native_types_and_reports_ignored_columns(con, tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    items = [{"sku": "A", "category": "shoes", "quantity": 1, "unit_price": 10.0}]
    pq.write_table(
        pa.table(
            {
                "order_id": ["O1", "O2", "O3"],
                "channel": ["online", "store", "store"],
                "user_id": ["U1", None, None],
                "loyalty_phone": [None, "+7 912 345-67-89", None],
                "ordered_at": pa.array([datetime(2024, 3, 1, 9), datetime(2024, 3, 2), None]),
                "amount": [10.0, 25.5, 3.0],
                "items": [json.dumps(items), "[]", "not json"],
                "coupon": ["X", None, None],
                "_row_number": [7, 8, 9],  # named like lineage: ignored, never trusted
            }
        ),
        path,
    )
    report = warehouse.load_file(con, path=path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (3, 2, 1)
    assert report.ignored_columns == ["coupon", "_row_number"]
    assert rows(
        con,
        "SELECT order_id, ordered_at, amount, items->'$[0].sku' FROM raw_orders ORDER BY order_id",
    ) == [
        ("O1", datetime(2024, 3, 1, 9), 10.0, '"A"'),
        ("O2", datetime(2024, 3, 2), 25.5, None),
    ]
    (reason, row) = quarantine(con)[3]
    assert "missing required field ordered_at" in reason
    assert "column items: 'not json' is not a valid JSON" in reason
    assert row["order_id"] == "O3" and row["coupon"] is None
    assert rows(con, "SELECT _row_number FROM raw_orders ORDER BY 1") == [(1,), (2,)]


def test_jsonl_of_plain_records_and_gzip(con, tmp_path: Path) -> None:
    lines = [
        {
            "email_event_id": "E1",
            "email": "a@example.com",
            "event_type": "open",
            "occurred_at": "2024-05-01T08:00:00Z",
            "campaign_id": 7,
        },
        {
            "email_event_id": "E2",
            "email": "b@example.com",
            "event_type": "click",
            "occurred_at": "2024-05-01T09:00:00Z",
            "device": "mobile",
        },
    ]
    path = tmp_path / "email_events.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(json.dumps(line) for line in lines) + "\n")
    report = warehouse.load_file(con, path=path)
    assert (report.source, report.rows_loaded, report.ignored_columns) == (
        "email_events",
        2,
        ["device"],
    )
    assert rows(
        con, "SELECT email_event_id, campaign_id, occurred_at FROM raw_email_events ORDER BY 1"
    ) == [
        ("E1", "7", datetime(2024, 5, 1, 8)),
        ("E2", None, datetime(2024, 5, 1, 9)),
    ]


def test_every_kind_of_violation_is_quarantined_with_reason_row_and_number(
    con, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "crm_contacts.csv",
        f"{CRM_HEADER},note\n"
        "C1,Ann,a@example.com,1990-01-02,true,2024-01-01,ok\n"  # 1 good
        "C2,Bob,b@example.com,1990-13-45,maybe,2024-01-01,x\n"  # 2 bad date and boolean
        "C3,Cy,c@example.com,,,,x\n"  # 3 missing created_at
        ",Di,d@example.com,,,2024-01-01,x\n"  # 4 missing key
        "C1,Ann again,a2@example.com,,,2024-01-02,x\n"  # 5 duplicate key in the file
        "C5,Too,many,fields,here,2024-01-01,x,y\n"  # 6 cannot be parsed
        "C6,Eve,e@example.com,,,2024-01-03,x\n",  # 7 good: row numbers survive the reject
    )
    report = warehouse.load_file(con, path=path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (7, 2, 5)
    assert reconciles(report) and report.ignored_columns == ["note"]
    assert rows(con, "SELECT contact_id, _row_number FROM raw_crm_contacts ORDER BY 2") == [
        ("C1", 1),
        ("C6", 7),
    ]
    bad = quarantine(con)
    assert sorted(bad) == [2, 3, 4, 5, 6]
    assert bad[2][0] == (
        "column date_of_birth: '1990-13-45' is not a valid DATE; "
        "column consent_email: 'maybe' is not a valid BOOLEAN"
    )
    assert bad[2][1]["date_of_birth"] == "1990-13-45" and bad[2][1]["note"] == "x"
    assert bad[3][0] == "missing required field created_at"
    assert bad[4][0] == "missing required field contact_id"
    assert bad[5][0] == "duplicate key contact_id C1 (first at row 1)"
    assert bad[5][1]["first_name"] == "Ann again"
    assert bad[6][0].startswith("cannot parse line 7: ")
    assert bad[6][1] == "C5,Too,many,fields,here,2024-01-01,x,y"
    meta = rows(con, "SELECT DISTINCT source, file FROM quarantine")
    assert meta == [("crm_contacts", str(path.resolve()))]


def test_row_numbers_stay_exact_around_lines_the_csv_parser_rejects(con, tmp_path: Path) -> None:
    path = write(
        tmp_path / "accounts.csv",
        "user_id,email,signup_at\n"
        "U1,a@example.com,2024-01-01\n"
        "U2,extra,field,here\n"
        "U3\n"
        "U4,d@example.com,2024-01-04\n"
        "U5,e,f,g,h\n"
        "U6,f@example.com,2024-01-06\n",
    )
    report = warehouse.load_file(con, path=path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (6, 3, 3)
    loaded = rows(con, "SELECT user_id, _row_number FROM raw_accounts ORDER BY 2")
    assert loaded == [("U1", 1), ("U4", 4), ("U6", 6)]
    bad = quarantine(con)
    assert {n: row for n, (_, row) in bad.items()} == {
        2: "U2,extra,field,here",
        3: "U3",
        5: "U5,e,f,g,h",
    }
    assert all(reason.startswith(f"cannot parse line {n + 1}: ") for n, (reason, _) in bad.items())


def test_unparseable_jsonl_lines_are_quarantined_by_line_number(con, tmp_path: Path) -> None:
    good = {
        "messageId": "m1",
        "type": "track",
        "event": "Viewed",
        "anonymousId": "a1",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    path = write(
        tmp_path / "events.jsonl",
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                "",  # a blank line is no record, but keeps its line number
                "[1, 2]",
                json.dumps({**good, "messageId": "m2", "timestamp": "yesterday"}),
                json.dumps({**good, "messageId": "m3"}),
            ]
        )
        + "\n",
    )
    report = warehouse.load_file(con, path=path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (5, 2, 3)
    assert rows(con, "SELECT message_id, _row_number FROM raw_events ORDER BY 2") == [
        ("m1", 1),
        ("m3", 6),
    ]
    bad = quarantine(con)
    assert bad[2] == ("line is not valid JSON", "{not json")
    assert bad[4] == ("line is not a JSON object", [1, 2])
    assert bad[5][0] == "column timestamp: 'yesterday' is not a valid TIMESTAMP"
    assert bad[5][1]["messageId"] == "m2"


def test_reload_is_idempotent_and_overlapping_files_count_duplicates(con, tmp_path: Path) -> None:
    first = write(
        tmp_path / "accounts.csv",
        "user_id,email,signup_at\nU1,a@example.com,2024-01-01\nU2,b@example.com,2024-01-02\n",
    )
    assert warehouse.load_file(con, path=first).rows_loaded == 2
    again = warehouse.load_file(con, path=first)
    assert again.skipped and again.rows_read == again.rows_loaded == 0
    second = write(
        tmp_path / "accounts.2.csv",
        "user_id,email,signup_at\n"
        "U2,b@example.com,2024-01-02\nU3,c@example.com,2024-01-03\nU3,x,bad\n",
    )
    report = warehouse.load_file(con, path=second)
    assert (
        report.rows_read,
        report.rows_loaded,
        report.rows_duplicate,
        report.rows_quarantined,
    ) == (3, 1, 1, 1)
    assert rows(con, "SELECT user_id, count(*) FROM raw_accounts GROUP BY 1 ORDER BY 1") == [
        ("U1", 1),
        ("U2", 1),
        ("U3", 1),
    ]
    assert rows(con, "SELECT _file FROM raw_accounts WHERE user_id = 'U3'") == [
        (str(second.resolve()),)
    ]
    log = rows(
        con,
        "SELECT source, rows_read, rows_loaded, rows_duplicate, rows_quarantined, "
        "length(file_sha256) FROM load_log ORDER BY loaded_at",
    )
    assert log == [("accounts", 2, 2, 0, 0, 64), ("accounts", 3, 1, 1, 1, 64)]
    # counts reconcile with the tables themselves
    assert rows(con, "SELECT count(*) FROM raw_accounts") == [(3,)]
    assert rows(con, "SELECT count(*) FROM quarantine") == [(1,)]


def test_failed_load_leaves_nothing_behind(con, tmp_path: Path) -> None:
    path = write(
        tmp_path / "accounts.csv",
        "user_id,email,signup_at\nU1,a@x.org,2024-01-01\nU2,b@x.org,never\n",
    )
    # a load log that takes no entries: the load's last step fails, after its inserts
    con.execute("DROP TABLE load_log")
    con.execute("CREATE TABLE load_log (source VARCHAR, file_sha256 VARCHAR)")
    with pytest.raises(duckdb.BinderException):
        warehouse.load_file(con, path=path)
    assert rows(con, "SELECT count(*) FROM raw_accounts") == [(0,)]
    assert rows(con, "SELECT count(*) FROM quarantine") == [(0,)]
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE temporary") == [(0,)]


def test_directory_loads_every_source_file_and_rejects_unknown_names(con, tmp_path: Path) -> None:
    folder = tmp_path / "sources"
    folder.mkdir()
    write(folder / "accounts.csv", "user_id,email,signup_at\nU1,a@example.com,2024-01-01\n")
    write(
        folder / "support_tickets.csv",
        "ticket_id,email,topic,created_at\nT1,a@example.com,refund,2024-02-01\n",
    )
    write(folder / ".hidden", "ignored")
    reports = warehouse.load_directory(con, directory=folder)
    assert [(r.source, r.rows_loaded) for r in reports] == [("accounts", 1), ("support_tickets", 1)]
    write(folder / "newsletter.csv", "a\n1\n")
    with pytest.raises(
        ValueError,
        match=r"newsletter.csv: unknown source 'newsletter'; "
        r"known sources: crm_contacts, accounts",
    ):
        warehouse.load_directory(con, directory=folder)
    write(tmp_path / "accounts.xlsx", "x")
    with pytest.raises(ValueError, match="accounts.xlsx: unsupported file type"):
        warehouse.load_file(con, path=tmp_path / "accounts.xlsx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        warehouse.load_file(con, path=tmp_path / "orders.csv")
    empty = write(tmp_path / "orders.csv", "")
    assert warehouse.load_file(con, path=empty).rows_read == 0


def test_append_rows_validates_dedups_and_records_origin(con) -> None:
    batch = [
        {
            "message_id": "m1",
            "type": "track",
            "event": "Viewed",
            "anonymous_id": "a1",
            "timestamp": "2024-01-01T00:00:00Z",
            "properties": {"sku": "A"},
        },
        {
            "message_id": "m2",
            "type": "identify",
            "user_id": 42,
            "timestamp": datetime(2024, 1, 1, 0, 1),
        },
        {"message_id": "m3", "type": "track", "timestamp": "not a time"},
    ]
    report = warehouse.append_rows(
        con, source="events", rows=batch, origin="collector", sender="web"
    )
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (3, 2, 1)
    assert rows(
        con,
        "SELECT message_id, user_id, properties->>'$.sku', _source, _file, "
        "_row_number FROM raw_events ORDER BY 1",
    ) == [
        ("m1", None, "A", "web", "collector", 1),
        ("m2", "42", None, "web", "collector", 2),
    ]
    assert rows(con, "SELECT timestamp FROM raw_events WHERE message_id = 'm2'") == [
        (datetime(2024, 1, 1, 0, 1),)
    ]
    assert quarantine(con)[3][0] == "column timestamp: 'not a time' is not a valid TIMESTAMP"
    assert rows(con, "SELECT source, file FROM quarantine") == [("events", "collector")]
    # a retried batch adds nothing new; an Arrow table works the same way
    retry = pa.table(
        {
            "message_id": ["m1", "m4"],
            "type": ["track", "page"],
            "timestamp": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        }
    )
    report = warehouse.append_rows(con, source="events", rows=retry, origin="collector")
    assert (report.rows_loaded, report.rows_duplicate) == (1, 1) and reconciles(report)
    assert rows(con, "SELECT _source FROM raw_events WHERE message_id = 'm4'") == [("events",)]
    with pytest.raises(ValueError, match="unknown source 'web'"):
        warehouse.append_rows(con, source="web", rows=batch, origin="collector")


def test_a_batch_looks_its_keys_up_in_the_raw_table(con) -> None:
    """The raw tables' keys are indexed, and inside `index_lookups` a semi-join on a few
    hundred keys reads the table by index lookups (outside, DuckDB scans it): what a
    micro-batch's duplicate check and tie cost does not grow with the table."""
    con.execute(
        "INSERT INTO raw_events (message_id, type, timestamp, _source, _file, _row_number, "
        "_loaded_at) SELECT 'm' || range, 'page', now(), 'web', 'test', range, now() "
        "FROM range(300000)"
    )
    con.register("batch", pa.table({"id": [f"m{n}" for n in range(0, 300000, 1000)]}))
    lookup = "SELECT message_id FROM raw_events WHERE message_id IN (SELECT id FROM batch)"

    def plan() -> str:
        return con.execute(f"EXPLAIN ANALYZE {lookup}").fetchall()[0][1]

    assert "Index Scan" not in plan()
    with warehouse.database.index_lookups(con):
        assert "Index Scan" in plan()
        assert len(rows(con, lookup)) == 300
    assert "Index Scan" not in plan()  # the setting is back to DuckDB's


def test_connect_waits_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse.connect(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_FOR_A_SECOND, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="lock"):
            warehouse.connect(path, wait_seconds=0)  # the collector's "busy, try later"
        started = time.monotonic()
        con = warehouse.connect(path, wait_seconds=30)  # a stage waits for the holder
        assert 0 < time.monotonic() - started < 30
        assert con.execute("SELECT count(*) FROM raw_orders").fetchone() == (0,)
        con.close()
    finally:
        holder.wait(timeout=30)


_HOLD_FOR_A_SECOND = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(1.0)
con.close()
"""
