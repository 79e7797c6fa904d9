"""`cip segments` and `cip activate` as `cip run` uses them, on the small hand-made warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.commands import activate, segments
from pipelines.config import Settings


def test_run_stages_refresh_activate_to_files_and_write_the_report(
    settings: Settings, segment_world: Path
) -> None:
    segments.stage(settings)
    activate.stage(settings)
    exports = settings.paths.exports
    files = pd.read_csv(exports / "files" / "likely_to_churn.csv")
    assert list(files["customer_id"]) == ["c01", "c03"]  # the riskiest tenth of the e-mailable
    report = (exports / "report.html").read_text()
    assert 'href="files/likely_to_churn.csv"' in report
    assert "hold 33% of the customers who churned" in report
    with duckdb.connect(str(segment_world)) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM segment_runs").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM activation_log").fetchone() == (6,)
    activate.stage(settings)  # nothing new: every delivery is up to date
    with duckdb.connect(str(segment_world)) as con:
        assert con.execute("SELECT count(*) FROM activation_log").fetchone() == (6,)


@pytest.fixture
def cli_env(settings: Settings, segment_world: Path, monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))
    return tmp_path


def test_cli_validate_names_the_broken_segment_and_field(cli_env: Path, monkeypatch) -> None:
    folder = cli_env / "mine"
    folder.mkdir()
    rule = "{field: order.avg_order_valeu, op: '>', value: 100}"
    (folder / "big.yaml").write_text(f"name: big_baskets\ndescription: x\nrule: {rule}\n")
    monkeypatch.setenv("CIP_SEGMENTS__DEFINITION_DIRS", f'["{folder}"]')
    result = CliRunner().invoke(app, ["segments", "validate"])
    assert result.exit_code == 1
    assert "segment 'big_baskets'" in result.output
    assert "order.avg_order_valeu" in result.output


def test_cli_refresh_history_changes_and_activate(cli_env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["segments"]).exit_code == 0
    history = runner.invoke(app, ["segments", "history", "cart_abandoners_3d"])
    assert history.exit_code == 0 and "cart_ab" in history.output  # rich folds long cells
    changes = runner.invoke(app, ["segments", "changes", "cart_abandoners_3d"])
    assert "entered (2): c05, c08" in changes.output
    result = runner.invoke(app, ["activate", "--destination", "files"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["activate", "--destination", "nope"]).exit_code != 0
