"""Samplers over a `NoiseSchedule` and any denoiser (thesis §2.4: Algorithm 2; DDIM, Song et al. 2021; classifier-free
guidance, Ho & Salimans 2021).

A denoiser is a callable ``denoise(x_t, t) -> prediction``: ``x_t`` of shape ``(B, ...)``, ``t`` a ``(B,)`` long tensor
of 0-based step indices (see `schedule`), the prediction of the same shape as ``x_t`` — the noise ε when
``prediction="eps"``, the clean sample x0 when ``prediction="x0"``. Samplers run without gradients; a denoiser that needs
them (classifier guidance) turns them on itself. Every sampler takes

- ``generator``: the `torch.Generator` of every draw (x_T and the per-step noise), for reproducible samples; on the
  device of the samples;
- ``inpaint(x, t) -> x``: called after every step with the new sample and the index ``t`` of its noise level
  (``(B,)``, −1 for the final clean sample), to re-impose an observed region at that level (`impose`);
- ``start=(x_t0, t0)``: begin at step ``t0`` from a given ``x_t0`` instead of from pure noise at ``T − 1`` — SDEdit
  (`sdedit_start` noises an input to level ``t0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import MotionsynthError
from .schedule import NoiseSchedule, _check_prediction

Denoise = Callable[[Tensor, Tensor], Tensor]
Inpaint = Callable[[Tensor, Tensor], Tensor]
Start = tuple[Tensor, int]


def predict_x0_eps(schedule: NoiseSchedule, denoise: Denoise, x: Tensor, t: Tensor, prediction: str = "eps",
                   clip: float | None = None) -> tuple[Tensor, Tensor]:
    """The denoiser's x0 and ε at ``(x, t)``, each ``(B, ...)``, one from the other by eq. 2.7. With ``clip``, x0 is
    clamped to [−clip, clip] and ε recomputed from the clamped x0."""
    out = denoise(x, t)
    x0 = schedule.x0_from_eps(x, t, out) if prediction == "eps" else out
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
    eps = out if prediction == "eps" and clip is None else schedule.eps_from_x0(x, t, x0)
    return x0, eps


def _begin(schedule: NoiseSchedule, shape: tuple[int, ...] | None, start: Start | None, prediction: str,
           generator: torch.Generator | None, device: Any, dtype: torch.dtype) -> tuple[Tensor, int]:
    _check_prediction(prediction)
    if start is None:
        if shape is None:
            raise ValueError("give the sample shape or a start (x_t0, t0)")
        return torch.randn(shape, generator=generator, device=device, dtype=dtype), schedule.T - 1
    x, t0 = start
    if not 0 <= int(t0) < schedule.T:
        raise MotionsynthError(f"start step {t0} out of range: 0 … {schedule.T - 1}")
    return x, int(t0)


def _full(x: Tensor, i: int) -> Tensor:
    return torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)


@torch.no_grad()
def ddpm_sample(schedule: NoiseSchedule, denoise: Denoise, shape: tuple[int, ...] | None = None, *,
                prediction: str = "eps", variance: str = "beta_tilde", clip: float | None = None,
                generator: torch.Generator | None = None, inpaint: Inpaint | None = None, start: Start | None = None,
                device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Ancestral sampling (Algorithm 2): x_{t−1} = μ̃_t(x_t, x̂0) + σ_t z, z = 0 at the last step, over every step from
    ``T − 1`` (or ``start``'s t0) down to 0. μ̃ is the posterior mean (eq. 2.8) at the denoiser's x̂0, which for an ε
    prediction is Algorithm 2's (x_t − β_t / √(1 − ᾱ_t) ε̂) / √α_t. ``variance``: σ_t² = β̃_t (``"beta_tilde"``, eq. 2.9,
    optimal for a deterministic x0) or β_t (``"beta"``, optimal for x0 ~ N(0, I)). Returns x0, ``shape`` or
    ``start``'s shape ``(B, ...)``."""
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"variance must be 'beta' or 'beta_tilde', not {variance!r}")
    x, t0 = _begin(schedule, shape, start, prediction, generator, device, dtype)
    table = schedule.betas if variance == "beta" else schedule.posterior_variance
    for i in range(t0, -1, -1):
        t = _full(x, i)
        x0, _ = predict_x0_eps(schedule, denoise, x, t, prediction, clip)
        x, _ = schedule.q_posterior(x0, x, t)
        if i > 0:
            x = x + math.sqrt(table[i]) * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if inpaint is not None:
            x = inpaint(x, t - 1)
    return x


def ddim_timesteps(t0: int, steps: int) -> list[int]:
    """``steps`` step indices evenly spaced from ``t0`` down to 0 (both included; rounded, so all distinct), for
    1 ≤ steps ≤ t0 + 1; ``steps = t0 + 1`` is every step."""
    if not 1 <= steps <= t0 + 1:
        raise MotionsynthError(f"sampling steps must be in 1 … {t0 + 1}, not {steps}")
    if steps == 1:
        return [t0]
    return torch.linspace(t0, 0, steps, dtype=torch.float64).round().long().tolist()


@torch.no_grad()
def ddim_sample(schedule: NoiseSchedule, denoise: Denoise, shape: tuple[int, ...] | None = None, *, steps: int = 50,
                eta: float = 0.0, prediction: str = "eps", clip: float | None = None,
                generator: torch.Generator | None = None, inpaint: Inpaint | None = None, start: Start | None = None,
                device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """DDIM (Song et al. 2021, eq. 12) over ``steps`` evenly spaced steps (`ddim_timesteps`): from step t to the next
    kept step s (ᾱ_s = 1 after the last),

        x_s = √ᾱ_s x̂0 + √(1 − ᾱ_s − σ²) ε̂ + σ z,   σ = η √((1 − ᾱ_s) / (1 − ᾱ_t)) √(1 − ᾱ_t / ᾱ_s).

    η = 0 is deterministic (the probability-flow ODE, discretised); η = 1 with every step is DDPM with σ² = β̃ (and
    draws the same noise as `ddpm_sample`). Returns x0, ``shape`` or ``start``'s shape ``(B, ...)``."""
    if eta < 0:
        raise MotionsynthError(f"eta must be ≥ 0, not {eta}")
    x, t0 = _begin(schedule, shape, start, prediction, generator, device, dtype)
    ts = ddim_timesteps(t0, steps)
    ab = schedule.alpha_bars.tolist()
    for i, s in zip(ts, ts[1:] + [-1]):
        x0, eps = predict_x0_eps(schedule, denoise, x, _full(x, i), prediction, clip)
        ab_t, ab_s = ab[i], (ab[s] if s >= 0 else 1.0)
        sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
        x = math.sqrt(ab_s) * x0 + math.sqrt(max(1 - ab_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if inpaint is not None:
            x = inpaint(x, _full(x, s))
    return x


def sdedit_start(schedule: NoiseSchedule, x0: Tensor, t0: int, generator: torch.Generator | None = None) -> Start:
    """``(x_t0, t0)``: ``x0`` ``(B, ...)`` noised to step ``t0`` by eq. 2.7, the ``start`` of SDEdit (denoise an input
    by noising it to a level and sampling back)."""
    if not 0 <= t0 < schedule.T:
        raise MotionsynthError(f"noise level {t0} out of range: 0 … {schedule.T - 1}")
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return schedule.q_sample(x0, _full(x0, t0), noise), t0


def impose(schedule: NoiseSchedule, known: Tensor, mask: Tensor,
           generator: torch.Generator | None = None) -> Inpaint:
    """An ``inpaint`` hook that replaces the ``mask``ed entries (bool, broadcastable to ``known``'s ``(B, ...)``) of
    each new sample by ``known`` noised to the sample's level (eq. 2.7, fresh noise every step), or by ``known``
    itself at the end (t = −1): the observed region re-imposed at every step (RePaint without resampling)."""

    def hook(x: Tensor, t: Tensor) -> Tensor:
        noise = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
        noisy = schedule.q_sample(known, t.clamp(min=0), noise)
        clean = (t < 0).reshape(-1, *([1] * (known.dim() - 1)))
        return torch.where(mask, torch.where(clean, known, noisy), x)

    return hook


def cfg(denoise: Callable[[Tensor, Tensor, Any], Tensor], cond: Any, scale: float,
        both: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None) -> Denoise:
    """Classifier-free guidance (Ho & Salimans 2021): the denoiser ``(x, t) -> (1 + w) f(x, t, cond) − w f(x, t, None)``
    for ``f = denoise`` and ``w = scale`` ≥ 0, where ``None`` is the dropped (unconditional) condition. w = 0 is the
    plain conditional model (one call per step); MDM's "guidance scale" s is 1 + w. The combination is affine, so it
    means the same for an ε and an x0 prediction. ``both`` (optional): ``(x, t) -> (f(x, t, cond), f(x, t, None))``
    in one call — e.g. one network batch of 2B windows, faster than two calls of B when B is small."""
    if not scale >= 0:
        raise MotionsynthError(f"guidance scale must be ≥ 0, not {scale}")
    if scale == 0:
        return lambda x, t: denoise(x, t, cond)

    def guided(x: Tensor, t: Tensor) -> Tensor:
        conditional, unconditional = both(x, t) if both else (denoise(x, t, cond), denoise(x, t, None))
        return conditional + scale * (conditional - unconditional)

    return guided
