"""How much work one input may ask for, checked from a file's header (or a request's numbers) before any array is
built.

The work of a motion is its **joint-frames**, frames × joints: every reader (BVH, the project's npz, AMASS), the editor's
uploads and runs and every task command size their arrays by it. The one limit for all of them is
`max_joint_frames()`: `DEFAULT_MAX_JOINT_FRAMES` unless raised (or lowered) by the environment variable
``MOTIONSYNTH_MAX_JOINT_FRAMES``, by `set_max_joint_frames`, or for a block of code by `allow_joint_frames`. The
command line's ``--max-joint-frames N`` (before the command: ``motionsynth --max-joint-frames 50000000 convert …``)
sets it for one call.

At the default (20,000,000) a parsed motion holds at most about 1.1 GB (56 bytes a joint-frame): 2.5 hours of the
22-joint Bandai skeleton at 30 fps, or 55 minutes of a 60-joint rig with fingers at 100 fps.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .errors import MotionsynthError

__all__ = ["DEFAULT_MAX_JOINT_FRAMES", "ENV_VAR", "max_joint_frames", "set_max_joint_frames", "allow_joint_frames",
           "check_joint_frames", "LimitError"]

DEFAULT_MAX_JOINT_FRAMES = 20_000_000
ENV_VAR = "MOTIONSYNTH_MAX_JOINT_FRAMES"
_HARD_MAX = 10**12  # above any machine's memory: a typo such as `1e99`, not a limit


class LimitError(MotionsynthError):
    """An input asks for more work than the limit allows (a user error: raise the limit or cut the input)."""


_override: int | None = None


def _parse(text: str, what: str) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MotionsynthError(f"{what}: {text!r} is not a number of joint-frames") from None
    if not (1 <= value <= _HARD_MAX) or value != int(value):
        raise MotionsynthError(f"{what}: {text!r} must be a whole number from 1 to {_HARD_MAX:,}")
    return int(value)


def max_joint_frames() -> int:
    """The largest frames × joints an input may have now (the override, else the environment, else the default)."""
    if _override is not None:
        return _override
    text = os.environ.get(ENV_VAR)
    return DEFAULT_MAX_JOINT_FRAMES if text in (None, "") else _parse(text, ENV_VAR)


def set_max_joint_frames(value: int | str | None) -> None:
    """Set the limit for this process (None: back to the environment / default). Text is parsed (``"5e7"``)."""
    global _override
    _override = None if value is None else _parse(str(value), "the joint-frame limit")


@contextlib.contextmanager
def allow_joint_frames(value: int) -> Iterator[None]:
    """Within the block, the limit is ``value``."""
    global _override
    before, _override = _override, _parse(str(value), "the joint-frame limit")
    try:
        yield
    finally:
        _override = before


def check_joint_frames(frames: int, joints: int, what: str, limit: int | None = None) -> None:
    """Raise `LimitError` when ``frames * joints`` exceeds ``limit`` (default `max_joint_frames()`).

    Args:
        frames, joints: the size asked for (from a header, before any array is built).
        what: names the input in the message, e.g. ``"walk.bvh:182"`` or ``"the uploaded motion"``.
    """
    limit = max_joint_frames() if limit is None else limit
    if frames < 0 or joints < 0:
        raise LimitError(f"{what}: negative size ({frames} frames x {joints} joints)")
    if frames * joints > limit:
        raise LimitError(f"{what}: {frames:,} frames x {joints:,} joints = {frames * joints:,} joint-frames, more than "
                         f"the limit of {limit:,}; cut the motion or raise the limit ({ENV_VAR}=N, or "
                         f"motionsynth --max-joint-frames N …)")
