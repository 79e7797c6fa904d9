"""Settings the CLI cannot use: named, with what is wrong, never a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings


def test_an_invalid_or_unknown_setting_is_named_and_refused(settings: Settings) -> None:
    env = {"CIP_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    for name, value, problem in (
        ("CIP_MODELS__MIN_IMPROVEMENT", "abc", "models.min_improvement: Input should be a valid"),
        ("CIP_MODELS__CUTOFF_STEP_DAYS", "7", "models.cutoff_step_days: Extra inputs are not"),
        ("CIP_SERVING__STREAM__SWEEP_SECONDZ", "5", "serving.stream.sweep_secondz: Extra inputs"),
    ):
        result = CliRunner().invoke(app, ["models", "status"], env=env | {name: value})
        assert result.exit_code == 2, result.output
        assert problem in result.output and "CIP_<SECTION>__<NAME>" in result.output
        assert "Traceback" not in result.output
