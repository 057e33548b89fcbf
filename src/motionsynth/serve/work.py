"""Where the editor's work runs and where its files stay.

`WorkPool`: a fixed number of worker threads and a bounded number of waiting jobs. Parsing, model calls and encoding
run there, never on the event loop (which keeps answering other clients), and when the pool is full a request is
refused at once with 503 rather than queued without bound.

`Outputs`: the request folders under the output folder (one per upload or run, named by a random 32-hex-digit id),
kept while younger than ``keep_hours`` and while all of them together take at most ``keep_bytes`` (the oldest go
first; the newest is always kept). The sizes are tracked in memory — indexed once at start, then as requests add
folders — so the expiry, checked at start and whenever a folder is added, costs no walk of the disk.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = ["WorkPool", "Busy", "Outputs", "ID"]

ID = re.compile(r"[0-9a-f]{32}")


class Busy(Exception):
    """The pool is full: the caller answers 503."""


class WorkPool:
    """``workers`` threads and at most ``queue`` jobs waiting for one (see the module)."""

    def __init__(self, name: str, workers: int, queue: int):
        self.name, self.workers, self.capacity = name, int(workers), int(workers) + int(queue)
        self._taken = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def taken(self) -> int:
        """Jobs running or waiting now."""
        return self._taken

    async def run(self, fn, *args):
        """``fn(*args)`` on a worker thread, awaited; `Busy` when ``capacity`` jobs are already running or waiting.
        The slot is given back when the job ends (not when the caller stops waiting), so the bound holds even for
        clients that go away."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def submit(self, fn, *args) -> Future:
        """``fn(*args)`` on a worker thread, not awaited: its future; `Busy` as for `run`."""
        with self._lock:
            if self._taken >= self.capacity:
                raise Busy(self.name)
            self._taken += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"motionsynth-{self.name}")
            try:
                future = self._executor.submit(fn, *args)
            except BaseException:
                self._taken -= 1
                raise
        future.add_done_callback(self._release)
        return future

    def _release(self, _future) -> None:
        with self._lock:
            self._taken -= 1

    def close(self) -> None:
        """Stop the threads once their jobs end (a later `run` starts new ones)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class Outputs:
    """The request folders under ``root`` and their expiry (see the module)."""

    def __init__(self, root: Path, keep_seconds: float, keep_bytes: int):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.keep_seconds, self.keep_bytes = float(keep_seconds), int(keep_bytes)
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, int]] = {}  # id → (time made, bytes)
        for path in self.root.iterdir():
            if ID.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                self._kept[path.name] = (path.stat().st_mtime, _size(path))
        self.expire()

    def new(self) -> tuple[str, Path]:
        """A fresh id and its (empty) folder. Give it to `keep` when it is complete, or to `discard`."""
        ident = uuid.uuid4().hex
        path = self.root / ident
        path.mkdir()  # a collision (never expected) raises rather than sharing a folder
        return ident, path

    def keep(self, ident: str) -> None:
        """Count the complete folder ``ident`` and expire older ones."""
        with self._lock:
            self._kept[ident] = (time.time(), _size(self.root / ident))
        self.expire(spare=ident)

    def discard(self, ident: str) -> None:
        """Remove the folder of a failed request."""
        with self._lock:
            self._kept.pop(ident, None)
        shutil.rmtree(self.root / ident, ignore_errors=True)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self._kept.values())

    def expire(self, spare: str | None = None) -> list[str]:
        """Remove the folders older than ``keep_seconds``, then the oldest while the total exceeds ``keep_bytes``
        (never ``spare``). Returns the ids removed."""
        with self._lock:
            now, gone = time.time(), []
            by_age = sorted(self._kept.items(), key=lambda item: item[1][0])
            total = sum(size for _, (_, size) in by_age)
            for ident, (made, size) in by_age:
                if ident != spare and (now - made > self.keep_seconds or total > self.keep_bytes):
                    gone.append(ident)
                    total -= size
            for ident in gone:
                del self._kept[ident]
        for ident in gone:
            shutil.rmtree(self.root / ident, ignore_errors=True)
        return gone


def _size(folder: Path) -> int:
    """Bytes of the files directly in ``folder`` (request folders have no sub-folders)."""
    total = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total
