"""`cip load` and the load stage of `cip run`, on a real warehouse in a temp data folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import warehouse
from pipelines import flows
from pipelines.cli import app
from pipelines.config import Settings


def sources(settings: Settings) -> Path:
    folder = settings.paths.sources
    folder.mkdir(parents=True)
    (folder / "accounts.csv").write_text(
        "user_id,email,signup_at,plan\nU1,a@example.com,2024-01-01,pro\nU2,b@example.com,bad,\n"
    )
    (folder / "support_tickets.csv").write_text(
        "ticket_id,email,topic,created_at\nT1,a@example.com,refund,2024-02-01\n"
    )
    return folder


def invoke(settings: Settings, *args: str):
    env = {"CIP_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    return CliRunner().invoke(app, ["load", *args], env=env)


def test_cip_load_reports_counts_and_is_idempotent(settings: Settings) -> None:
    folder = sources(settings)
    first = invoke(settings)
    assert first.exit_code == 0, first.output
    assert "3 rows read = 2 loaded + 0 duplicate + 1 quarantined" in first.output
    assert "ignored columns: plan" in first.output
    second = invoke(settings, str(folder))
    assert second.exit_code == 0, second.output
    assert second.output.count("already loaded") == 2
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    assert con.execute("SELECT count(*) FROM raw_accounts").fetchall() == [(1,)]
    con.close()


def test_cip_load_one_file_as_a_named_source(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "export-2024-05.csv"
    path.write_text("user_id,email,signup_at\nU9,z@example.com,2024-05-01\n")
    result = invoke(settings, str(path), "--source", "accounts")
    assert result.exit_code == 0, result.output
    assert "1 rows read = 1 loaded" in result.output


def test_cip_load_explains_bad_input(settings: Settings, tmp_path: Path) -> None:
    unknown = invoke(settings, str(tmp_path / "nothing-here"))
    assert unknown.exit_code == 1 and "no such file or directory" in unknown.output
    (tmp_path / "newsletter.csv").write_text("a\n1\n")
    named = invoke(settings, str(tmp_path))
    assert named.exit_code == 1
    assert "unknown source 'newsletter'; known sources:" in named.output
    wrong = invoke(settings, str(tmp_path / "newsletter.csv"), "--source", "web")
    assert wrong.exit_code == 1 and "unknown source 'web'" in wrong.output


def test_stage_loads_the_sources_folder(settings: Settings) -> None:
    sources(settings)
    outcome = flows.load.run(settings)
    assert outcome.totals["rows loaded"] == 2 and not outcome.rejected
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    logged = con.execute("SELECT source, rows_loaded FROM load_log ORDER BY source").fetchall()
    assert logged == [("accounts", 1), ("support_tickets", 1)]
    con.close()


def test_an_order_export_loads_with_a_column_mapping_and_resolves_per_customer(
    settings: Settings, tmp_path: Path
) -> None:
    export = tmp_path / "shop-export.csv"
    export.write_text(
        "CustomerID,InvoiceDate,Total\n"
        "17850,12/1/2010 8:26,15.30\n"
        "17850,12/13/2010 9:02,22.00\n"
        "13047,12/2/2010 10:00,-4.50\n"  # a return: quarantined
        "13047,12/2/2010 10:00,7.00\n"
        "13047,12/2/2010 10:00,7.00\n"  # the same order twice: two orders
        "12583,not a date,9.99\n"
    )
    natural = invoke(settings, str(export), "--source", "orders")
    assert natural.exit_code == 1
    said = " ".join(natural.output.split())
    assert "all 6 rows were quarantined" in said
    assert "orders expects ordered_at, amount and a customer column (customer_id or" in said
    assert "--map" in said

    mapped = invoke(
        settings, str(export), "-s", "orders", "--map", "customer_id=CustomerID",
        "--map", "ordered_at=InvoiceDate", "--map", "amount=Total",
    )  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert "6 rows read = 4 loaded + 0 duplicate + 2 quarantined" in mapped.output
    again = invoke(settings, str(export), "-s", "orders", "-m", "customer_id=CustomerID")
    assert again.exit_code == 0 and "already loaded" in again.output
    con = warehouse.connect(settings.paths.warehouse)
    loaded = con.execute(
        "SELECT customer_id, strftime(ordered_at, '%Y-%m-%d %H:%M'), amount FROM raw_orders "
        "ORDER BY 2"
    ).fetchall()
    reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine").fetchall()]
    con.close()
    assert loaded == [
        ("17850", "2010-12-01 08:26", 15.3),
        ("13047", "2010-12-02 10:00", 7.0),
        ("13047", "2010-12-02 10:00", 7.0),
        ("17850", "2010-12-13 09:02", 22.0),
    ]  # month-first, as the column's 12/13/2010 says
    assert "column amount: '-4.50' is below the minimum 0" in reasons
    assert "column ordered_at: 'not a date' is not a valid TIMESTAMP" in reasons

    other = tmp_path / "next-export.csv"
    other.write_text("CustomerID,InvoiceDate,Total\n17850,12/14/2010 9:02,5.00\n")
    wrong = invoke(settings, str(other), "-s", "orders", "--map", "ordered_at=Date")
    assert wrong.exit_code == 1 and "the file has no such column" in wrong.output

    result = CliRunner().invoke(
        app, ["resolve"], env={"CIP_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    customers = con.execute(
        "SELECT count(DISTINCT m.customer_id), count(DISTINCT i.customer_id) FROM identity_map m "
        "LEFT JOIN customer_identifiers i ON i.customer_id = m.customer_id "
        "AND i.id_type = 'user_id' WHERE m.source = 'orders'"
    ).fetchone()
    con.close()
    assert customers == (2, 2)  # one customer per customer id, found by it, not one per order
