"""`cip generate` and the generate stage of `cip run`, writing real files to a temp data folder."""

from __future__ import annotations

from typer.testing import CliRunner

from pipelines import flows
from pipelines.cli import app
from pipelines.config import Settings
from warehouse.synthetic import FORMATS, source_file


def invoke(settings: Settings, *args: str):
    env = {"CIP_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    return CliRunner().invoke(app, ["generate", *args], env=env)


def test_cip_generate_writes_every_source_where_asked(settings: Settings) -> None:
    out, truth = (
        settings.data_dir / "elsewhere" / "files",
        settings.data_dir / "elsewhere" / "truth",
    )
    result = invoke(settings, "--people", "80", "--seed", "5", "--locale", "ru", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "about 80 people (locale ru, seed 5)" in result.output
    assert all(source_file(out, s).exists() for s in FORMATS)
    assert (truth / "record_truth.parquet").exists() and (truth / "people.parquet").exists()
    assert not settings.paths.sources.exists()


def test_cip_generate_rejects_bad_options_with_a_reason(settings: Settings) -> None:
    too_few = invoke(settings, "--people", "3")
    assert too_few.exit_code == 2
    assert "people: Input should be greater than or equal to 50" in too_few.output
    locale = invoke(settings, "--locale", "fr")
    assert locale.exit_code == 2 and "fr" in locale.output
    assert not settings.paths.sources.exists()


def test_stage_generates_once_then_skips_until_settings_change(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"generate": settings.generate.model_copy(update={"people": 60})}
    )
    first = flows.generate.run(settings)
    assert not first.up_to_date and first.rows["events"] > 0
    events = source_file(settings.paths.sources, "events")
    written = events.stat().st_mtime_ns
    assert flows.generate.run(settings).up_to_date
    assert events.stat().st_mtime_ns == written
    changed = settings.model_copy(
        update={"generate": settings.generate.model_copy(update={"seed": 99})}
    )
    assert not flows.generate.run(changed).up_to_date
    assert events.stat().st_mtime_ns != written
    rewritten = events.stat().st_mtime_ns
    (changed.paths.truth / "manifest.json").write_text("{not json")
    flows.generate.run(changed)
    assert events.stat().st_mtime_ns != rewritten
