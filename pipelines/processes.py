"""Servers the CLI starts as child processes, stopped with it.

`cip serve` and `cip mlflow-ui` run a server (`bentoml serve`, `mlflow ui`) that itself
starts workers. `run_server` starts it in a process group of its own and, whatever ends
the CLI (Ctrl-C, SIGTERM from a service manager, SIGHUP from a closed terminal, an
exception), stops that whole group: politely first (SIGTERM), then by force (SIGKILL)
after a grace period. No worker outlives the command that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

__all__ = ["run_server"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop(Exception):
    """Raised in the CLI by a stop signal, so that cleanup runs."""


def run_server(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, grace_seconds: float = 20
) -> int:
    """Run `argv` until it exits or the CLI is told to stop; its exit code (or 128 + the
    signal's number when stopped)."""
    child = subprocess.Popen(
        list(argv), env=None if env is None else dict(env), start_new_session=True
    )

    def stop(signum: int, _: FrameType | None) -> None:
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    try:
        return child.wait()
    except _Stop as stopped:
        return 128 + stopped.args[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(child, grace_seconds=grace_seconds)


def _stop_group(child: subprocess.Popen, *, grace_seconds: float) -> None:
    """SIGTERM to the child's process group, SIGKILL to what is left after the grace."""
    if not _signal_group(child.pid, signal.SIGTERM):
        child.wait()
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace_seconds)
    _signal_group(child.pid, signal.SIGKILL)  # workers the server did not stop itself
    child.wait()


def _signal_group(group: int, sig: signal.Signals) -> bool:
    """Send `sig` to a process group; whether it still existed."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    return True
