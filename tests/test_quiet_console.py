"""A quiet console: `cip run` prints its stages and their figures, not its dependencies'
chatter (deprecation warnings from ibis, pydantic or SQLAlchemy, MLflow's INFO lines),
which goes to the data folder's log file. (Splink's "not observed" warnings are not raised
at all: resolution trains at Splink's ERROR level and reports unseen levels itself.) (MLflow's two
registration notices are prints, not log records, and stay.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.config import Settings

CIP = str(Path(sys.executable).with_name("cip"))
NOISE = ("Warning", "WARNING", "warning", "INFO", "Deprecat")


def test_cip_run_keeps_dependencies_chatter_in_the_log_file(
    small_universe: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(small_universe.data_dir, data)
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(data),
        "CIP_MODELS__SEARCH__TRIALS": "1",
        "CIP_MODELS__TRAIN_CUTOFFS": "3",
        "COLUMNS": "120",
    }
    env.pop("MLFLOW_CONFIGURE_LOGGING", None)
    run = subprocess.run(
        [CIP, "run", "--from", "resolve", "--until", "train"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-5000:]
    assert "Ran 3 stages" in console
    noisy = [line for line in console.splitlines() if any(word in line for word in NOISE)]
    assert noisy == []
    log = (data / "logs" / "cip.log").read_text()
    assert "not observed in dataset" not in console + log  # resolution reports it itself
    assert "mlflow" in log  # MLflow's INFO lines
    assert "DeprecationWarning" in log  # a dependency's deprecation
