"""The editor's runs as jobs: ``POST /api/run`` answers at once with a job, the page follows it with
``GET /api/jobs/ID`` and may cancel it with ``POST /api/jobs/ID/cancel``.

A job is *queued* (waiting for a worker of the runs pool, then for its turn at the model), *running* (its turn: the
model works, then its samples are written) and ends *done*, *failed* or *cancelled*. Model calls take turns in the
order the jobs came (`Jobs.turn`, one at a time as the app's model lock requires); a queued job says how many jobs
are ``ahead`` of it. Progress is the method's own (`motionsynth.progress`: batches of windows, optimisation steps),
never decreasing, 1 when done; the estimate of the time left is the running time so far scaled by the fraction
still to do. Cancel ends a queued job at once, and a running one at its method's next progress step
(`progress.Cancelled`) or, for a method that reports none, when its model call returns, before anything is written.
The newest `KEEP` jobs are remembered; their results stay in their request folders (`work.Outputs`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..progress import Cancelled, listen

__all__ = ["Job", "Jobs", "STATES", "KEEP"]

log = logging.getLogger("motionsynth.serve")

STATES = ("queued", "running", "done", "failed", "cancelled")
ENDED = ("done", "failed", "cancelled")
KEEP = 256


@dataclass(eq=False)
class Job:
    """One run request and where it stands (times from `time.monotonic`)."""

    id: str
    task: str
    model: str
    state: str = "queued"
    progress: float = 0.0
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None  # its turn at the model
    ended: float | None = None
    cancel_requested: bool = False
    run: str | None = None  # the result's request folder id, when done
    error: str | None = None  # failed: one line, and its HTTP status
    status: int | None = None
    detail: str = ""  # for the log line: what was made

    @property
    def seconds(self) -> float:
        """Seconds since it was submitted (until it ended)."""
        return (self.ended or time.monotonic()) - self.submitted

    @property
    def running_seconds(self) -> float:
        return 0.0 if self.started is None else (self.ended or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left by the progress so far; None before the first progress or once ended."""
        p = self.progress
        if self.state != "running" or not 0.0 < p:
            return None
        return max(0.0, self.running_seconds * (1.0 - p) / p)

    def describe(self, ahead: int = 0) -> dict:
        out = {"id": self.id, "task": self.task, "model": self.model, "state": self.state,
               "progress": round(self.progress, 4), "seconds": round(self.seconds, 3),
               "running_seconds": round(self.running_seconds, 3), "eta": None if self.eta is None else
               round(self.eta, 1), "cancel_requested": self.cancel_requested}
        if self.state == "queued":
            out["ahead"] = ahead
        if self.run is not None:
            out["run"] = self.run
        if self.error is not None:
            out["error"], out["status"] = self.error, self.status
        return out


class Jobs:
    """The jobs of one editor (see the module). ``pool``: the runs `work.WorkPool` (its bound is the jobs' bound:
    `work.Busy` when full); ``errors(exception) → (HTTP status, one line)`` for a failed job."""

    def __init__(self, pool, errors: Callable[[BaseException], tuple[int, str]], keep: int = KEEP):
        self.pool, self.errors, self.keep = pool, errors, int(keep)
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}  # oldest first
        self._line: list[Job] = []  # queued, in order
        self._holder: Job | None = None  # the job whose model call runs now

    def submit(self, task: str, model: str, work: Callable[[Job], str]) -> Job:
        """A new job running ``work(job)`` (→ the result's request folder id) on the pool; `work.Busy` when full."""
        job = Job(uuid.uuid4().hex, task, model)
        # The line and the pool's queue must hold the jobs in one order (both under the lock): a worker waits for
        # its job's turn, so a job queued in the pool behind workers waiting for it would never run.
        with self._cond:
            self._jobs[job.id] = job
            self._line.append(job)
            self._forget_old()
            try:
                self.pool.submit(self._run, job, work)
            except BaseException:
                self._jobs.pop(job.id, None)
                self._line.remove(job)
                self._cond.notify_all()
                raise
        log.info("run %s: %s with %s queued", job.id[:8], job.task, job.model)
        return job

    def get(self, ident: str) -> Job | None:
        return self._jobs.get(ident)

    def describe(self, job: Job) -> dict:
        with self._cond:
            return job.describe(self._ahead(job))

    def _ahead(self, job: Job) -> int:
        if job not in self._line:
            return 0
        return self._line.index(job) + (self._holder is not None)

    def cancel(self, job: Job) -> Job:
        """Cancel ``job``: a queued one now, a running one at its next progress step (an ended one stays)."""
        with self._cond:
            if job.state == "queued":
                self._line.remove(job)
                self._end(job, "cancelled")
                self._cond.notify_all()
            elif job.state == "running":
                job.cancel_requested = True
        return job

    def cancel_all(self) -> None:
        """Cancel every job not ended (the server is stopping)."""
        with self._cond:
            jobs = [j for j in self._jobs.values() if j.state not in ENDED]
        for job in jobs:
            self.cancel(job)

    @contextmanager
    def turn(self, job: Job):
        """The job's turn at the model: waits (queued) until every job before it has had its turn, then the job is
        running until the block ends. `progress.Cancelled` when it is cancelled while it waits, or was asked to
        stop by the time the block ends without an error (its result is then not kept)."""
        with self._cond:
            while job.state == "queued" and (self._holder is not None or self._line[0] is not job):
                self._cond.wait()
            if job.state != "queued":
                raise Cancelled()
            self._line.remove(job)
            self._holder, job.state, job.started = job, "running", time.monotonic()
        try:
            yield
            if job.cancel_requested:
                raise Cancelled()
        finally:
            with self._cond:
                self._holder = None
                self._cond.notify_all()

    # -- on the pool's thread
    def _run(self, job: Job, work: Callable[[Job], str]) -> None:
        if job.state != "queued":  # cancelled before a worker took it
            return
        try:
            with listen(lambda fraction: self._progress(job, fraction)):
                run = work(job)
        except Cancelled:
            with self._cond:
                self._end(job, "cancelled")
        except Exception as e:
            status, message = self.errors(e)
            if status >= 500:
                log.exception("run %s: internal error", job.id[:8])
            with self._cond:
                job.error, job.status = message, status
                self._end(job, "failed")
        else:
            with self._cond:
                job.run, job.progress = run, 1.0
                self._end(job, "done")
        finally:
            with self._cond:
                if job in self._line:  # (it failed before its turn)
                    self._line.remove(job)
                    self._cond.notify_all()

    def _progress(self, job: Job, fraction: float) -> None:
        if job.cancel_requested:
            raise Cancelled()
        job.progress = max(job.progress, fraction)

    def _end(self, job: Job, state: str) -> None:
        """(Holding the condition.) The job's final state, once, and its log line."""
        if job.state in ENDED:
            return
        job.state, job.ended = state, time.monotonic()
        what = {"done": job.detail, "failed": job.error or "", "cancelled": ""}[state]
        log.info("run %s: %s with %s %s after %.1f s (%.1f s running)%s", job.id[:8], job.task, job.model, state,
                 job.seconds, job.running_seconds, f": {what}" if what else "")

    def _forget_old(self) -> None:
        """(Holding the condition.) Drop the oldest ended jobs beyond ``keep``."""
        extra = len(self._jobs) - self.keep
        for ident in [i for i, j in self._jobs.items() if j.state in ENDED][:max(0, extra)]:
            del self._jobs[ident]
