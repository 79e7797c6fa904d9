"""`cip load` and the load stage of `cip run`, on a real warehouse in a temp data folder."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import warehouse
from pipelines.cli import app
from pipelines.commands import load
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
    load.stage(settings)
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    logged = con.execute("SELECT source, rows_loaded FROM load_log ORDER BY source").fetchall()
    assert logged == [("accounts", 1), ("support_tickets", 1)]
    con.close()
