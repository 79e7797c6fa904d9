"""`feast ui` starts on the platform's Feast repo (it needs grpc, a dependency of ours
through `feast[grpcio]`) and shows the registry `cip features` built."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from features.store import REPO_DIR
from pipelines.config import Settings

FEAST = str(Path(sys.executable).with_name("feast"))


def test_feast_ui_starts_and_serves_the_registry(served: Settings, tmp_path: Path) -> None:
    feast_dir = tmp_path / "feast"
    shutil.copytree(served.paths.feast, feast_dir)
    config = yaml.safe_load((REPO_DIR / "feature_store.yaml").read_text())
    config["registry"]["path"] = str(feast_dir / "registry.db")
    config["online_store"]["path"] = str(feast_dir / "online.db")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        ui = subprocess.Popen(
            [FEAST, "-c", str(repo), "ui", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if ui.poll() is not None:
                pytest.fail(f"feast ui exited with {ui.returncode}:\n{log.read_text()[-3000:]}")
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        projects = httpx.get(f"http://127.0.0.1:{port}/projects-list.json", timeout=10)
        views = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/feature_views",
            params={"project": served.features.project},
            timeout=30,
        )
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert [p["id"] for p in projects.json()["projects"]] == [served.features.project]
    assert views.status_code == 200, views.text
    assert "customer_order_features" in views.text  # the registry cip features built
    assert "ModuleNotFoundError" not in log.read_text()
