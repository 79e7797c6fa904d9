"""`cip journeys` on the hand-made warehouse: validate, tick (files when no transport is
configured), status with funnels and lift; a broken journey is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings


@pytest.fixture
def cli_env(settings: Settings, segment_world: Path, monkeypatch) -> Settings:
    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))
    return settings


def test_validate_tick_and_status(cli_env: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["segments"]).exit_code == 0
    validated = runner.invoke(app, ["journeys", "validate"])
    assert validated.exit_code == 0, validated.output
    assert "ok cart_recovery" in validated.output and "ok churn_winback" in validated.output

    ticked = runner.invoke(app, ["journeys", "tick"])
    assert ticked.exit_code == 0, ticked.output
    assert "cart_recovery" in ticked.output and "entered" in ticked.output

    status = runner.invoke(app, ["journeys", "status", "cart_recovery"], terminal_width=200)
    assert status.exit_code == 0, status.output
    assert "push_now" in status.output and "(journey)" in status.output
    assert "lift" in status.output


def test_a_journey_naming_an_unknown_segment_is_refused(
    cli_env: Settings, monkeypatch, tmp_path: Path
) -> None:
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "bad.yaml").write_text(
        "name: bad\ndescription: x\ntrigger: {segment: nobody_at_all}\n"
        "steps:\n  - {id: hello, send: {channel: fax, template: cart_push}}\n"
    )
    monkeypatch.setenv("CIP_SEGMENTS__JOURNEYS__DEFINITION_DIRS", f'["{folder}"]')
    result = CliRunner().invoke(app, ["journeys", "validate"], terminal_width=300)
    assert result.exit_code == 1
    assert "journey 'bad': trigger.segment: unknown segment 'nobody_at_all'" in result.output
    assert "step 'hello' (#1): send.channel: unknown channel 'fax'" in result.output
    assert "Traceback" not in result.output
