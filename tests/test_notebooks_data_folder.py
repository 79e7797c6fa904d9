"""Both notebooks find the data folder as the CLI does, whatever the working directory:
opened from `notebooks/` of a project (Jupyter's working directory), their data-folder
cell reaches the project's `data/`, not `notebooks/data/`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.config import Settings, load_settings, project_dir

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_load_settings_finds_the_project_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cip.yaml").write_text("data_dir: store\n")
    (tmp_path / "notebooks" / "deep").mkdir(parents=True)
    monkeypatch.delenv("CIP_DATA_DIR", raising=False)
    monkeypatch.delenv("CIP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path / "notebooks" / "deep")
    assert project_dir() == tmp_path
    assert load_settings().data_dir == tmp_path / "store"
    monkeypatch.setenv("CIP_DATA_DIR", "here")  # a shell user's relative path: the cwd's
    assert load_settings().data_dir == tmp_path / "notebooks" / "deep" / "here"


@pytest.mark.parametrize("name", ["train_and_compare.ipynb", "resolution_quality.ipynb"])
def test_a_notebook_opened_from_notebooks_reaches_the_projects_data(
    name: str, served: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "cip.yaml").write_text("data_dir: data\n")
    shutil.copytree(served.data_dir, project / "data")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    notebook.cells = [first]  # the cell that finds the data folder (and opens it)
    env = {k: v for k, v in os.environ.items() if k not in ("CIP_DATA_DIR", "CIP_CONFIG")}
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    client.execute(env=env)  # the kernel's environment: no CIP_DATA_DIR to lean on
    [output] = [o for o in first.outputs if o.output_type == "execute_result"]
    assert str(project / "data") in output["data"]["text/plain"]
    assert "notebooks/data" not in output["data"]["text/plain"]
