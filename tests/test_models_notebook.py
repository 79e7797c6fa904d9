"""The train-and-compare notebook runs top to bottom on small data (so that it never rots)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines import flows
from pipelines.config import Settings

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "train_and_compare.ipynb"


def test_notebook_trains_challenges_and_backtests(
    settings: Settings, orders_history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows.features.run(settings)
    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CIP_MODELS__SEARCH__TRIALS", "1")
    monkeypatch.setenv("CIP_MODELS__SEARCH__MAX_TREES", "30")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOK.parent.parent}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "no champion yet: v1" in text
    assert re.search(r"backtest as of \d{4}-\d{2}-\d{2}, 90 days, [\d,]+ customers", text)
    tables = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "champion" in tables and "bgnbd" in tables and "revenue_mae" in tables
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # ROC, calibration, gains and lift, SHAP summary, backtest deciles
