"""A data folder works where it lands: copied or moved, its stores are re-pointed.

Two stores in the data folder record absolute paths into it: MLflow (artifact locations of
experiments, runs, logged models and model versions in its SQLite database) and Feast (the
registry's offline sources, the snapshot parquet files). The data folder keeps the place it
was last used in `.location`; when a command finds it somewhere else (a copy, a move, another
machine), `relocate` rewrites every path under the old place to the new one: MLflow's rows
in place (only for the embedded store; a tracking server keeps its own artifacts), Feast's
sources by applying the repo again for the new folder, which keeps what was materialized.
A folder from before `.location` existed is placed by its MLflow experiments.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from pipelines.config import Settings

__all__ = ["LOCATION_FILE", "relocate"]

LOCATION_FILE = ".location"
log = logging.getLogger("cip.relocate")


def relocate(settings: Settings) -> list[str]:
    """Re-point the stores of `settings.data_dir` if it moved since last used; what was
    re-pointed (empty when nothing moved)."""
    root = settings.data_dir.resolve()
    if not root.is_dir():
        return []
    marker = root / LOCATION_FILE
    database = _mlflow_database(settings)
    if marker.exists():
        previous = marker.read_text().strip()
    else:
        previous = _mlflow_root(database) if database else None
    done: list[str] = []
    if previous and previous != str(root):
        if database is not None:
            rows = _rewrite_mlflow(database, old=previous, new=str(root))
            done.append(f"MLflow: {rows} artifact paths moved from {previous}")
        if (settings.paths.feast / "registry.db").exists():
            _repoint_feast(settings)
            done.append(f"Feast: offline sources moved from {previous}")
        for line in done:
            log.info("data folder moved to %s; %s", root, line)
    if previous != str(root):
        marker.write_text(f"{root}\n")
    return done


def _mlflow_database(settings: Settings) -> Path | None:
    """The embedded MLflow store, if that is the one in use and it exists."""
    if settings.models.tracking_uri:
        return None
    database = settings.paths.mlflow / "mlflow.db"
    return database if database.exists() else None


def _mlflow_root(database: Path) -> str | None:
    """The data folder the MLflow store was made in, read from its experiments'
    artifact locations (`file://<root>/mlflow/artifacts/<experiment>`)."""
    con = sqlite3.connect(database)
    try:
        locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
    finally:
        con.close()
    for location in locations:
        path = (location or "").removeprefix("file://")
        head, found, _ = path.rpartition("/mlflow/artifacts/")
        if found and head:
            return head
    return None


def _rewrite_mlflow(database: Path, *, old: str, new: str) -> int:
    """Replace `old/` by `new/` in every text column of the store; rows changed."""
    con = sqlite3.connect(database)
    changed = 0
    try:
        with con:
            tables = [
                name
                for (name,) in con.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                for column in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                    name, kind = column[1], (column[2] or "").upper()
                    if "CHAR" not in kind and "TEXT" not in kind:
                        continue
                    cursor = con.execute(
                        f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) '
                        f'WHERE instr("{name}", ?) > 0',
                        (f"{old}/", f"{new}/", f"{old}/"),
                    )
                    changed += cursor.rowcount
    finally:
        con.close()
    return changed


def _repoint_feast(settings: Settings) -> None:
    import features

    feast_dir = settings.paths.feast.resolve()
    store = features.open_store(feast_dir=feast_dir, settings=settings.features)
    offline = features.registered_offline(store)  # the sources' kind stays (engine: spark)
    features.apply_repo(store, feast_dir=feast_dir, settings=settings.features, offline=offline)
