"""motionsynth — learned human-motion models: one data layer, one task interface, one harness."""

from .errors import FormatError, MotionsynthError, SkeletonMismatchError
from .motion import Motion
from .skeleton import Skeleton

__version__ = "0.1.0"
__all__ = ["Motion", "Skeleton", "MotionsynthError", "FormatError", "SkeletonMismatchError", "__version__"]
