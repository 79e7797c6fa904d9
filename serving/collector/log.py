"""The collector's durable append log: fsynced segment files of JSON lines, group-committed.

Each accepted request becomes one line (a JSON record). `AppendLog.append` returns only once
its line is on disk; requests that arrive while a write is in flight wait for the next one, so
many concurrent requests share a single `write` and `fdatasync` (group commit): durable and
fast. Each process writes its own segment files (`<time_ns>-<pid>.log`, created under a
temporary name and locked before they appear) and holds an exclusive `flock` on the one it is
writing, so several processes (BentoML workers) can share one log folder, and the loader can
tell a segment that may still grow (locked) from a finished one (a closed or crashed writer).
A crash can leave at most a partial last line, which was never acknowledged; readers take
complete lines only.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["AppendLog", "is_live", "read_lines", "segments"]

SUFFIX = ".log"


class AppendLog:
    """Append records to the log in `folder`; `await append(record)` means it is on disk."""

    def __init__(self, folder: Path, *, segment_bytes: int) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._size = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # one writer thread, while open

    async def append(self, record: bytes) -> None:
        """Add one record (a JSON document without newlines); return once it is durable."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._pending.append(record)
        self._waiters.append(waiter)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        await asyncio.shield(waiter)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-log")
        try:
            while self._pending:
                data = b"\n".join(self._pending) + b"\n"
                waiters, self._pending, self._waiters = self._waiters, [], []
                try:
                    await loop.run_in_executor(self._executor, self._write, data)
                except Exception as error:  # no waiter may hang: each gets the failure
                    for waiter in waiters:
                        waiter.set_exception(error)
                else:
                    for waiter in waiters:
                        waiter.set_result(None)
        finally:
            self._flusher = None

    def _write(self, data: bytes) -> None:
        if self._fd is None or self._size >= self.segment_bytes:
            self._open_segment()
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fdatasync(self._fd)
        except OSError:
            # Part of this group may be on disk without its newline: end the segment there
            # (readers drop such a tail) so that later records start on a clean line.
            self._close_segment()
            raise
        self._size += len(data)

    def _open_segment(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        pending = self.folder / f"{name}.new"
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, self.folder / f"{name}{SUFFIX}")
        _fsync_dir(self.folder)
        self._close_segment()
        self._fd, self._size = fd, 0

    def _close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock: the loader may finish the segment
            self._fd = None

    async def close(self) -> None:
        """Wait for records in flight, then close the current segment (appending again
        later opens a new one)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_segment)
            self._executor.shutdown()
            self._executor = None


def segments(folder: Path) -> list[Path]:
    """Segment files in `folder`, oldest first."""
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.exists() else []


def is_live(segment: Path) -> bool:
    """Whether a writer still holds `segment` (it may grow); false once closed or crashed."""
    with segment.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
        return False


def read_lines(segment: Path, *, offset: int, max_bytes: int) -> tuple[list[bytes], int, bool]:
    """Complete lines of `segment` from byte `offset` (about `max_bytes` of them), the offset
    just after the last one, and whether the read reached the end of the file. A trailing
    partial line is not returned: it is still being written, or was torn by a crash."""
    with segment.open("rb") as file:
        file.seek(offset)
        data = file.read(max_bytes)
        while b"\n" not in data:  # a line longer than max_bytes: read on to its end
            more = file.read(max_bytes)
            if not more:
                break
            data += more
        eof = not file.read(1)
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), offset + end, eof


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
