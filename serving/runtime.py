"""What the running service has loaded, kept fresh without a restart.

Three parts: the customer directory (a snapshot of the warehouse's lookup tables), the
champion models (from the MLflow registry by alias `champion`) and the Feast store that
serves their features online. `refresh` reloads whichever changed: the lookup tables, a
newly promoted champion, a new materialization. A part that cannot load keeps its previous
version (or stays missing, with the reason): the API then answers 503 with that reason.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feast import FeatureStore
from starlette.responses import JSONResponse

from features import freshness, open_store
from models import Champions, load_champions
from serving.config import ServiceConfig
from serving.directory import (
    Directory,
    DirectoryUnavailable,
    load_directory,
    warehouse_version,
)
from serving.schemas import StatusResponse
from serving.scorer import FeaturesMismatch, LiveScorer

__all__ = ["ApiError", "Runtime"]

log = logging.getLogger("cip.serving")


class ApiError(Exception):
    """A request the service answers with a 4xx or 503 and a message saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message}, status_code=self.status)


class Runtime:
    """The loaded directory, champions and feature store; each swapped whole on reload."""

    def __init__(self, *, config: ServiceConfig) -> None:
        self.config = config
        self.tracking_uri = config.tracking_uri
        self._directory: Directory | None = None
        self._warehouse_stamp: tuple[float, ...] = ()
        self._champions: Champions | None = None
        self._store: FeatureStore | None = None
        self._scorer: LiveScorer | None = None
        self._materialized_at: datetime | None = None
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self._checked_at = datetime.now(UTC)

    @property
    def ready(self) -> bool:
        return not self._problems

    def directory(self) -> Directory:
        """The loaded directory, or 503 with the reason it is missing."""
        if self._directory is None:
            raise ApiError(503, self._problems.get("directory", "customer directory not loaded"))
        return self._directory

    def score(self, customer_ids: list[str], *, reasons: bool) -> list[dict[str, Any]]:
        """Live scores of known customers (same order), or 503 if models/features are missing."""
        scorer = self._scorer
        if scorer is None:
            missing = [self._problems[k] for k in ("models", "features") if k in self._problems]
            raise ApiError(503, "; ".join(missing) or "models or features not loaded")
        if not customer_ids:
            return []
        try:
            return scorer.score(customer_ids, reasons=reasons)
        except Exception as exc:  # a store or model failing under us: say so, not 500
            log.exception("live scoring failed")
            reason = f"live scoring failed ({type(exc).__name__}); see the server log"
            raise ApiError(503, reason) from exc

    def refresh(self) -> bool:
        """Reload every part that changed since the last check (one check at a time);
        whether anything new was loaded."""
        with self._lock:
            directory = self._refresh_directory()
            changed = self._refresh_models()
            changed = self._refresh_features() or changed
            if changed or self._scorer is None:
                self._build_scorer()
            self._checked_at = datetime.now(UTC)
            return directory or changed

    def status(self) -> StatusResponse:
        directory, scorer = self._directory, self._scorer
        # the models that answer: the scorer's (a reload swaps it after loading new ones)
        champions = self._champions if scorer is None else scorer.champions
        return StatusResponse(
            ready=self.ready,
            problems=dict(self._problems),
            models={} if champions is None else champions.versions,
            feature_service=None if scorer is None else scorer.feature_service,
            features_materialized_at=self._materialized_at,
            customers=0 if directory is None else len(directory.index),
            directory_loaded_at=None if directory is None else directory.loaded_at,
            checked_at=self._checked_at,
        )

    def _refresh_directory(self) -> bool:
        warehouse = self.config.warehouse
        current, stamp = self._directory, _file_stamp(warehouse)
        if current is not None and stamp == self._warehouse_stamp:
            return False  # untouched since the last look: do not even open it
        try:
            if current is None or warehouse_version(warehouse=warehouse) != current.version:
                self._directory = load_directory(
                    warehouse=warehouse,
                    default_region=self.config.default_phone_region,
                )
                log.info("customer directory loaded: %d customers", len(self._directory.index))
        except DirectoryUnavailable as exc:
            self._set_problem("directory", str(exc), keeping=current is not None)
            return False
        self._warehouse_stamp = stamp
        self._problems.pop("directory", None)
        return self._directory is not current

    def _refresh_models(self) -> bool:
        current = self._champions
        try:
            database = self.tracking_uri.removeprefix("sqlite:///")
            if database != self.tracking_uri and not Path(database).exists():
                raise FileNotFoundError(f"no MLflow store at {database}: run `cip train`")
            if current is not None and current.is_current(tracking_uri=self.tracking_uri):
                return False
            self._champions = load_champions(tracking_uri=self.tracking_uri)
        except Exception as exc:  # registry, artifacts or metadata: all mean "no models"
            self._set_problem(
                "models", f"champion models not loaded: {exc}", keeping=current is not None
            )
            return False
        self._problems.pop("models", None)
        log.info("champion models loaded: %s", self._champions.versions)
        return True

    def _refresh_features(self) -> bool:
        feast_dir, current = self.config.feast_dir, self._store
        try:
            if not (feast_dir / "registry.db").exists():
                raise FileNotFoundError(f"no Feast registry in {feast_dir}: run `cip features`")
            store = current or open_store(feast_dir=feast_dir, settings=self.config.features)
            store.refresh_registry()
            done = [f.at for f in freshness(store) if f.at is not None]
            if not done:
                raise LookupError("the online store was never materialized: run `cip features`")
        except Exception as exc:  # Feast raises many kinds; all mean "no features"
            reason = f"online features not available: {exc}"
            self._set_problem("features", reason, keeping=current is not None)
            return False
        self._problems.pop("features", None)
        changed = store is not current or max(done) != self._materialized_at
        self._store, self._materialized_at = store, max(done)
        return changed

    def _build_scorer(self) -> None:
        if self._champions is None or self._store is None:
            self._scorer = None
            return
        try:
            self._scorer = LiveScorer.build(
                champions=self._champions,
                store=self._store,
                top_reasons=self.config.top_reasons,
                cache_rows=self.config.serving.feature_cache_rows,
            )
        except FeaturesMismatch as exc:
            self._scorer = None
            self._set_problem("features", str(exc), keeping=False)

    def _set_problem(self, part: str, reason: str, *, keeping: bool) -> None:
        if keeping:
            log.warning("%s not reloaded, keeping the previous one: %s", part, reason)
        else:
            self._problems[part] = reason
            log.warning("%s not loaded: %s", part, reason)


def _file_stamp(warehouse: Path) -> tuple[float, ...]:
    """Modification times of the warehouse file and its WAL (changed by every write)."""
    files = (warehouse, warehouse.with_name(warehouse.name + ".wal"))
    return tuple(f.stat().st_mtime if f.exists() else 0.0 for f in files)
