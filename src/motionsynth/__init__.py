"""motionsynth — learned human-motion models: one data layer, one task interface, one harness.

The names below are imported on first use so that ``import motionsynth.cli`` (and ``motionsynth --help``) start fast.
"""

from .errors import FormatError, MotionsynthError, SkeletonMismatchError

__version__ = "0.1.0"
__all__ = ["Motion", "Skeleton", "MotionsynthError", "FormatError", "SkeletonMismatchError", "__version__"]


def __getattr__(name: str):
    if name == "Motion":
        from .motion import Motion

        return Motion
    if name == "Skeleton":
        from .skeleton import Skeleton

        return Skeleton
    raise AttributeError(f"module 'motionsynth' has no attribute {name!r}")
