"""Action classifier: a window of motion features → one probability vector per label kind (content, style, …).

It is an *evaluator* (`registry` role ``evaluator``): it scores real and generated motion — recognition accuracy,
and its penultimate embedding (`ActionClassifier.features`) is the feature space of FID, diversity and
multimodality in `motionsynth.bench.generation` — and is never a task method.

Data. Input: NORMALISED feature windows (B, T, D) as `WindowDataset` yields them (every joint's local 6D rotation and
the root block: height, planar velocity and heading velocity in the heading frame — so a prediction does not depend
on where the character faces or stands). Labels: ``batch["labels"]`` ``{kind: (B,) index}``, -1 where a take has no
label of that kind (left out of that kind's loss). The vocabulary sizes per kind, ``classes``, come from the training
cache (`config_from_data`, called by the trainer before the model is built); the names themselves are the
checkpoint's ``labels.json``. Nothing here knows any label name.

Architectures (``arch``; chosen on the validation split, see docs/BENCHMARKS.md):

- ``conv`` (the default): an input projection (1×1 convolution D → C), ``layers`` residual blocks of temporal
  convolution (kernel ``kernel``, the first of each block with stride 2) + GroupNorm + GELU, then mean and max pooling
  over time → linear → GELU: the embedding (``embedding`` values) → one linear head per kind.
- ``gru``: a ``layers``-layer bidirectional GRU of width C, mean-pooled over time → the same embedding and heads.
- ``transformer``: D → C, learned positions, ``layers`` pre-norm transformer encoder layers (4 heads), mean-pooled.

Loss: the sum over kinds of the cross-entropy (label smoothing ``label_smoothing``) where the label is known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MotionsynthError
from ..skeleton import Skeleton
from .common import StatsMixin

ARCHS = ("conv", "gru", "transformer")

CLASSIFIER_TRAIN = {"window": 32, "steps": 3000, "batch_size": 64, "val_every": 500, "val_batches": 0,
                    "ckpt_every": 500}
"""The family's training settings (under the preset): 32-frame windows (every Bandai take but 2 is at least that long),
3,000 steps of 64 windows (about 5 minutes on one CPU thread), the whole val split at each validation."""


@dataclass
class ClassifierConfig:
    """Classifier hyper-parameters (the ``cpu`` and ``paper`` presets are the same small network: it trains in
    minutes on a CPU).

    arch: ``conv``, ``gru`` or ``transformer`` (module docstring).
    window: frames per window (follows ``train.window``); longer clips are classified window by window.
    channels: hidden width C; layers: residual blocks / GRU layers / transformer layers; kernel: temporal kernel.
    embedding: size of the penultimate embedding (the FID feature space).
    dropout: on the hidden features and before the heads; label_smoothing: of the cross-entropy.
    classes: label kind → number of names, filled from the training cache (`ActionClassifier.config_from_data`).
    """

    arch: str = "conv"
    window: int = 32
    channels: int = 128
    layers: int = 3
    kernel: int = 5
    embedding: int = 128
    dropout: float = 0.2
    label_smoothing: float = 0.0
    classes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.classes = {str(k): int(v) for k, v in dict(self.classes).items()}
        if self.arch not in ARCHS:
            raise ValueError(f"classifier arch must be one of {ARCHS}, got {self.arch!r}")
        if self.window < 1 or self.channels < 1 or self.layers < 1 or self.embedding < 1:
            raise ValueError("classifier window, channels, layers and embedding must be positive")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"classifier kernel must be odd and positive, got {self.kernel}")
        if self.arch == "transformer" and self.channels % 4:
            raise ValueError(f"the transformer's channels must be divisible by its 4 heads, got {self.channels}")
        if any(n < 2 for n in self.classes.values()):
            raise ValueError(f"every label kind needs at least two names to classify, got {self.classes}")

    @classmethod
    def preset(cls, name: str, **overrides) -> ClassifierConfig:
        if name in ("cpu", "paper"):
            return cls(**overrides)
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


class _Block(nn.Module):
    """Residual temporal-convolution block: conv (stride) → norm → GELU → dropout → conv → norm, + skip, GELU."""

    def __init__(self, c: int, kernel: int, stride: int, dropout: float):
        super().__init__()
        groups = 8 if c % 8 == 0 else 1
        self.conv1 = nn.Conv1d(c, c, kernel, stride=stride, padding=kernel // 2)
        self.norm1 = nn.GroupNorm(groups, c)
        self.conv2 = nn.Conv1d(c, c, kernel, padding=kernel // 2)
        self.norm2 = nn.GroupNorm(groups, c)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.AvgPool1d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.drop(F.gelu(self.norm1(self.conv1(h))))
        y = self.norm2(self.conv2(y))
        return F.gelu(y + self.skip(h)[..., :y.shape[-1]])


class ActionClassifier(StatsMixin, nn.Module):
    """The action classifier (module docstring). ``features(x)`` → (B, embedding); ``logits(x)`` /
    ``predict(x)`` → ``{kind: (B, classes[kind])}`` logits / probabilities."""

    Config = ClassifierConfig

    def __init__(self, config: ClassifierConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c = config
        self._init_stats(skeleton)
        D, C = self.rot_dim + self.root_dim, c.channels
        if c.arch == "conv":
            self.inp: nn.Conv1d | nn.Linear = nn.Conv1d(D, C, 1)
            self.blocks = nn.ModuleList(_Block(C, c.kernel, 2, c.dropout) for _ in range(c.layers))
            pooled = 2 * C
        elif c.arch == "gru":
            self.gru = nn.GRU(D, C, num_layers=c.layers, batch_first=True, bidirectional=True,
                              dropout=c.dropout if c.layers > 1 else 0.0)
            pooled = 2 * C
        else:
            self.inp = nn.Linear(D, C)
            self.pos = nn.Parameter(torch.zeros(1, c.window, C))
            nn.init.normal_(self.pos, std=0.02)
            layer = nn.TransformerEncoderLayer(C, 4, 2 * C, c.dropout, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
            pooled = C
        self.embed = nn.Linear(pooled, c.embedding)
        self.drop = nn.Dropout(c.dropout)
        self.heads = nn.ModuleDict({kind: nn.Linear(c.embedding, n) for kind, n in c.classes.items()})

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> ActionClassifier:
        return cls(config if isinstance(config, ClassifierConfig) else ClassifierConfig(**config), skeleton)

    @classmethod
    def config_from_data(cls, config: ClassifierConfig, cache) -> ClassifierConfig:
        """The trainer's hook before building the model: ``classes`` from the cache's vocabulary (checked against
        the config's when it has them, e.g. on resume). Raises `MotionsynthError` for a cache without labels."""
        vocab = {k: len(v) for k, v in dict(getattr(cache, "label_names", {}) or {}).items() if len(v) >= 2}
        if not vocab:
            raise MotionsynthError("the classifier learns from labelled takes, but this cache has no label kind with "
                                   "two or more names (prepare it with labels, e.g. `motionsynth data prepare … "
                                   "--labels labels.csv`)")
        if config.classes and config.classes != vocab:
            raise MotionsynthError(f"classifier config has classes {config.classes} but the cache's labels are "
                                   f"{vocab}")
        config.classes = vocab
        config.__post_init__()
        return config

    def config_dict(self) -> dict:
        return asdict(self.config)

    @property
    def kinds(self) -> list[str]:
        return list(self.config.classes)

    # ---- forward ---------------------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised features → (B, embedding): the penultimate embedding (FID's feature space).

        T is normally the model's window; the convolution and GRU accept other lengths, the transformer at most
        ``window`` frames."""
        c = self.config
        if c.arch == "conv":
            h = self.inp(x.transpose(1, 2))
            for block in self.blocks:
                h = block(h)
            pooled = torch.cat([h.mean(-1), h.amax(-1)], -1)
        elif c.arch == "gru":
            pooled = self.gru(x)[0].mean(1)
        else:
            T = x.shape[1]
            if T > c.window:
                raise ValueError(f"the transformer classifier takes at most {c.window} frames, got {T}")
            pooled = self.encoder(self.inp(x) + self.pos[:, :T]).mean(1)
        return F.gelu(self.embed(pooled))

    def logits(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(B, T, D) → ``{kind: (B, classes[kind])}`` logits (from ``emb`` = `features` (x) when given)."""
        h = self.drop(self.features(x) if emb is None else emb)
        return {kind: head(h) for kind, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T, D) normalised features → ``{kind: (B, classes[kind])}`` probabilities (softmax)."""
        return {kind: v.softmax(-1) for kind, v in self.logits(x).items()}

    # ---- training ----------------------------------------------------------------------------------------------------
    def _losses(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logits = self.logits(batch["features"])
        labels = batch.get("labels") or {}
        loss = batch["features"].new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        for kind, out in logits.items():
            if kind not in labels:
                continue
            y = torch.as_tensor(labels[kind], device=out.device).long()
            known = y >= 0
            if not known.any():
                continue
            ce = F.cross_entropy(out[known], y[known], label_smoothing=self.config.label_smoothing)
            loss = loss + ce
            logs[f"loss_{kind}"] = ce.detach()
            logs[f"acc_{kind}"] = (out[known].argmax(-1) == y[known]).float().mean()
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        """Summed cross-entropy over the label kinds on ``batch["features"]`` (B, T, D) → (loss, logs with
        ``loss_KIND`` and ``acc_KIND``)."""
        return self._losses(batch)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """The same losses and accuracies (eval mode: no dropout) → logs with ``"loss"``."""
        return self._losses(batch)[1]


__all__ = ["ARCHS", "CLASSIFIER_TRAIN", "ClassifierConfig", "ActionClassifier"]
