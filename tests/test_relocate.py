"""A data folder works where it lands: copied, then moved away from where it was built
(the old place gone), `cip train` and `cip score` use the models and features in the new
place, and nothing in MLflow or Feast points at the old one."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

import features
from pipelines.cli import app
from pipelines.config import Settings
from pipelines.relocate import LOCATION_FILE

FAST = {"CIP_MODELS__SEARCH__TRIALS": "1", "CIP_MODELS__TRAIN_CUTOFFS": "3"}


def _cip(data: Path, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"CIP_DATA_DIR": str(data), **FAST})
    assert result.exit_code == 0, result.output
    return result.output


def _mlflow_paths(data: Path) -> list[str]:
    con = sqlite3.connect(data / "mlflow" / "mlflow.db")
    try:
        return [
            value
            for sql in (
                "SELECT artifact_location FROM experiments WHERE name != 'Default'",
                "SELECT artifact_uri FROM runs",
                "SELECT storage_location FROM model_versions",
                "SELECT artifact_location FROM logged_models",
            )
            for (value,) in con.execute(sql)
        ]
    finally:
        con.close()


def test_a_copied_then_moved_data_folder_works_where_it_lands(
    served: Settings, tmp_path: Path
) -> None:
    first = tmp_path / "first" / "data"
    shutil.copytree(served.data_dir, first)
    _cip(first, "models", "status")  # used once where it was copied to
    assert (first / LOCATION_FILE).read_text().strip() == str(first)
    assert all(str(first) in path for path in _mlflow_paths(first))

    moved = tmp_path / "elsewhere" / "data"
    moved.parent.mkdir()
    shutil.move(first, moved)  # the old place is gone

    output = _cip(moved, "train")
    assert "data folder moved" in output
    assert "v2" in output  # a new version registered beside the copied ones
    _cip(moved, "score")
    paths = _mlflow_paths(moved)
    assert paths and all(str(moved) in path and str(first) not in path for path in paths)
    store = features.open_store(feast_dir=moved / "feast", settings=served.features)
    sources = [view.batch_source.path for view in store.list_feature_views()]
    assert sources and all(source.startswith(str(moved / "feast")) for source in sources)
    assert all(f.until is not None for f in features.freshness(store))  # still materialized
    assert "data folder moved" not in _cip(moved, "models", "status")  # once only


def test_an_old_data_folder_is_placed_by_its_mlflow_store(served: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "data"
    shutil.copytree(served.data_dir, copy, ignore=shutil.ignore_patterns(LOCATION_FILE))
    output = _cip(copy, "models", "status")
    assert "data folder moved" in output
    assert all(str(copy) in path for path in _mlflow_paths(copy))


@pytest.fixture(autouse=True)
def _no_marker_in_the_shared_folder(served: Settings) -> Iterator[None]:
    uri = mlflow.get_tracking_uri()
    marker = served.data_dir / LOCATION_FILE  # written when the fixture placed the copy
    assert marker.read_text().strip() == str(served.data_dir.resolve())
    yield
    assert marker.read_text().strip() == str(served.data_dir.resolve())  # served untouched
    mlflow.set_tracking_uri(uri)  # the commands ran here point MLflow at their copies
    mlflow.set_registry_uri(uri)
