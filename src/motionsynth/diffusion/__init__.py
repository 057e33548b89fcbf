"""Gaussian diffusion as the thesis draft writes it (``../shared/seeds/004_…txt``, §2.4): noise schedules (the forward
process, its posterior, L_simple) and samplers (ancestral DDPM, DDIM, classifier-free guidance), as small objects that
know nothing of the network — a sampler takes any ``denoise(x_t, t) -> prediction`` callable."""

from .sampling import cfg, ddim_sample, ddim_timesteps, ddpm_sample, impose, predict_x0_eps, sdedit_start
from .schedule import PREDICTIONS, NoiseSchedule

__all__ = ["NoiseSchedule", "PREDICTIONS", "cfg", "ddim_sample", "ddim_timesteps", "ddpm_sample", "impose",
           "predict_x0_eps", "sdedit_start"]
