"""The diffusion schedules and samplers against closed forms (thesis §2.4: eq. 2.4–2.9, 2.14, 2.15, Algorithm 2; DDIM;
classifier-free guidance). Tiny float64 tensors; the denoisers are exact oracles, so every check is of the maths."""

from __future__ import annotations

import math

import pytest
import torch

from motionsynth.diffusion import (
    NoiseSchedule,
    cfg,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    impose,
    predict_x0_eps,
    sdedit_start,
)
from motionsynth.errors import MotionsynthError

F64 = torch.float64
X0 = torch.tensor([0.7, -1.3, 0.2, 2.0], dtype=F64)  # the one clean sample the oracles know


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def steps(x: torch.Tensor, i: int) -> torch.Tensor:
    return torch.full((x.shape[0],), i, dtype=torch.long)


def oracle(schedule: NoiseSchedule, prediction: str = "eps"):
    """The denoiser that knows x0 = X0: its exact ε (or X0 itself)."""
    if prediction == "x0":
        return lambda x, t: X0.expand_as(x).clone()
    return lambda x, t: schedule.eps_from_x0(x, t, X0.expand_as(x))


def gaussian_oracle(schedule: NoiseSchedule, sd: float):
    """The exact ε-predictor for data x0 ~ N(0, sd² I): E[ε | x_t] = √(1 − ᾱ) x_t / (ᾱ sd² + 1 − ᾱ)."""
    def denoise(x, t):
        ab = schedule.gather(schedule.alpha_bars, t, x)
        return (1 - ab).sqrt() * x / (ab * sd**2 + 1 - ab)
    return denoise


# --- schedules ---------------------------------------------------------------------------------------------------

def test_cosine_alpha_bar_is_eq_2_15_and_monotone():
    T, s = 1000, 0.008
    sched = NoiseSchedule.cosine(T)
    f = [math.cos(((t / T) + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    formula = torch.tensor([f[t + 1] / f[0] for t in range(T)], dtype=F64)
    unclipped = sched.betas < 0.999
    assert unclipped[: T - 1].all()  # only the very last step reaches the clip
    torch.testing.assert_close(sched.alpha_bars[unclipped], formula[unclipped], rtol=1e-10, atol=1e-13)
    assert (sched.alpha_bars[1:] < sched.alpha_bars[:-1]).all() and (sched.alpha_bars > 0).all()
    assert sched.alpha_bars_prev[0] == 1 and torch.equal(sched.alpha_bars_prev[1:], sched.alpha_bars[:-1])
    torch.testing.assert_close(NoiseSchedule.cosine_alpha_bar(torch.tensor([0.0, T / 2]), T),
                               torch.tensor([1.0, f[T // 2] / f[0]], dtype=F64))


def test_cosine_betas_clipped_at_0_999():
    T = 1000
    sched = NoiseSchedule.cosine(T)
    ab = NoiseSchedule.cosine_alpha_bar(torch.arange(T + 1, dtype=F64), T)
    raw = 1 - ab[1:] / ab[:-1]
    assert raw[-1] > 0.999  # f(T) = cos²(π/2) = 0: the unclipped last β is 1
    assert sched.betas[-1] == 0.999 and sched.betas.max() == 0.999
    torch.testing.assert_close(sched.betas, raw.clamp(max=0.999), rtol=0, atol=0)
    assert NoiseSchedule.cosine(T, max_beta=0.5).betas.max() == 0.5


def test_linear_schedule_values():
    sched = NoiseSchedule.linear(1000)
    assert sched.T == 1000
    torch.testing.assert_close(sched.betas[[0, -1]], torch.tensor([1e-4, 0.02], dtype=F64))
    torch.testing.assert_close(sched.betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=F64))
    torch.testing.assert_close(NoiseSchedule.linear(250).betas[[0, -1]], torch.tensor([4e-4, 0.08], dtype=F64))
    custom = NoiseSchedule.linear(5, 0.1, 0.5)
    torch.testing.assert_close(custom.betas, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=F64))
    products = [math.prod(1 - b for b in [0.1, 0.2, 0.3, 0.4, 0.5][: t + 1]) for t in range(5)]
    torch.testing.assert_close(custom.alpha_bars, torch.tensor(products, dtype=F64))
    torch.testing.assert_close(custom.alphas, 1 - custom.betas)
    with pytest.raises(ValueError):
        NoiseSchedule(torch.tensor([0.1, 0.0]))


def test_q_sample_moments_match_eq_2_7_and_the_chain_of_eq_2_6():
    sched, n = NoiseSchedule.linear(50), 40_000
    x0 = X0.expand(n, 4)
    for i in (0, 20, 49):
        t = torch.full((n,), i, dtype=torch.long)
        ab = sched.alpha_bars[i]
        x_t = sched.q_sample(x0, t, torch.randn(n, 4, generator=gen(i), dtype=F64))
        chain = x0.clone()  # eq. 2.6 applied i + 1 times
        for k in range(i + 1):
            chain = sched.alphas[k].sqrt() * chain + sched.betas[k].sqrt() * torch.randn(n, 4, generator=gen(100 + k),
                                                                                          dtype=F64)
        for x in (x_t, chain):
            tol = 5 * math.sqrt((1 - ab.item()) / n)
            torch.testing.assert_close(x.mean(0), ab.sqrt() * X0, rtol=0, atol=tol)
            torch.testing.assert_close(x.var(0), (1 - ab).expand(4), rtol=0.05, atol=0)


def test_posterior_is_the_gaussian_product():
    """q(x_{t−1} | x_t, x0) ∝ N(x_t; √α_t x_{t−1}, β_t) · N(x_{t−1}; √ᾱ_{t−1} x0, 1 − ᾱ_{t−1}), completed square."""
    sched = NoiseSchedule.cosine(100)
    x0, x_t = torch.randn(6, 3, generator=gen(1), dtype=F64), torch.randn(6, 3, generator=gen(2), dtype=F64)
    idx = [1, 2, 10, 50, 98, 99]
    mean, var = sched.q_posterior(x0, x_t, torch.tensor(idx))
    for row, i in enumerate(idx):
        a, b, abp = sched.alphas[i].item(), sched.betas[i].item(), sched.alpha_bars_prev[i].item()
        precision = a / b + 1 / (1 - abp)
        expected = (math.sqrt(a) * x_t[row] / b + math.sqrt(abp) * x0[row] / (1 - abp)) / precision
        torch.testing.assert_close(mean[row], expected, rtol=1e-10, atol=1e-12)
        assert var[row].item() == pytest.approx(1 / precision, rel=1e-10)
        # the ε form of eq. 2.8 (as Algorithm 2 uses it): (x_t − β_t/√(1 − ᾱ_t) ε) / √α_t
        eps = sched.eps_from_x0(x_t[row:row + 1], torch.tensor([i]), x0[row:row + 1])[0]
        eps_form = (x_t[row] - b / math.sqrt(1 - sched.alpha_bars[i].item()) * eps) / math.sqrt(a)
        torch.testing.assert_close(mean[row], eps_form, rtol=1e-9, atol=1e-10)
    # the first step: ᾱ_0 = 1, the posterior is x0 itself; its clipped log-variance is finite
    mean0, var0 = sched.q_posterior(x0, x_t, torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(mean0, x0)
    torch.testing.assert_close(var0, torch.zeros_like(var0))
    assert torch.isfinite(sched.posterior_log_variance).all()
    assert sched.posterior_log_variance[0] == sched.posterior_log_variance[1]
    torch.testing.assert_close(sched.posterior_log_variance[1:], sched.posterior_variance[1:].log())


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_x0_eps_conversions_round_trip(dtype):
    sched = NoiseSchedule.cosine(1000)
    x_t, eps = torch.randn(5, 2, 3, generator=gen(3), dtype=dtype), torch.randn(5, 2, 3, generator=gen(4), dtype=dtype)
    t = torch.tensor([0, 1, 400, 900, 998])
    x0 = sched.x0_from_eps(x_t, t, eps)
    assert x0.dtype == dtype and x0.shape == (5, 2, 3)
    torch.testing.assert_close(sched.eps_from_x0(x_t, t, x0), eps, rtol=1e-4 if dtype == torch.float32 else 1e-10,
                               atol=1e-4 if dtype == torch.float32 else 1e-10)
    torch.testing.assert_close(sched.x0_from_eps(sched.q_sample(x0, t, eps), t, eps), x0)


# --- samplers ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_samplers_recover_x0_with_an_oracle(prediction):
    sched = NoiseSchedule.cosine(200)
    for variance in ("beta", "beta_tilde"):
        out = ddpm_sample(sched, oracle(sched, prediction), (8, 4), prediction=prediction, variance=variance,
                          generator=gen(5), dtype=F64)
        torch.testing.assert_close(out, X0.expand(8, 4), rtol=0, atol=1e-8)
    for eta in (0.0, 0.5):
        out = ddim_sample(sched, oracle(sched, prediction), (8, 4), steps=10, eta=eta, prediction=prediction,
                          generator=gen(6), dtype=F64)
        torch.testing.assert_close(out, X0.expand(8, 4), rtol=0, atol=1e-8)


def test_ddim_eta0_is_deterministic_and_follows_the_ode_path():
    sched = NoiseSchedule.cosine(100)
    x_T = torch.randn(3, 4, generator=gen(7), dtype=F64)
    a = ddim_sample(sched, gaussian_oracle(sched, 0.5), start=(x_T, 99), steps=20, generator=gen(1))
    b = ddim_sample(sched, gaussian_oracle(sched, 0.5), start=(x_T, 99), steps=20, generator=gen(2))
    assert torch.equal(a, b)
    # with the x0 oracle the ODE keeps the noise direction: every x_t = √ᾱ_t X0 + √(1 − ᾱ_t) ε_T, for any S
    eps_T = sched.eps_from_x0(x_T, steps(x_T, 99), X0.expand(3, 4))
    for S in (100, 7):
        seen = []

        def record(x, t, seen=seen):
            seen.append((x, t))
            return x

        ddim_sample(sched, oracle(sched), start=(x_T, 99), steps=S, inpaint=record)
        assert len(seen) == S
        for x, t in seen:
            ab = sched.alpha_bars[t[0]] if t[0] >= 0 else torch.tensor(1.0, dtype=F64)
            torch.testing.assert_close(x, ab.sqrt() * X0 + (1 - ab).sqrt() * eps_T, rtol=0, atol=1e-9)


def test_ddim_converges_to_the_exact_ode_map_for_gaussian_data():
    """For x0 ~ N(0, sd² I) the probability-flow ODE maps x_T to x_T · sd / √(ᾱ_T sd² + 1 − ᾱ_T); DDIM (η = 0) is a
    first-order discretisation of it, so the error falls about as 1/S and is small with every step."""
    sched, sd = NoiseSchedule.cosine(400), 0.5
    x_T = torch.randn(16, 3, generator=gen(8), dtype=F64)
    abT = sched.alpha_bars[-1].item()
    exact = x_T * sd / math.sqrt(abT * sd**2 + 1 - abT)
    err = {S: (ddim_sample(sched, gaussian_oracle(sched, sd), start=(x_T, 399), steps=S) - exact).abs().max().item()
           for S in (10, 40, 400)}
    assert err[400] < 0.01 * exact.abs().max().item()
    assert err[400] < err[40] < err[10]
    assert err[10] / err[40] > 2.5  # first order: ≈ 4×


def test_ddim_eta1_over_every_step_is_ddpm_with_beta_tilde():
    sched = NoiseSchedule.cosine(60)
    denoise = gaussian_oracle(sched, 0.7)
    a = ddpm_sample(sched, denoise, (5, 3), variance="beta_tilde", generator=gen(9), dtype=F64)
    b = ddim_sample(sched, denoise, (5, 3), steps=60, eta=1.0, generator=gen(9), dtype=F64)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert ddim_timesteps(59, 60) == list(range(59, -1, -1))
    assert ddim_timesteps(999, 5) == [999, 749, 500, 250, 0] and ddim_timesteps(10, 1) == [10]


def test_ddpm_with_sigma_beta_is_exact_for_standard_normal_data():
    """For x0 ~ N(0, I) the true reverse step is N(√α_t x_t, β_t): σ² = β keeps unit variance down to x_1, and the
    last step returns its mean (z = 0, Algorithm 2 line 3): Var x0 = α_1 = 0.9. σ² = β̃ falls short when steps are
    coarse (Ho et al. §3.2)."""
    sched, n = NoiseSchedule.linear(10, 0.1, 0.5), 40_000
    var = {v: ddpm_sample(sched, gaussian_oracle(sched, 1.0), (n, 1), variance=v, generator=gen(10), dtype=F64).var()
           for v in ("beta", "beta_tilde")}
    assert var["beta"].item() == pytest.approx(0.9, abs=0.03)
    assert var["beta_tilde"].item() < 0.8


def test_inpaint_hook_runs_every_step_and_pins_coordinates():
    sched = NoiseSchedule.cosine(50)
    known = torch.tensor([[3.0, -3.0, 0.0, 0.0]], dtype=F64).expand(4, 4)
    mask = torch.tensor([True, True, False, False])
    levels = []

    def record(hook):
        def wrapped(x, t):
            levels.append(int(t[0]))
            return hook(x, t)
        return wrapped

    for sample, count in ((lambda h: ddpm_sample(sched, oracle(sched), (4, 4), generator=gen(11), inpaint=h,
                                                 dtype=F64), 50),
                          (lambda h: ddim_sample(sched, oracle(sched), (4, 4), steps=8, generator=gen(12), inpaint=h,
                                                 dtype=F64), 8)):
        levels.clear()
        out = sample(record(impose(sched, known, mask, gen(13))))
        assert len(levels) == count and levels[-1] == -1 and levels == sorted(levels, reverse=True)
        assert torch.equal(out[:, :2], known[:, :2])  # pinned exactly at the end
        torch.testing.assert_close(out[:, 2:], X0[2:].expand(4, 2), rtol=0, atol=1e-8)  # the rest sampled
    assert levels == ddim_timesteps(49, 8)[1:] + [-1]


def test_sdedit_from_a_small_level_stays_close_to_the_input():
    """Noised to step t0 and sampled back, an input moves by a few noise standard deviations √(1 − ᾱ_t0) at most."""
    sched = NoiseSchedule.cosine(1000)
    x = torch.randn(4, 6, generator=gen(14), dtype=F64)
    denoise = gaussian_oracle(sched, 1.0)
    calls = []

    def counted(x_t, t):
        calls.append(int(t[0]))
        return denoise(x_t, t)

    near = ddpm_sample(sched, counted, start=sdedit_start(sched, x, 2, gen(15)), generator=gen(16))
    assert calls == [2, 1, 0]
    assert (near - x).abs().max() < 6 * (1 - sched.alpha_bars[2]).sqrt()
    near_ddim = ddim_sample(sched, denoise, start=sdedit_start(sched, x, 20, gen(15)), steps=3)
    assert (near_ddim - x).abs().max() < 6 * (1 - sched.alpha_bars[20]).sqrt()
    far = ddim_sample(sched, denoise, start=sdedit_start(sched, x, 999, gen(15)), steps=10)
    assert (far - x).abs().max() > 1.0
    with pytest.raises(MotionsynthError):
        sdedit_start(sched, x, 1000)


def test_cfg_combines_conditional_and_unconditional_calls():
    calls = []

    def denoise(x, t, cond):
        calls.append(cond)
        return x * (2.0 if cond is None else 5.0)

    x, t = torch.ones(2, 3, dtype=F64), torch.zeros(2, dtype=torch.long)
    assert torch.equal(cfg(denoise, {"label": 1}, 0.0)(x, t), denoise(x, t, {"label": 1}))
    assert calls == [{"label": 1}, {"label": 1}]  # scale 0: no unconditional call
    torch.testing.assert_close(cfg(denoise, {"label": 1}, 2.5)(x, t), (1 + 2.5) * 5.0 * x - 2.5 * 2.0 * x)
    with pytest.raises(MotionsynthError):
        cfg(denoise, {"label": 1}, -0.5)
    calls.clear()
    both = cfg(denoise, {"label": 1}, 2.5, both=lambda x, t: (denoise(x, t, "both"), x * 2.0))
    torch.testing.assert_close(both(x, t), (1 + 2.5) * 5.0 * x - 2.5 * 2.0 * x)
    assert calls == ["both"]  # one call for the pair


def test_bad_arguments_raise():
    sched = NoiseSchedule.cosine(20)
    with pytest.raises(MotionsynthError):
        ddim_sample(sched, oracle(sched), (1, 4), steps=21)
    with pytest.raises(MotionsynthError):
        ddim_sample(sched, oracle(sched), (1, 4), steps=0)
    with pytest.raises(MotionsynthError):
        ddpm_sample(sched, oracle(sched), start=(torch.zeros(1, 4), 20))
    with pytest.raises(ValueError):
        ddpm_sample(sched, oracle(sched), (1, 4), prediction="v")
    with pytest.raises(ValueError):
        ddpm_sample(sched, oracle(sched), (1, 4), variance="learned")
    with pytest.raises(ValueError):
        ddpm_sample(sched, oracle(sched))
    x = torch.randn(2, 4, dtype=F64)
    x0, eps = predict_x0_eps(sched, oracle(sched), x, steps(x, 5), clip=1.0)
    assert x0.abs().max() <= 1.0
    torch.testing.assert_close(sched.x0_from_eps(x, steps(x, 5), eps), x0)
