"""MEVA: Luo et al., "3D Human Motion Estimation via Motion Compression and Refinement" (ACCV 2020), for motion data.

Read top to bottom: the motion VAE (§3.3) → the MEVA estimator (VME + MRR, §3.3–3.5). The denoiser the tasks and the
benchmark call is `motionsynth.methods.meva.MEVAMethod`.

The paper estimates SMPL motion from video. Here the input is a NOISY per-frame pose sequence — the output of any
pose estimator, read as BVH, npz or AMASS — and the target the clean motion, so MEVA is a denoiser
(``tasks.denoise_mask``). During training the noisy input is made on the fly from clean training windows with the
benchmark's noise models (`motionsynth.data.noise.add_noise`, ``mixed`` by default).

Data. Inputs and outputs are NORMALISED feature windows (B, W, D) as `WindowDataset` yields them,
``D = 6 J + ROOT_DIM``: every joint's local 6D rotation (the root's with its heading removed), then the root block
(height, planar velocity in the heading frame, heading velocity). Models keep the normalisation statistics as
buffers (`StatsMixin`) and denormalise where rotations or positions are needed.

Motion VAE (family ``mvae``). A bidirectional GRU encodes a window of W frames into one latent z (size
``latent``); a GRU decoder started from z (initial state ``tanh(Linear(z))``, and z with a sinusoidal encoding of
the frame's position in the window as input at every step) gives back W frames. Fig. 3's layer sizes are not in the
paper's text; ours are CPU-sized (``cpu``) or larger (``paper``, with the paper's W = 90). Loss, eq. 2:
``‖x̃ - x‖²`` (mean squared error of the raw 6D rotations; the root block, which SMPL poses lack, is added as a mean
squared error in normalised units with weight ``root_weight``) plus ``β / S_z Σ_j (μ_j² + σ_j² - 1 - 2 log σ_j)``
(eq. 2's KL form, averaged over latent dimensions and the batch). Eq. 2 has no joint-position term, so the VAE has
none. The three augmentations of §3.3 (speed change, left/right mirror, random root rotation) are the trainer's
``train.augment`` (`motionsynth.data.augment.Augment`), see ``configs/mvae.yaml``; ``configs/mvae-noaug.yaml`` is the
ablation without them (Table 3's "No Aug"). The random root rotation is a yaw about +Y (``yaw: true``,
``full_sphere: false``; `AUGMENT` says why not the paper's full sphere).

MEVA (family ``meva``). A spatio-temporal encoder (STE: a bidirectional GRU over the noisy frames) gives per-frame
features f_t. The variational motion estimator (VME) maps them (mean over time and the final states) to a latent z
of the pretrained motion VAE — E_motion — and the VAE's frozen decoder D_vae turns z into the coarse, smooth
motion. The motion residual regressor (MRR, HMR-style iterative regression, initialised from the coarse estimate
instead of the mean pose) then adds back detail: ``mrr_iterations`` times, a per-frame MLP of
``[f_t, noisy frame, current estimate]`` predicts a residual that is added to the estimate. ``mrr_iterations: 0`` is
Table 4's "VME only". Loss, eq. 3 for our data (3D joints and SMPL pose supervision; no 2D term, no shape): raw 6D
rotation MSE + ``root_weight`` × root-block MSE (normalised) + ``lambda_joints`` × MSE of the joint positions by
forward kinematics with the root at the origin, in metres (eq. 4's root-aligned 3D joints). The paper has no
acceleration term (the smoothness comes from the VAE's subspace); the acceleration error is logged in validation.
The motion VAE must be trained first: ``model.vae_checkpoint`` is its checkpoint folder; its hyper-parameters are
copied into ``model.vae`` (so a MEVA checkpoint is self-contained) and its weights into the frozen ``vae``
submodule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import read_checkpoint, resolve_model
from ..data.features import encode
from ..data.noise import corrupt_windows, noise_model_list
from ..errors import MotionsynthError
from ..skeleton import Skeleton
from .common import StatsMixin, window_seeds
from .layers import LOGVAR_RANGE

__all__ = ["MotionVAEConfig", "MotionVAE", "MEVAConfig", "MEVA", "AUGMENT"]


# ---- shared pieces ------------------------------------------------------------------------------------------------
def _check_positive(cfg, names: tuple[str, ...]) -> None:
    for name in names:
        if int(getattr(cfg, name)) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(cfg, name)}")


def _feature_losses(model, pred: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw 6D rotation MSE (``rot``) and normalised root-block MSE (``root``) of normalised features (B, T, D)."""
    r = model.rot_dim
    std = model.feat_std[:r]
    return {"rot": F.mse_loss(pred[..., :r] * std, x[..., :r] * std),  # == MSE of raw 6D (the means cancel)
            "root": F.mse_loss(pred[..., r:], x[..., r:])}



def _time_encoding(T: int, channels: int, like: torch.Tensor) -> torch.Tensor:
    """(T, channels) sin/cos of the frame's position s = t / (T - 1) in the window at frequencies π·1, π·2, …"""
    s = torch.linspace(0.0, 1.0, T, dtype=like.dtype, device=like.device)[:, None]
    k = torch.arange(1, channels // 2 + 1, dtype=like.dtype, device=like.device)[None]
    return torch.cat([torch.sin(torch.pi * k * s), torch.cos(torch.pi * k * s)], -1)


# ---- the motion VAE (§3.3) ----------------------------------------------------------------------------------------
AUGMENT = {"p_mirror": 0.5, "speed_range": [0.8, 1.25], "yaw": True, "full_sphere": False}
"""§3.3's three augmentations as `Augment` keyword arguments: left/right flip, speed (frame-rate) change, random root
rotation. MEVA rotates camera-frame SMPL roots over the whole sphere; our motion is in a Y-up world and the features
are heading-free, so the rotation is a yaw — which leaves the features unchanged (kept for other representations).
A full-sphere rotation turns characters upside down, far from the data (measured: the training loss jumped between
35 and 320 within 100 steps), so it is off."""

@dataclass
class MotionVAEConfig:
    """Motion VAE hyper-parameters.

    window: frames per window W (the trainer sets it to ``train.window``; the paper's is 90).
    hidden: GRU width (the encoder's per direction); layers: GRU layers of encoder and decoder.
    latent: size of z (S_z). time_channels: sin/cos position channels fed to the decoder at every step.
    beta: KL weight β of eq. 2; root_weight: weight of the root-block term.
    length_unit: file units per metre (100 for cm data), for the logged joint error.
    """

    window: int = 64
    hidden: int = 256
    layers: int = 1
    latent: int = 64
    time_channels: int = 8
    beta: float = 1e-3
    root_weight: float = 1.0
    length_unit: float = 100.0

    def __post_init__(self):
        _check_positive(self, ("window", "hidden", "layers", "latent"))
        if self.window < 2:
            raise ValueError(f"window must be at least 2 frames, got {self.window}")

    @classmethod
    def preset(cls, name: str, **overrides) -> MotionVAEConfig:
        """``cpu``: a few 10⁵ parameters, W = 64. ``paper``: W = 90 (the paper's), GRU width 512, 2 layers,
        latent 128 (the paper's Fig. 3 sizes are not in its text)."""
        if name == "cpu":
            return cls(**overrides)
        if name == "paper":
            return cls(**{"window": 90, "hidden": 512, "layers": 2, "latent": 128, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


class MotionVAE(StatsMixin, nn.Module):
    """GRU motion VAE over W-frame windows of normalised features (B, W, D). See the module docstring."""

    Config = MotionVAEConfig

    def __init__(self, config: MotionVAEConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c = config
        self._init_stats(skeleton)
        D = self.rot_dim + self.root_dim
        self.encoder = nn.GRU(D, c.hidden, c.layers, batch_first=True, bidirectional=True)
        self.to_latent = nn.Sequential(nn.Linear(4 * c.hidden, c.hidden), nn.LeakyReLU(0.2),
                                       nn.Linear(c.hidden, 2 * c.latent))
        self.init_state = nn.Linear(c.latent, c.layers * c.hidden)
        self.decoder = nn.GRU(c.latent + c.time_channels // 2 * 2, c.hidden, c.layers, batch_first=True)
        self.out = nn.Linear(c.hidden, D)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> MotionVAE:
        return cls(config if isinstance(config, MotionVAEConfig) else MotionVAEConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, W, D) normalised features → (mu, logvar), each (B, latent)."""
        out, h = self.encoder(x)  # out (B, W, 2H); h (2 layers·directions, B, H)
        summary = torch.cat([out.mean(1), h[-2], h[-1]], -1)  # mean over time, last layer's final states
        mu, logvar = self.to_latent(summary).chunk(2, -1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent) → (B, W, D) normalised features."""
        c, B = self.config, z.shape[0]
        h0 = torch.tanh(self.init_state(z)).reshape(B, c.layers, c.hidden).transpose(0, 1).contiguous()
        time = _time_encoding(c.window, c.time_channels, z).expand(B, -1, -1)
        out, _ = self.decoder(torch.cat([z[:, None].expand(-1, c.window, -1), time], -1), h0)
        return self.out(out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(B, W, D) → (B, W, D): decode the posterior means."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n windows from the prior → (n, W, D) normalised features."""
        z = torch.randn(n, self.config.latent, generator=generator).to(self.feat_mean.device)
        return self.decode(z)

    def losses(self, x: torch.Tensor, sample: bool) -> tuple[torch.Tensor, dict]:
        """Eq. 2 on a batch (B, W, D): z sampled (training) or the posterior mean (validation)."""
        c = self.config
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        pred = self.decode(z)
        logs = _feature_losses(self, pred, x)
        logs["kl"] = (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        loss = logs["rot"] + c.root_weight * logs["root"] + c.beta * logs["kl"]
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        """One loss on ``batch["features"]`` (B, W, D) → (loss, logs)."""
        return self.losses(batch["features"], sample=True)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """Losses with the posterior means, and the mean joint position error in cm (``mpjpe_cm``)."""
        x = batch["features"]
        logs = self.losses(x, sample=False)[1]
        err = (self.positions(self.reconstruct(x)) - self.positions(x)).norm(dim=-1).mean()
        logs["mpjpe_cm"] = err * 100.0
        return logs


# ---- MEVA: VME + MRR (§3.3–3.5) -----------------------------------------------------------------------------------
@dataclass
class MEVAConfig:
    """MEVA hyper-parameters.

    window: frames per window; must equal the motion VAE's (the trainer sets it to ``train.window``).
    vae_checkpoint: folder of the trained motion VAE (``motionsynth train mvae`` → ``RUN/model``). Required to train.
    vae: the motion VAE's hyper-parameters, filled from ``vae_checkpoint/config.yaml`` (kept in MEVA checkpoints,
        which therefore load without the VAE folder).
    hidden, layers: STE bidirectional GRU width (per direction) and layers.
    mrr_hidden, mrr_iterations: MRR MLP width (two hidden layers) and refinement iterations (0: VME only).
    lambda_joints, root_weight: loss weights of the joint-position and root-block terms.
    noise_models: noise models (`data.noise.NOISE_MODELS`) the training input is corrupted with, one drawn per
        window; fps: frame rate of the training data (the noise models' drift frequencies and dropped runs).
    length_unit: file units per metre (100 for cm data).
    """

    window: int = 64
    vae_checkpoint: str = ""
    vae: dict | None = None
    hidden: int = 256
    layers: int = 2
    mrr_hidden: int = 512
    mrr_iterations: int = 3
    lambda_joints: float = 10.0
    root_weight: float = 1.0
    noise_models: list[str] = field(default_factory=lambda: ["mixed"])
    fps: float = 30.0
    length_unit: float = 100.0

    def __post_init__(self):
        _check_positive(self, ("window", "hidden", "layers", "mrr_hidden"))
        if self.mrr_iterations < 0:
            raise ValueError(f"mrr_iterations must be 0 or more, got {self.mrr_iterations}")
        self.noise_models = noise_model_list(self.noise_models)
        if self.vae is None and self.vae_checkpoint:
            self.vae = _vae_config(self.vae_checkpoint)
        if self.vae is not None and int(self.vae.get("window", self.window)) != self.window:
            raise ValueError(f"the motion VAE was trained on windows of {self.vae['window']} frames but MEVA's window "
                             f"is {self.window}; train MEVA with the setting train.window={self.vae['window']}")

    @classmethod
    def preset(cls, name: str, **overrides) -> MEVAConfig:
        """``cpu``: STE width 256, MRR width 512, 3 iterations. ``paper``: STE width 1024 (VIBE's temporal encoder),
        MRR width 1024 (HMR's regressor), 3 iterations, W = 90."""
        if name == "cpu":
            return cls(**overrides)
        if name == "paper":
            return cls(**{"window": 90, "hidden": 1024, "mrr_hidden": 1024, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


def _vae_config(folder: str) -> dict:
    """The ``model`` section of a motion VAE checkpoint's config.yaml (clear errors for anything else)."""
    import yaml

    try:
        path = resolve_model(folder) / "config.yaml"
    except MotionsynthError:
        path = Path(folder).expanduser() / "config.yaml"
    if not path.is_file():
        raise MotionsynthError(f"model.vae_checkpoint {folder}: not a checkpoint folder (no config.yaml); train the "
                               f"motion VAE first: motionsynth train mvae --data CACHE --out RUN (then RUN/model)")
    config = yaml.safe_load(path.read_text()) or {}
    if config.get("family") != "mvae":
        raise MotionsynthError(f"model.vae_checkpoint {folder}: a {config.get('family')!r} checkpoint, MEVA needs a "
                               f"motion VAE ('mvae')")
    return dict(config["model"])


class MEVA(StatsMixin, nn.Module):
    """Noisy pose sequence → coarse motion through a frozen motion VAE (VME) → residual refinement (MRR)."""

    Config = MEVAConfig

    def __init__(self, config: MEVAConfig, skeleton: Skeleton):
        super().__init__()
        if config.vae is None:
            raise MotionsynthError("MEVA needs a trained motion VAE: the setting model.vae_checkpoint=RUN/model "
                                   "(a `motionsynth train mvae` run)")
        self.config, self.skeleton = config, skeleton
        c = config
        self._init_stats(skeleton)
        D = self.rot_dim + self.root_dim
        self.vae = MotionVAE(MotionVAEConfig(**config.vae), skeleton)
        self.vae.requires_grad_(False)
        self.vae.eval()
        self.ste = nn.GRU(D, c.hidden, c.layers, batch_first=True, bidirectional=True)  # STE
        self.to_latent = nn.Sequential(nn.Linear(4 * c.hidden, c.hidden), nn.LeakyReLU(0.2),  # E_motion
                                       nn.Linear(c.hidden, self.vae.config.latent))
        self.mrr = nn.Sequential(nn.Linear(2 * c.hidden + 2 * D, c.mrr_hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(c.mrr_hidden, c.mrr_hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(c.mrr_hidden, D))
        last = cast(nn.Linear, self.mrr[-1])
        nn.init.zeros_(last.weight)  # start as the identity on the coarse estimate
        nn.init.zeros_(last.bias)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> MEVA:
        """Build MEVA; the motion VAE's weights are read from ``vae_checkpoint`` when that folder exists (when loading
        a MEVA checkpoint they are then replaced by the ones saved with it)."""
        model = cls(config if isinstance(config, MEVAConfig) else MEVAConfig(**config), skeleton)
        folder = model.config.vae_checkpoint
        if folder and Path(folder).expanduser().is_dir():
            model.load_vae(folder)
        return model

    def config_dict(self) -> dict:
        return asdict(self.config)

    def load_vae(self, folder: str) -> None:
        """Copy the weights (and normalisation) of a motion VAE checkpoint into the frozen ``vae``."""
        files = read_checkpoint(folder)
        if files.family != "mvae":
            raise MotionsynthError(f"{folder}: a {files.family} checkpoint, MEVA needs a motion VAE ('mvae')")
        files.check_skeleton(self.skeleton, what="MEVA training data")
        assert files.state is not None  # read_checkpoint keeps the weights as a state dict
        try:
            self.vae.load_state_dict(files.state, strict=True)
        except RuntimeError as e:
            raise MotionsynthError(f"{folder}: the motion VAE does not fit model.vae ({str(e).splitlines()[0]})") \
                from None

    def train(self, mode: bool = True) -> MEVA:
        super().train(mode)
        self.vae.eval()  # frozen
        return self

    # ---- forward -----------------------------------------------------------------------------------------------
    def forward(self, noisy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, W, D) normalised noisy features → (coarse, refined), each (B, W, D) normalised features."""
        feats, h = self.ste(noisy)  # f_t (B, W, 2H)
        z = self.to_latent(torch.cat([feats.mean(1), h[-2], h[-1]], -1))
        coarse = self.normalize(self.vae.denormalize(self.vae.decode(z)))  # the VAE may use other statistics
        estimate = coarse
        for _ in range(self.config.mrr_iterations):
            estimate = estimate + self.mrr(torch.cat([feats, noisy, estimate], -1))
        return coarse, estimate

    # ---- noisy inputs ------------------------------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, seeds: list) -> torch.Tensor:
        """Noisy copies of clean normalised windows (B, W, D): `data.noise.corrupt_windows` with ``noise_models``,
        encoded again."""
        raw = self.denormalize(x).detach().cpu().numpy().astype(np.float64)
        noisy = corrupt_windows(raw, self.skeleton, self.config.fps, seeds, self.config.noise_models)
        out = np.stack([encode(m, dtype=np.float32) for m in noisy])
        return self.normalize(torch.from_numpy(out).to(x.device))

    # ---- losses ------------------------------------------------------------------------------------------------
    def losses(self, noisy: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. 3 for motion data: rotations + root block + joint positions of the refined estimate vs clean x."""
        c = self.config
        coarse, refined = self(noisy)
        logs = _feature_losses(self, refined, x)
        true_pos = self.positions(x)
        logs["joints"] = F.mse_loss(self.positions(refined), true_pos)
        loss = logs["rot"] + c.root_weight * logs["root"] + c.lambda_joints * logs["joints"]
        with torch.no_grad():
            logs["coarse_rot"] = _feature_losses(self, coarse, x)["rot"]
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        """Corrupt ``batch["features"]`` (unless the batch brings ``"noisy"``) and return (loss, logs)."""
        x = batch["features"]
        noisy = batch.get("noisy")
        if noisy is None:
            noisy = self.corrupt(x, window_seeds(batch, [0, int(step)]))
        return self.losses(noisy, x)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """Losses on deterministically corrupted windows, plus MPJPE and acceleration error (cm, cm/frame²) of the
        refined and coarse estimates and of the noisy input."""
        x = batch["features"]
        noisy = batch.get("noisy")
        if noisy is None:
            noisy = self.corrupt(x, window_seeds(batch, [1]))
        logs = self.losses(noisy, x)[1]
        coarse, refined = self(noisy)
        true = self.positions(x)
        for name, est in (("refined", refined), ("coarse", coarse), ("input", noisy)):
            pos = self.positions(est)
            logs[f"mpjpe_cm_{name}"] = (pos - true).norm(dim=-1).mean() * 100.0
            acc = pos[:, 2:] - 2 * pos[:, 1:-1] + pos[:, :-2]
            acc_true = true[:, 2:] - 2 * true[:, 1:-1] + true[:, :-2]
            logs[f"accel_cm_{name}"] = (acc - acc_true).norm(dim=-1).mean() * 100.0
        return logs
