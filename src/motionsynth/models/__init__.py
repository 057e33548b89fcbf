"""Model families and their registry.

Every family is a `torch.nn.Module` class with:

- ``Config``: its hyper-parameter dataclass, with ``Config.preset(name)`` for ``"cpu"`` and ``"paper"``;
- ``from_config(config (dataclass or dict), skeleton)``; ``config_dict()`` → the resolved hyper-parameters;
- ``set_stats(FeatureStats)``: normalisation buffers (saved with the weights);
- ``training_step(batch, step) -> (loss, logs)`` and ``validation_step(batch) -> logs`` (with ``"loss"``), where
  ``batch["features"]`` is (B, T, D) normalised features as `WindowDataset` yields.

`MODELS` maps a family name (``motionsynth train MODEL``) to its class; `FAMILY_DEFAULTS` holds the hyper-parameters
that name implies (``hmvae-m`` is HM-VAE with ``variant="m"``). Other families register with `register_model`.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from .hmvae import HMVAE, HMVAEConfig
from .meva import MEVA, MotionVAE
from .trajectory import TrajectoryConfig, TrajectoryModel

MODELS: dict[str, type] = {
    "hmvae": HMVAE,  # the hierarchical motion VAE (two latents)
    "hmvae-m": HMVAE,  # ablation M-VAE: one (global) latent
    "hmvae-tcn": HMVAE,  # ablation TCN-VAE: plain temporal convolutions, one latent
    "trajectory": TrajectoryModel,  # HM-VAE §3.3 root trajectory from body motion, on its own
    "mvae": MotionVAE,  # MEVA's motion VAE (GRU)
    "meva": MEVA,  # MEVA: VME + MRR on a trained motion VAE
}

FAMILY_DEFAULTS: dict[str, dict] = {"hmvae": {"variant": "hmvae"}, "hmvae-m": {"variant": "m"},
                                    "hmvae-tcn": {"variant": "tcn"}}


def register_model(name: str, cls: type, defaults: dict | None = None) -> None:
    """Add a model family (see the module docstring for what the class provides)."""
    MODELS[name] = cls
    if defaults:
        FAMILY_DEFAULTS[name] = dict(defaults)


def model_config(family: str, preset: str = "cpu", overrides: dict | None = None):
    """The config dataclass of ``family``: its ``preset``, the family's defaults, then ``overrides`` (nested dicts
    merge into nested dataclasses)."""
    cls = MODELS[family]
    cfg = cls.Config.preset(preset)
    return _merge(cfg, {**FAMILY_DEFAULTS.get(family, {}), **(overrides or {})})


def _merge(cfg, overrides: dict):
    names = {f.name for f in fields(cfg)}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"{type(cfg).__name__} has no setting {key!r}; settings: {', '.join(sorted(names))}")
        current = getattr(cfg, key)
        if is_dataclass(current) and isinstance(value, dict):
            _merge(current, value)
        else:
            setattr(cfg, key, value)
    cfg.__post_init__() if hasattr(cfg, "__post_init__") else None
    return cfg


def build_model(family: str, config, skeleton):
    """Instantiate ``family`` from a config dataclass or a dict of resolved hyper-parameters."""
    cls = MODELS[family]
    if isinstance(config, dict):
        config = _merge(cls.Config(), config)
    return cls.from_config(config, skeleton)


__all__ = ["MODELS", "FAMILY_DEFAULTS", "register_model", "model_config", "build_model", "HMVAE", "HMVAEConfig",
           "TrajectoryModel", "TrajectoryConfig"]
