"""The driver JVM's classes from a class-data-sharing archive: Spark starts in half the time.

A Spark driver loads and verifies some 18,000 classes before and during its first
queries, which on a small machine is a good part of a short run. The JVM can map the
classes an earlier run loaded from an archive instead (dynamic class-data sharing, JDK 13
and later). `driver_options(key)` gives the driver's JVM options: when the archive for
`key` (what the classes depend on: the JDK, pyspark, the jars) is cached, the JVM maps it;
otherwise this session's JVM writes it when it exits, at the end of the Python process,
under a name of its own that the process renames when the JVM is gone (so that a reader
never sees half an archive, and two first runs do not write one file). When a process
does not exit normally (killed; pytest-xdist's workers), its JVM still writes the partial
file: the next start keeps it if it is whole (HotSpot writes the header last: a JVM
killed while writing leaves it zero) and deletes it otherwise. Archives live
beside the Jaro-Winkler jar (`cache_folder`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import subprocess
import time
from pathlib import Path

__all__ = ["cache_folder", "driver_options"]

_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # an unusable archive is skipped silently
_EXIT_WAIT_SECONDS = 120
_DYNAMIC_ARCHIVE_MAGIC = (0xF00BABA8).to_bytes(4, "little")
_written: set[Path] = set()  # archives this process's JVM writes at exit


def cache_folder() -> Path:
    """Where the Spark engine caches what it builds once: `$XDG_CACHE_HOME/cip`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cip"


def driver_options(key: str) -> str:
    """JVM options that map the cached archive of `key`, or write it at the JVM's exit."""
    archive = cache_folder() / f"spark-classes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        _settle_orphans(archive)
    except OSError:
        return ""  # no cache folder: the JVM starts as it would without one
    if archive.exists():
        return f"-XX:SharedArchiveFile={archive} {_QUIET}"
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    if partial not in _written:
        _written.add(partial)
        atexit.register(_keep, partial, archive)
    return f"-XX:ArchiveClassesAtExit={partial} {_QUIET}"


def _settle_orphans(archive: Path) -> None:
    """Keep what the JVM of a process that did not exit normally wrote whole, and delete
    what is left half-written (HotSpot writes an archive's header last)."""
    for partial in archive.parent.glob(f"{archive.name}.*.partial"):
        pid = partial.name.removeprefix(f"{archive.name}.").removesuffix(".partial")
        if not pid.isdigit() or int(pid) in (0, os.getpid()) or _alive(int(pid)):
            continue
        with partial.open("rb") as file:
            whole = file.read(4) == _DYNAMIC_ARCHIVE_MAGIC
        if whole and not archive.exists():
            os.replace(partial, archive)
        elif whole or time.time() - partial.stat().st_mtime > _EXIT_WAIT_SECONDS:
            partial.unlink(missing_ok=True)  # not a JVM still writing it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's
    return True


def _keep(partial: Path, archive: Path) -> None:
    """Let the driver JVM exit (it writes `partial` then), and keep what it wrote."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process: subprocess.Popen | None = getattr(gateway, "proc", None)
    if process is not None and process.stdin is not None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            process.stdin.close()  # the gateway exits on end of input
            process.wait(timeout=_EXIT_WAIT_SECONDS)
    if process is not None and process.returncode == 0 and partial.exists():
        os.replace(partial, archive)
    else:
        partial.unlink(missing_ok=True)
