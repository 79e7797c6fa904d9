"""A quiet console: `cip run` prints its stages and their figures, not its dependencies'
chatter (deprecation warnings from ibis, pydantic or SQLAlchemy, MLflow's INFO lines),
which goes to the data folder's log file. (Splink's "not observed" warnings are not raised
at all: resolution trains at Splink's ERROR level and reports unseen levels itself; MLflow's
registration notices, which it prints, go to the log file too.)

The run is the one that builds the served data folder (`conftest.built`): `cip run --from
resolve --until score` in a subprocess, as a user runs it, where the noise is."""

from __future__ import annotations

from conftest import Built

NOISE = ("Warning", "WARNING", "warning", "INFO", "Deprecat")


def test_cip_run_keeps_dependencies_chatter_in_the_log_file(built: Built) -> None:
    console = built.console
    assert "Ran 4 stages" in console
    for stage in ("resolve", "features", "train", "score"):
        assert f"─ {stage} ─" in console  # each stage's rule, then its figures
    noisy = [line for line in console.splitlines() if any(word in line for word in NOISE)]
    assert noisy == []
    log = (built.data_dir / "logs" / "cip.log").read_text()
    assert "not observed in dataset" not in console + log  # resolution reports it itself
    assert "mlflow" in log  # MLflow's INFO lines
    assert "Created version" not in console and "Created version '1' of model 'churn'" in log
    assert "DeprecationWarning" in log  # a dependency's deprecation
