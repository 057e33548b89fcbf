"""Noise models for the denoising benchmark: clean motion in, a corrupted copy out, deterministic under a seed.

Our motions are local rotations + a root trajectory, so noise is added there (noise on global joint positions is
not representable as a `Motion`). Only joints that move are corrupted: the moving root and its descendants
(`Skeleton.subtree(skeleton.root)`); static ancestors such as Bandai's ``joint_Root`` are left alone, since a
rotation there would swing the whole capture volume about the origin.

Models (constants in `NoiseConfig`, recorded in every benchmark JSON):

- ``gaussian``: every frame, every moving joint gets an independent rotation error whose rotation vector has
  i.i.d. N(0, σ²) components (σ = ``rot_sigma_deg``), applied in the joint's frame (``q ← q · δ``); the root
  position gets i.i.d. N(0, ``root_sigma_cm``²) per axis (1 cm). σ = 1.86° was calibrated with
  `calibrate_rotation_sigma` so that the mean joint displacement (MPJPE of the noisy input) is 3.0 cm on 64
  validation windows (128 frames) of Bandai Namco 2.
- ``spikes``: sparse large outliers: a fraction ``spike_rate`` (2 %) of the (frame, moving joint) entries get a
  rotation error of an angle uniform in ``spike_deg`` (30–60°) about a uniformly random axis.
- ``dropped``: a fraction ``drop_rate`` (10 %) of the frames are lost in runs of 1–5 frames (``drop_run``) and hold
  the last good frame (whole pose and root), as a tracker that loses the person does. Runs never touch frame 0 and
  never touch each other, so each one holds a real observation.
- ``mixed``: what a video pose estimator produces: a slow drift (a per-joint rotation bias and a root-position bias,
  each a sum of three sinusoids of 0.1–0.5 Hz with random phases, RMS ``drift_deg`` / ``drift_cm`` per axis), then
  ``gaussian``, then ``spikes``, then ``dropped`` (the tracker holds its last, already noisy, output).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import rotations as R
from ..errors import MotionsynthError
from ..motion import Motion
from ..skeleton import Skeleton

NOISE_MODELS = ("gaussian", "spikes", "dropped", "mixed")


@dataclass(frozen=True)
class NoiseConfig:
    """Magnitudes of the noise models (degrees, cm, fractions). The defaults are the benchmark's."""

    rot_sigma_deg: float = 1.86  # calibrate_rotation_sigma(64 val windows of 128 frames, 3 cm, root σ 1 cm)
    root_sigma_cm: float = 1.0
    spike_rate: float = 0.02
    spike_deg: tuple[float, float] = (30.0, 60.0)
    drop_rate: float = 0.10
    drop_run: tuple[int, int] = (1, 5)
    drift_deg: float = 3.0
    drift_cm: float = 3.0
    drift_hz: tuple[float, float] = (0.1, 0.5)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def add_noise(motion: Motion, model: str, seed, config: NoiseConfig = NoiseConfig()) -> Motion:
    """A corrupted copy of ``motion`` under noise ``model`` (one of `NOISE_MODELS`).

    ``seed``: anything `numpy.random.default_rng` accepts (the harness passes ``[seed, window index, model index]``),
    so every window gets its own, reproducible noise.
    """
    if model not in NOISE_MODELS:
        raise MotionsynthError(f"unknown noise model {model!r}; choose from {', '.join(NOISE_MODELS)}")
    rng = np.random.default_rng(seed)
    out = motion.copy()
    moving = np.asarray(motion.skeleton.subtree(motion.skeleton.root))
    if model == "mixed":
        _drift(out, moving, rng, config)
    if model in ("gaussian", "mixed"):
        _gaussian(out, moving, rng, config)
    if model in ("spikes", "mixed"):
        _spikes(out, moving, rng, config)
    if model in ("dropped", "mixed"):
        hold = dropped_frames(out.num_frames, rng, config.drop_rate, config.drop_run)
        out.rotations, out.root_positions = out.rotations[hold], out.root_positions[hold]
        if out.translations is not None:
            out.translations = out.translations[hold]
    return out


def noise_model_list(models) -> list[str]:
    """A noise model name or a sequence of them → a non-empty list of `NOISE_MODELS`; ValueError otherwise (a
    config's ``noise_models``)."""
    models = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in models if m not in NOISE_MODELS]
    if unknown or not models:
        raise ValueError(f"noise_models must be a non-empty list of {', '.join(NOISE_MODELS)}; got {models}")
    return models


def corrupt_windows(raw: np.ndarray, skeleton: Skeleton, fps: float, seeds: list, models: list[str] | tuple[str, ...],
                    config: NoiseConfig = NoiseConfig()) -> list[Motion]:
    """Clean raw feature windows (B, T, D) (`features.encode`'s layout) → B noisy Motions: window b is decoded at
    ``fps`` and corrupted by `add_noise` with ``seeds[b]`` under one of ``models``, drawn with that same seed — what
    the learned denoisers train on."""
    from .features import decode

    out = []
    for window, seed in zip(raw, seeds):
        model = models[int(np.random.default_rng(seed).integers(len(models)))]
        out.append(add_noise(decode(window, skeleton, fps), model, seed, config))
    return out


def _perturb(motion: Motion, joints: np.ndarray, rotvecs: np.ndarray, frames=slice(None)) -> None:
    """Right-multiply the local rotations of ``joints`` by the rotations ``rotvecs`` (T', len(joints), 3)."""
    q = motion.rotations[frames][:, joints]
    motion.rotations[frames, joints] = R.quat_normalize(R.quat_mul(q, R.axis_angle_to_quat(rotvecs)))


def _gaussian(motion: Motion, joints: np.ndarray, rng: np.random.Generator, c: NoiseConfig) -> None:
    T = motion.num_frames
    _perturb(motion, joints, rng.normal(0.0, np.radians(c.rot_sigma_deg), (T, len(joints), 3)))
    motion.root_positions = motion.root_positions + rng.normal(0.0, c.root_sigma_cm, (T, 3))


def _spikes(motion: Motion, joints: np.ndarray, rng: np.random.Generator, c: NoiseConfig) -> None:
    T = motion.num_frames
    hit = rng.random((T, len(joints))) < c.spike_rate
    axis = rng.normal(size=(T, len(joints), 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.radians(rng.uniform(*c.spike_deg, (T, len(joints))))
    _perturb(motion, joints, axis * (angle * hit)[..., None])


def _drift(motion: Motion, joints: np.ndarray, rng: np.random.Generator, c: NoiseConfig) -> None:
    t = np.arange(motion.num_frames) / motion.fps

    def smooth(shape, rms):
        freq = rng.uniform(*c.drift_hz, (3, *shape))
        phase = rng.uniform(0, 2 * np.pi, (3, *shape))
        # three unit-amplitude sinusoids have RMS sqrt(3/2); rescale to the target RMS
        tt = t.reshape(1, -1, *([1] * len(shape)))
        waves = np.sin(2 * np.pi * freq[:, None] * tt + phase[:, None]).sum(0)
        return waves * rms / np.sqrt(1.5)

    _perturb(motion, joints, smooth((len(joints), 3), np.radians(c.drift_deg)))
    motion.root_positions = motion.root_positions + smooth((3,), c.drift_cm)


def dropped_frames(num_frames: int, rng: np.random.Generator, rate: float = 0.10,
                   run: tuple[int, int] = (1, 5), max_tries: int = 10_000) -> np.ndarray:
    """(T,) index of the frame each frame shows: itself, or for a dropped frame the last good frame before it.

    ``round(rate * T)`` frames are dropped in runs of ``run[0]..run[1]`` frames (the last run may be shorter to hit
    the count), never at frame 0 and with at least one good frame between runs.
    """
    target = int(round(rate * num_frames))
    dropped = np.zeros(num_frames, dtype=bool)
    tries = 0
    while dropped.sum() < target and tries < max_tries:
        tries += 1
        length = min(int(rng.integers(run[0], run[1] + 1)), target - int(dropped.sum()))
        start = int(rng.integers(1, num_frames - length + 1))
        if dropped[max(start - 1, 0):start + length + 1].any():
            continue
        dropped[start:start + length] = True
    good = np.where(dropped, 0, np.arange(num_frames))
    return np.maximum.accumulate(good)


def calibrate_rotation_sigma(motions: list[Motion], target_cm: float = 3.0, root_sigma_cm: float = 1.0,
                             seed: int = 0, lo: float = 0.05, hi: float = 10.0, steps: int = 20) -> float:
    """The ``rot_sigma_deg`` (bisection on a log scale) at which ``gaussian`` noise moves the joints by
    ``target_cm`` on average (mean over frames and joints of the FK displacement) on ``motions``.

    Used once to set `NoiseConfig.rot_sigma_deg` on the validation split; kept so the choice can be re-made.
    """
    clean = [m.global_positions() for m in motions]

    def displacement(sigma):
        cfg = NoiseConfig(rot_sigma_deg=sigma, root_sigma_cm=root_sigma_cm)
        errs = [np.linalg.norm(add_noise(m, "gaussian", [seed, i], cfg).global_positions() - c, axis=-1).mean()
                for i, (m, c) in enumerate(zip(motions, clean))]
        return float(np.mean(errs))

    for _ in range(steps):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if displacement(mid) < target_cm else (lo, mid)
    return float(np.sqrt(lo * hi))
