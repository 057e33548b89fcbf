"""Noise schedules and the closed forms of the forward process (thesis §2.4, eq. 2.4–2.9, 2.14, 2.15).

Timesteps are 0-based indices: index ``t`` in ``0 … T-1`` is the thesis's step ``t + 1``, so ``alpha_bars[t]`` is
ᾱ_{t+1} and ``alpha_bars_prev[0]`` is ᾱ_0 = 1. ``t`` is always a ``(B,)`` long tensor; per-step coefficients are
gathered at ``t`` and broadcast over the trailing dimensions of ``(B, ...)`` inputs. The tables are float64; they are
cast to the input's dtype only after gathering.

Two misprints of the draft are written correctly here: the x_t coefficient of the posterior mean (eq. 2.8) is
√α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), not √ᾱ_t (…); and its ε form (eq. 2.8, Algorithm 2 line 4) is
(x_t − β_t / √(1 − ᾱ_t) · ε) / √α_t. Algorithm 1 noises with √ᾱ_t, as eq. 2.7 does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PREDICTIONS = ("eps", "x0")  # what a denoiser predicts: the noise ε (Ho et al.) or the clean sample x0 (MDM)


class NoiseSchedule:
    """A variance schedule {β_t} of ``T`` steps and every table derived from it (all ``(T,)`` float64, on the CPU
    whatever the default device — `gather` moves what it picks to the sample's device).

    ``betas`` β_t; ``alphas`` α_t = 1 − β_t; ``alpha_bars`` ᾱ_t = ∏ α_i; ``alpha_bars_prev`` ᾱ_{t−1} (1 at the first
    step); ``posterior_variance`` β̃_t (eq. 2.9, 0 at the first step); ``posterior_log_variance`` log β̃_t with the
    first step's 0 replaced by β̃ of the second (finite); ``posterior_mean_coef_x0`` / ``posterior_mean_coef_xt`` the
    two coefficients of μ̃_t (eq. 2.8).
    """

    def __init__(self, betas: Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64, device="cpu").flatten()
        if betas.numel() < 1 or not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("betas must be a non-empty sequence in (0, 1]")
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)
        self.alpha_bars_prev = torch.cat([betas.new_ones(1), self.alpha_bars[:-1]])
        one_minus = 1.0 - self.alpha_bars
        self.posterior_variance = betas * (1.0 - self.alpha_bars_prev) / one_minus
        self.posterior_log_variance = torch.log(torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
                                                if len(betas) > 1 else betas)
        self.posterior_mean_coef_x0 = betas * self.alpha_bars_prev.sqrt() / one_minus
        self.posterior_mean_coef_xt = (1.0 - self.alpha_bars_prev) * self.alphas.sqrt() / one_minus

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float | None = None, beta_end: float | None = None) -> NoiseSchedule:
        """β_t linear from ``beta_start`` to ``beta_end``; by default Ho et al.'s 1e-4 … 0.02 at T = 1000, scaled by
        1000 / T so that other T keep about the same ᾱ_T (Nichol & Dhariwal)."""
        scale = 1000.0 / T
        start = scale * 1e-4 if beta_start is None else beta_start
        end = scale * 0.02 if beta_end is None else beta_end
        return cls(torch.linspace(start, end, T, dtype=torch.float64, device="cpu"))

    @staticmethod
    def cosine_alpha_bar(t: Tensor | float, T: int, s: float = 0.008) -> Tensor:
        """ᾱ(t) = f(t) / f(0), f(t) = cos²((t/T + s) / (1 + s) · π/2) (eq. 2.15), at real ``t`` in [0, T]."""
        t = torch.as_tensor(t, dtype=torch.float64, device=t.device if isinstance(t, Tensor) else "cpu")

        def f(u: Tensor) -> Tensor:
            return torch.cos((u / T + s) / (1 + s) * (math.pi / 2)) ** 2

        return f(t) / f(torch.zeros((), dtype=torch.float64, device=t.device))

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Nichol & Dhariwal's cosine schedule: β_t = min(1 − ᾱ(t) / ᾱ(t − 1), ``max_beta``) (thesis §2.4.1) with
        ᾱ of eq. 2.15, so ``alpha_bars`` equals eq. 2.15 wherever the clip is inactive (all but the last steps)."""
        ab = cls.cosine_alpha_bar(torch.arange(T + 1, dtype=torch.float64, device="cpu"), T, s)
        return cls((1.0 - ab[1:] / ab[:-1]).clamp(max=max_beta))

    @property
    def T(self) -> int:
        return len(self.betas)

    @staticmethod
    def gather(table: Tensor, t: Tensor, x: Tensor) -> Tensor:
        """``table[t]`` shaped ``(B, 1, …, 1)`` to broadcast against ``x`` of shape ``(B, ...)``, in x's dtype."""
        return table.to(x.device)[t.to(x.device)].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, a draw of q(x_t | x0) (eq. 2.7, the closed form of eq. 2.4–2.6).
        ``x0``, ``noise``: ``(B, ...)``; ``t``: ``(B,)`` long. Returns ``(B, ...)``."""
        ab = self.gather(self.alpha_bars, t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean μ̃_t(x_t, x0) (eq. 2.8, ``(B, ...)``) and variance β̃_t (eq. 2.9, ``(B, 1, …)``) of q(x_{t−1} | x_t, x0)."""
        c_x0, c_xt = self.gather(self.posterior_mean_coef_x0, t, x_t), self.gather(self.posterior_mean_coef_xt, t, x_t)
        mean = c_x0 * x0 + c_xt * x_t
        return mean, self.gather(self.posterior_variance, t, x_t)

    def x0_from_eps(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t, eq. 2.7 solved for x0. ``(B, ...)``."""
        ab = self.gather(self.alpha_bars, t, x_t)
        return (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()

    def eps_from_x0(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """ε = (x_t − √ᾱ_t x0) / √(1 − ᾱ_t), eq. 2.7 solved for ε. ``(B, ...)``."""
        ab = self.gather(self.alpha_bars, t, x_t)
        return (x_t - ab.sqrt() * x0) / (1.0 - ab).sqrt()


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, not {prediction!r}")
