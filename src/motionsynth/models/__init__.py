"""The networks (`torch.nn.Module`s) of every model family, and the blocks they share. Networks know nothing of tasks:
the task methods that use them are in `motionsynth.methods`, the table that pairs the two is `motionsynth.registry`."""

from .hmvae import HMVAE, HMVAEConfig
from .meva import MEVA, MEVAConfig, MotionVAE, MotionVAEConfig
from .trajectory import TrajectoryConfig, TrajectoryModel

__all__ = ["HMVAE", "HMVAEConfig", "MEVA", "MEVAConfig", "MotionVAE", "MotionVAEConfig", "TrajectoryModel",
           "TrajectoryConfig"]
