"""Shared test fixtures: real stores in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder is a fresh temporary directory."""
    return Settings(data_dir=tmp_path / "data")
