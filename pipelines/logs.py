"""A quiet console: what the CLI and the servers log, and where.

Dependencies talk a lot: deprecation warnings (ibis, pydantic, SQLAlchemy), MLflow's INFO
lines and registration notices, Splink's "level not observed" warnings. None of it is for
the person at the console, but all of it may matter when something goes wrong. At the CLI
edge, `log_to_file` sends every log record and Python warning to the data folder's log
file (`logs/cip.log`, rotated); the console keeps the platform's own warnings and anyone's
errors. A server process (`cip serve`) keeps its dependencies' warnings in the same file
(`keep_warnings_in`) and its access log on the console.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from rich.logging import RichHandler

from pipelines.console import console

__all__ = ["OWN_LOGGERS", "keep_warnings_in", "log_to_file"]

OWN_LOGGERS = ("cip", "warehouse", "resolution", "features", "models", "segments", "serving")
"""Loggers of the platform's packages (`pipelines` logs through `cip.*`)."""
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"
_MARK = "_cip_handler"


def log_to_file(log_file: Path) -> None:
    """Everything to `log_file`; on the console, our warnings and anyone's errors.
    Idempotent: a second call (another command in the same process) moves the file."""
    root = logging.getLogger()
    _replace(root, [_file_handler(log_file), _console_handler()])
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    # MLflow gives its loggers a console handler of their own on import unless told not
    # to; if it is imported already, its loggers are handed back to the root handlers
    # above. (Its registration notices are prints: `models.registry` logs them instead.)
    # Splink's linker calls basicConfig, which does nothing once the root logger has
    # handlers.
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    for name in ("mlflow", "alembic", "sqlalchemy.engine", "huey", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


def keep_warnings_in(log_file: Path) -> None:
    """Python warnings of this process go to `log_file` instead of the console."""
    logger = logging.getLogger("py.warnings")
    _replace(logger, [_file_handler(log_file)])
    logger.propagate = False
    logging.captureWarnings(True)


def _file_handler(log_file: Path) -> logging.Handler:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8", delay=True
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


class _ForTheConsole(logging.Filter):
    """Our own warnings and above; errors from anyone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        own = record.name.split(".")[0] in OWN_LOGGERS
        return own and record.levelno >= logging.WARNING


def _console_handler() -> logging.Handler:
    handler = RichHandler(console=console, show_time=False, show_path=False)
    handler.addFilter(_ForTheConsole())
    return handler


def _replace(logger: logging.Logger, handlers: list[logging.Handler]) -> None:
    for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
