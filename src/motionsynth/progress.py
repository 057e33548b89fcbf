"""Progress of long work: a bar on stderr for the commands, a fraction and a way to stop for the editor's jobs.

`bar` is the one progress helper of the package's loops: a tqdm bar on stderr when asked for, and in any case each
item a step of `steps`. `steps` iterates items as equal steps of the work being listened to: while item i of n runs,
the loops nested in it fill the i-th n-th of its share; after it, the end of that share is reported. `listen`
(``with listen(callback): …``) makes ``callback(fraction)`` — the whole work's fraction done, 0 to 1, never
decreasing — be called at every step of every loop run inside it, on the same thread; the callback may raise
`Cancelled` to stop the work at that step (the editor's Cancel button). Without a listener a step costs one
context-variable lookup, so methods call it unconditionally and keep their signatures.

Loops one after another in the same step (the HM-VAE prior's phase 1, then its phase 2 chunks, inside one batch of
windows) share it: the first fills half of it, each next one half of what is left, and the step's end the rest — the
fraction is a guide for an estimate of the time left, not a measurement. The first loop of the listened work itself
fills all of it.

`Lines` is the same for a run of long steps told as lines of text (``make demo``): a line when a step starts, a line
at most every few seconds while it runs (its fraction done, from the loops inside it), a line when it ends — each with
the time since the run began.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Sized, TextIO, TypeVar, cast

__all__ = ["Cancelled", "bar", "steps", "listen", "Lines"]

T = TypeVar("T")


class Cancelled(Exception):
    """The listener asked the work to stop (raised at a step of a loop, out of the method that runs it)."""


class _Share:
    """The part [lo, hi] of the whole work that the code running now fills, and the loops started in it so far."""

    def __init__(self, report: Callable[[float], None], lo: float, hi: float, top: bool = False):
        self.report, self.lo, self.hi, self.top, self.loops = report, lo, hi, top, 0

    def next_loop(self) -> tuple[float, float]:
        """(lo, hi) of a loop starting now in this share (see the module)."""
        k, self.loops = self.loops, self.loops + 1
        if self.top:
            return (self.lo, self.hi) if k == 0 else (self.hi, self.hi)
        width = self.hi - self.lo
        return self.lo + width * (1 - 0.5 ** k), self.lo + width * (1 - 0.5 ** (k + 1))


_share: ContextVar[_Share | None] = ContextVar("motionsynth_progress", default=None)


def steps(items: Iterable[T], total: int | None = None) -> Iterator[T]:
    """``items``, each one a step of the work being listened to (see the module); ``total``: their number when
    ``items`` has no length (unknown: steps still check for `Cancelled`, but report no fraction)."""
    share = _share.get()
    if share is None:
        yield from items
        return
    n = total if total is not None else len(cast(Sized, items)) if hasattr(items, "__len__") else None
    lo, hi = share.next_loop()
    share.report(lo)
    width = (hi - lo) / n if n else 0.0
    for i, item in enumerate(items):
        _share.set(_Share(share.report, lo + i * width, lo + (i + 1) * width))
        try:
            yield item
        finally:
            _share.set(share)
        share.report(lo + (i + 1) * width if n else lo)


def bar(items: Iterable[T], enabled: bool, desc: str, **tqdm_options) -> Iterable[T]:
    """``items`` as `steps`, behind a tqdm progress bar on stderr when ``enabled`` (``tqdm_options``: e.g. ``unit``)."""
    stepped = steps(items)
    if not enabled:
        return stepped
    from tqdm import tqdm

    total = len(cast(Sized, items)) if hasattr(items, "__len__") else None
    return tqdm(stepped, desc=desc, total=total, leave=False, **tqdm_options)


@contextmanager
def listen(callback: Callable[[float], None]):
    """Within this block (on this thread), ``callback(fraction)`` is called at every step of every loop (`steps`,
    `bar`): the fraction of the whole work done, 0 to 1, never decreasing. It may raise `Cancelled` to stop the
    work."""
    highest = [0.0]

    def report(fraction: float) -> None:
        highest[0] = max(highest[0], min(1.0, max(0.0, float(fraction))))
        callback(highest[0])

    token = _share.set(_Share(report, 0.0, 1.0, top=True))
    try:
        yield
    finally:
        _share.reset(token)


class Lines:
    """Progress of a run of steps as lines on ``stream`` (stderr by default), each beginning with the time since the
    run began (``[  2:05]``): `say` writes one; ``with lines.step("text"):`` writes one when the step starts, one at
    most every ``every`` seconds while it runs (its fraction done where the loops inside it report one, `listen`), and
    one when it ends with its duration. ``quiet``: write nothing (a caller that shows no progress)."""

    def __init__(self, stream: TextIO | None = None, every: float = 20.0, quiet: bool = False):
        self.stream, self.every, self.quiet = stream, float(every), quiet
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the run began."""
        return time.perf_counter() - self.start

    def say(self, text: str) -> None:
        """One line: ``[m:ss] text``."""
        if self.quiet:
            return
        m, sec = divmod(int(self.elapsed()), 60)
        print(f"[{m:3d}:{sec:02d}] {text}", file=self.stream or sys.stderr, flush=True)

    @contextmanager
    def step(self, text: str):
        """A step of the run: its lines (see the class); its loops report to it (`listen`)."""
        begun = last = time.perf_counter()
        self.say(f"{text} …")

        def report(fraction: float) -> None:
            nonlocal last
            now = time.perf_counter()
            if now - last >= self.every:
                last = now
                done = f"{fraction:.0%} done, " if 0 < fraction < 1 else ""
                self.say(f"  {text}: {done}{now - begun:.0f} s so far")

        with listen(report):
            yield
        self.say(f"{text}: done in {time.perf_counter() - begun:.0f} s")
