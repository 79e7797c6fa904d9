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
    assert "lift not measurable yet" in status.output.lower()


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


def test_the_demo_stage_on_the_small_universe(built, small_universe: Settings, tmp_path: Path):
    """The journeys stage after `cip segments` on a resolved, scored universe: customers
    enter both example journeys, pushes and emails go to files, and a second tick at the
    same time sends nothing again."""
    import shutil
    from datetime import UTC, datetime, timedelta

    import duckdb

    from pipelines import flows
    from pipelines.relocate import relocate

    data = tmp_path / "data"
    shutil.copytree(built.data_dir, data)
    settings = small_universe.model_copy(update={"data_dir": data})
    relocate(settings)
    flows.segments.run(settings)
    clock = datetime.now(UTC).replace(tzinfo=None)
    noon = clock.replace(hour=12, minute=0, second=0, microsecond=0)  # outside quiet hours
    noon += timedelta(days=1) if noon < clock else timedelta(0)

    first = flows.journeys.run(settings, now=noon).outcome
    again = flows.journeys.run(settings, now=noon).outcome

    assert first.per_journey["churn_winback"]["entered"] > 0
    assert first.delivered > 0
    assert first.delivered + first.dead + first.suppressed == first.queued  # push: consent_push
    assert again.queued == again.delivered == again.dead == 0
    files = list((settings.paths.exports / "journeys").glob("*/*.json"))
    assert len(files) == first.delivered
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        reasons = con.execute("SELECT DISTINCT reason FROM journey_dead_letters").fetchall()
        assert set(reasons) <= {("no email address",)}  # consented, but no address known
        emails = con.execute(
            "SELECT count(*) FROM journey_sends s JOIN profiles p USING (customer_id) "
            "WHERE s.channel = 'email' AND s.status = 'delivered' AND NOT p.consent_email"
        ).fetchone()[0]
    assert emails == 0
    status = flows.journeys.status(settings)
    assert {s.journey.name for s in status} == {"cart_recovery", "churn_winback"}
    report = (settings.paths.exports / "report.html").read_text()
    assert 'id="journey-churn_winback"' in report and "offer" in report
