"""The one trainer for every model family (PyTorch Lightning).

A run folder ``RUN`` holds:

=======================  =========================================================================================
``config.yaml``          the full resolved configuration (family, preset, train, model, data, command)
``checkpoints/last.ckpt``  Lightning state (weights, optimiser, scheduler, loop counters, RNG states), written every
                         ``ckpt_every`` steps — for ``--resume`` only, never for distribution
``model/``               the exported, safe checkpoint folder (`motionsynth.checkpoint`) at the end of training
``best/``                the exported checkpoint of the step with the lowest validation loss
``logs/version_N/``      CSV logs (``metrics.csv``), one folder per start (a resumed run adds one); TensorBoard
                         logs in ``tensorboard/`` when ``tensorboard`` is installed
=======================  =========================================================================================

Optimisers: by default one AdamW over every parameter (``lr``, ``weight_decay``) with the schedule of
`TrainConfig`. A network may instead provide ``configure_optimizers(train_config) -> {phase name: optimizer}``
(e.g. a GAN's generator and discriminator with Adam β = (0, 0.99)): then every training step runs the phases in that
order, calling the network's ``training_step(batch, step, phase=name)`` for each, backpropagating its loss and
stepping that phase's optimizer (gradients clipped per phase; the schedule applies to every optimizer). A step is one
pass through all phases, whatever their number.

A network class sized by the data provides ``config_from_data(config, cache) -> config`` (the action classifier:
its heads from the cache's label vocabulary); the trainer calls it before building the model.

Configuration: plain dataclasses — `TrainConfig` plus the family's own config (e.g. `HMVAEConfig`) — from a preset
(``cpu`` or ``paper``), then a YAML file (``--config FILE.yaml`` with sections ``train:`` and ``model:``, optionally
``preset:``), then command-line overrides (``--max-steps``, ``--set train.lr=3e-4``, ``--set model.beta=0.01``).

Determinism and exact resume: `L.seed_everything(seed, workers=True)` seeds the initial weights; the data order is a
function of (seed, pass over the data) alone — one long, deterministic stream of windows indexed by sample number,
so a resumed run continues at sample ``global_step × batch × world size``; augmentation draws depend on
(seed, pass, window). The global torch / numpy / Python RNG states are saved in ``last.ckpt`` and restored on resume,
so a killed and resumed run follows the same loss curve as an uninterrupted one (CPU, same settings).

Multi-GPU / multi-node: ``--devices N`` (GPUs per node; CPU processes with ``--accelerator cpu``) and
``--num-nodes M`` select DDP (``strategy="ddp"``; ``"ddp_find_unused_parameters_true"`` for a network trained in
phases, whose phases each leave parameters unused); each rank reads its own shard of the same data stream, and
``--resume`` continues it. A two-node run under SLURM::

    #SBATCH --nodes=2 --ntasks-per-node=4 --gpus-per-node=4
    srun motionsynth train hmvae --data CACHE --out RUN --preset paper --devices 4 --num-nodes 2 \\
        --precision bf16-mixed

or with torchrun on each node (node rank 0 and 1, same master address)::

    torchrun --nnodes 2 --nproc-per-node 4 --node-rank $RANK --master-addr $HOST --master-port 29500 \\
        -m motionsynth train hmvae --data CACHE --out RUN --preset paper --devices 4 --num-nodes 2

``RUN`` must be on a file system every node sees; rank 0 writes the exports. The batch size is per device.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shlex
import shutil
import sys
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml

from .checkpoint import default_card, read_checkpoint, read_config, save_checkpoint
from .config import deep_merge
from .data.augment import Augment
from .data.cache import MotionCache
from .data.selection import check_label_filter, matches
from .data.windows import WindowDataset
from .errors import MotionsynthError, ParamError
from .io.atomic import atomic_open
from .registry import build_model, model_config
from .registry import family as get_family

PRESETS = ("cpu", "paper")


@dataclass
class TrainConfig:
    """Training settings shared by every family.

    steps: optimiser steps; batch_size: windows per step (per device).
    lr, weight_decay: AdamW; schedule: ``"constant"``, ``"cosine"`` (to ``min_lr_ratio · lr``) or ``"step"``
        (× ``step_gamma`` every ``step_size`` steps, the HM-VAE paper's); warmup_steps: linear warm-up.
    grad_clip: gradient norm clipping (0: off).
    val_every: validate every N steps (0: never); val_batches: batches per validation (0: the whole val split).
    ckpt_every: write ``checkpoints/last.ckpt`` every N steps.
    devices, num_nodes, accelerator, precision: passed to Lightning (DDP when devices × nodes > 1).
    num_workers: DataLoader worker processes; seed: everything random.
    window, stride: training windows (frames) and their spacing; augment: None / {} for none, else keyword
        arguments of `motionsynth.data.augment.Augment` (``{"p_mirror": 0.5}``).
    log_every: log training metrics every N steps.
    threads: torch CPU threads (0: torch's default). On a CPU shared with other work, 1 thread is often several
        times faster than 2 (spinning threads wait on each other), hence the ``cpu`` preset's 1.
    ema: decay of an exponential moving average of the weights, updated after every step (0: off). When on, the
        average is what validation scores and what ``model/`` and ``best/`` hold (`EMA`); diffusion models use it.
    hold_out: None / {} for none, else a label filter ``{kind: [glob patterns]}`` (`data.selection`): the takes
        that match are left out of the train AND val windows — whole actions unseen in training (the unseen-actions
        protocol: score them with ``motionsynth bench --only``). E.g. ``--set 'train.hold_out.content=[run,raise-up-*]'``.
    init: None, or a model folder of the same family and skeleton whose weights (its feature statistics included)
        start the run — fine-tuning, e.g. with a changed loss weight (``--set train.init=runs/cvae/best``). The
        optimiser and the schedule start afresh; ``--resume`` ignores it.
    """

    steps: int = 6000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    step_size: int = 100_000
    step_gamma: float = 0.3
    grad_clip: float = 1.0
    val_every: int = 500
    val_batches: int = 20
    ckpt_every: int = 500
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0
    seed: int = 0
    window: int = 64
    stride: int = 8
    augment: dict | None = None
    log_every: int = 10
    threads: int = 0
    ema: float = 0.0
    hold_out: dict | None = None
    init: str | None = None

    @classmethod
    def preset(cls, name: str) -> TrainConfig:
        """``cpu``: about an hour on a 2-core CPU with the ``cpu`` model. ``paper``: the HM-VAE paper's schedule
        (batch 8, lr 1e-4, weight decay 1e-4, lr × 0.3 every 100k steps, 250k steps)."""
        if name == "cpu":
            return cls(threads=1)
        if name == "paper":
            return cls(steps=250_000, batch_size=8, lr=1e-4, weight_decay=1e-4, schedule="step", warmup_steps=0,
                       step_size=100_000, step_gamma=0.3, val_every=5000, val_batches=200, ckpt_every=5000,
                       num_workers=4, stride=4)
        raise MotionsynthError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


# ---- configuration ---------------------------------------------------------------------------------------------------
def load_yaml(path: str | os.PathLike) -> dict:
    """A config YAML file → dict (sections ``preset``, ``train``, ``model``); clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise MotionsynthError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise MotionsynthError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or set(data) - {"preset", "train", "model", "family"}:
        raise MotionsynthError(f"{path}: a config has the sections preset, train and model; found "
                               f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    return data


def resolve_config(family: str, preset: str | None = None, file_config: dict | None = None,
                   overrides: dict | None = None) -> tuple[TrainConfig, Any, str]:
    """Preset → YAML file → overrides, for the training settings and the family's model config.

    Returns (TrainConfig, model config dataclass, preset name). The model's ``window`` (if it has one) follows
    ``train.window``.
    """
    spec = get_family(family)
    merged = deep_merge(file_config or {}, overrides or {})
    preset = preset or merged.get("preset") or "cpu"
    if preset not in PRESETS:
        raise MotionsynthError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    train_cfg = TrainConfig.preset(preset)
    names = {f.name for f in fields(TrainConfig)}
    for layer in (spec.train_defaults, merged.get("train") or {}):  # the family's own defaults, then the user's
        for k, v in layer.items():
            if k not in names:
                raise MotionsynthError(f"unknown training setting {k!r}; settings: {', '.join(sorted(names))}")
            current = getattr(train_cfg, k)
            setattr(train_cfg, k, deep_merge(current, v) if isinstance(current, dict) and isinstance(v, dict) else v)
    model_over = dict(merged.get("model") or {})
    try:
        if "window" in {f.name for f in fields(spec.network.Config)}:
            model_over["window"] = train_cfg.window
        mcfg = model_config(family, preset, model_over)
    except (ValueError, TypeError, KeyError) as e:
        raise MotionsynthError(f"{family} config: {e}") from None
    return train_cfg, mcfg, preset


# ---- data --------------------------------------------------------------------------------------------------------------
class StreamSampler(torch.utils.data.Sampler):
    """The whole run's training items as one deterministic stream.

    Item ``i`` of the stream is pass ``i // n``, position ``i % n`` of the permutation
    ``np.random.default_rng([seed, pass]).permutation(n)``; it yields ``(pass, window index)`` pairs. The stream
    starts at ``start()`` (a callable: items already consumed by all ranks, read when iteration begins) and ends at
    ``total``. Under DDP, ``shard()`` returns ``(rank, world size)`` and rank r takes the items ``i ≡ r (mod world)``.
    """

    def __init__(self, n: int, total: int, seed: int, start=lambda: 0, shard=lambda: (0, 1)):
        self.n, self.total, self.seed, self.start, self.shard = n, total, seed, start, shard

    def __len__(self) -> int:
        rank, world = self.shard()
        return len(range(self.start() + rank, self.total, world))

    def __iter__(self):
        rank, world = self.shard()
        perm_pass, perm = -1, None
        for i in range(self.start() + rank, self.total, world):
            p, pos = divmod(i, self.n)
            if p != perm_pass:
                perm_pass, perm = p, np.random.default_rng([self.seed, p]).permutation(self.n)
            yield (p, int(perm[pos]))


class PassDataset(torch.utils.data.Dataset):
    """Wraps a `WindowDataset` so that items are addressed by ``(pass, index)``: the pass selects the augmentation
    draws (``set_epoch``)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        p, k = key if isinstance(key, tuple) else (0, key)
        if getattr(self.dataset, "epoch", p) != p:
            self.dataset.set_epoch(p)
        return self.dataset[k]


# ---- the Lightning wrapper -----------------------------------------------------------------------------------------
def _lightning():
    import lightning as L

    return L


def make_lightning_module(model: torch.nn.Module, cfg: TrainConfig):
    """Wrap a model (``training_step(batch, step)``, ``validation_step(batch)``, optionally
    ``configure_optimizers(cfg)``; see the module docstring) in a LightningModule with the schedule of ``cfg`` and
    RNG-state checkpointing (for exact resume)."""
    import lightning as L  # as `_lightning` (a module name mypy can use for the base class)
    phases = _phases(model, cfg)

    class LitModel(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.cfg = cfg
            self.automatic_optimization = phases is None
            self.steps_done = 0  # training steps (one per batch, whatever the number of phases)

        def training_step(self, batch, batch_idx):
            bs = batch["features"].shape[0]
            if phases is None:
                loss, logs = self.model.training_step(batch, step=int(self.global_step))
                self.log("train/loss", loss.detach(), prog_bar=True, batch_size=bs)
                self.log_dict({f"train/{k}": v for k, v in logs.items() if k != "loss"}, batch_size=bs)
                return loss
            opts, scheds = _as_list(self.optimizers()), _as_list(self.lr_schedulers())
            for name, opt, sched in zip(phases, opts, scheds):
                loss, logs = self.model.training_step(batch, step=self.steps_done, phase=name)
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                if cfg.grad_clip:
                    self.clip_gradients(opt, gradient_clip_val=cfg.grad_clip, gradient_clip_algorithm="norm")
                opt.step()
                sched.step()
                self.log(f"train/{name}_loss", loss.detach(), prog_bar=True, batch_size=bs)
                self.log_dict({f"train/{name}_{k}": v for k, v in logs.items() if k != "loss"}, batch_size=bs)
            self.steps_done += 1

        def validation_step(self, batch, batch_idx):
            logs = self.model.validation_step(batch)
            bs = batch["features"].shape[0]
            self.log("val/loss", logs["loss"], prog_bar=True, batch_size=bs, sync_dist=True)
            self.log_dict({f"val/{k}": v for k, v in logs.items() if k != "loss"}, batch_size=bs, sync_dist=True)

        def configure_optimizers(self):
            if phases is None:
                opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            opts = list(self.model.configure_optimizers(cfg).values())
            return opts, [{"scheduler": torch.optim.lr_scheduler.LambdaLR(o, lambda s: lr_factor(cfg, s)),
                           "interval": "step"} for o in opts]

        def on_save_checkpoint(self, checkpoint):
            kind, keys, pos, has_gauss, cached = np.random.get_state()
            checkpoint["rng_states"] = {  # tensors and plain Python values only (weights-only loading)
                "torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
                "numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": random.getstate()}
            checkpoint["steps_done"] = self.steps_done

        def on_load_checkpoint(self, checkpoint):
            self._rng_states = checkpoint.get("rng_states")
            self.steps_done = int(checkpoint.get("steps_done", 0))

        def on_train_start(self):
            world = int(self.trainer.world_size)  # the processes that joined (logs/version_N/hparams.yaml)
            for logger in self.trainer.loggers:
                logger.log_hyperparams({"world_size": world, "batch_size": cfg.batch_size,
                                        "samples_per_step": cfg.batch_size * world})
            states = getattr(self, "_rng_states", None)
            if states is not None:  # after Lightning's own restore, so that ours is the one in effect
                torch.set_rng_state(states["torch"])
                kind, pos, has_gauss, cached = states["numpy"]
                np.random.set_state((kind, states["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
                random.setstate(states["python"])
                self._rng_states = None

    return LitModel()


def _phases(model: torch.nn.Module, cfg: TrainConfig) -> list[str] | None:
    """The optimiser phases of a network with its own ``configure_optimizers`` (None: the default AdamW)."""
    if not callable(getattr(model, "configure_optimizers", None)):
        return None
    phases = list(cast(Any, model).configure_optimizers(cfg))  # checked callable above
    if not phases:
        raise MotionsynthError(f"{type(model).__name__}.configure_optimizers returned no optimizer")
    return phases


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _steps_per_step(model: torch.nn.Module, cfg: TrainConfig) -> int:
    """Optimizer steps per training step: Lightning's ``global_step`` counts optimizer steps."""
    phases = _phases(model, cfg)
    return 1 if phases is None else len(phases)


class EMA:
    """An exponential moving average of a model's floating-point state (weights and buffers), ``decay`` per update
    (integer buffers are copied). `applied` swaps it into the model for a ``with`` block."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise MotionsynthError(f"train.ema must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            target = self.shadow[k]
            if target.device != v.device:
                target = self.shadow[k] = target.to(v.device)
            if v.dtype.is_floating_point:
                target.lerp_(v.detach(), 1.0 - self.decay)
            else:
                target.copy_(v)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)


def _ema_callback(ema: EMA):
    """Lightning callback: update ``ema`` after every training step, validate with it, save and restore it."""
    import lightning as L  # as `_lightning` (a module name mypy can use for the base class)

    class EMACallback(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            ema.update(pl_module.model)

        def on_validation_epoch_start(self, trainer, pl_module):
            self._swap = ema.applied(pl_module.model)
            self._swap.__enter__()

        def on_validation_epoch_end(self, trainer, pl_module):
            if getattr(self, "_swap", None) is not None:
                self._swap.__exit__(None, None, None)
                self._swap = None

        def state_dict(self):
            return {"shadow": ema.shadow}

        def load_state_dict(self, state):
            ema.shadow = dict(state["shadow"])

    return EMACallback()


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then the schedule."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return cfg.step_gamma ** (step // max(1, cfg.step_size))
    if cfg.schedule == "constant":
        return 1.0
    raise MotionsynthError(f"unknown schedule {cfg.schedule!r} (constant, cosine, step)")


def _export_callback(run: Path, family: str, config: dict, cache, per: int = 1, ema: EMA | None = None):
    """A Lightning callback exporting ``RUN/best`` whenever the validation loss improves (rank 0); ``per``: optimizer
    steps per training step; ``ema``: export the average."""
    import lightning as L  # as `_lightning` (a module name mypy can use for the base class)

    class ExportBest(L.Callback):
        def __init__(self):
            self.best = float("inf")

        def on_validation_end(self, trainer, pl_module):
            if trainer.sanity_checking:
                return
            value = trainer.callback_metrics.get("val/loss")
            if value is None or not float(value) < self.best:
                return
            self.best = float(value)
            if trainer.is_global_zero:
                step = int(trainer.global_step) // per
                export(run / "best", pl_module.model, family, {**config, "best": {"step": step, "val_loss": self.best}},
                       cache, results=validation_summary(trainer, step), ema=ema)

        def state_dict(self):
            return {"best": self.best}

        def load_state_dict(self, state):
            self.best = state.get("best", float("inf"))

    return ExportBest()


def validation_summary(trainer, step: int) -> str:
    """The latest validation metrics as a markdown list (for model cards)."""
    rows = [f"- {k[4:]}: {float(v):.5g}" for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")]
    if not rows:
        return ""
    return f"Validation split, step {step} (posterior means; losses as in training):\n" + "\n".join(rows)


def export(folder: Path, model, family: str, config: dict, cache, results: str = "", ema: EMA | None = None) -> Path:
    """Write the safe checkpoint folder of ``model`` (see `motionsynth.checkpoint`) with the cache's skeleton,
    statistics, labels and data hash; ``results`` (`validation_summary`) goes into the card's validation figures —
    its test figures wait for a benchmark on the test split; with ``ema``, the averaged weights are written."""
    data = f"cache {config.get('data', {}).get('path', '')} (dataset {getattr(cache, 'dataset', '?')}, " \
           f"data_hash {cache.data_hash})"
    card = default_card(family, config, data=data, command=config.get("command", ""), validation=results,
                        dataset=str(getattr(cache, "dataset", "")))
    was_training = model.training
    model.eval()
    try:
        with ema.applied(model) if ema is not None else contextlib.nullcontext():
            return save_checkpoint(folder, model, config, cache.skeleton, cache.stats, dict(cache.label_names),
                                   cache.data_hash, card)
    finally:
        model.train(was_training)


def _loggers(run: Path):
    L = _lightning()
    # a new version folder per start, so that a resumed run keeps the metrics of the runs before it
    loggers = [L.pytorch.loggers.CSVLogger(str(run), name="logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(L.pytorch.loggers.TensorBoardLogger(str(run), name="tensorboard"))
    except ImportError:
        pass
    return loggers


def _make_trainer(L, c: TrainConfig, world: int, has_val: bool, run: Path, callbacks: list, progress: bool,
                  per: int, manual: bool):
    """The Lightning Trainer for a run (validation only when there is a val split and ``val_every``); ``per``
    optimizer steps per training step; ``manual``: the network steps its own optimizers (no automatic clipping)."""
    return L.Trainer(
        max_steps=c.steps * per, max_epochs=-1, accelerator=c.accelerator, devices=c.devices, num_nodes=c.num_nodes,
        strategy=_strategy(world, manual), precision=c.precision,
        gradient_clip_val=None if manual else (c.grad_clip or None),
        val_check_interval=min(c.val_every, c.steps) if has_val else None,
        check_val_every_n_epoch=None, limit_val_batches=(c.val_batches or 1.0) if has_val else 0,
        num_sanity_val_steps=0, log_every_n_steps=c.log_every, logger=_loggers(run), callbacks=callbacks,
        enable_progress_bar=progress, enable_model_summary=False, deterministic=False,
        use_distributed_sampler=False, default_root_dir=str(run))


def _strategy(world: int, manual: bool) -> str:
    """Lightning's strategy: DDP for more than one process. A network trained in phases (``manual``) leaves the
    other phases' parameters out of each phase's loss, so DDP must look for unused parameters then."""
    if world == 1:
        return "auto"
    return "ddp_find_unused_parameters_true" if manual else "ddp"


def _init_weights(model: torch.nn.Module, family: str, folder: str, skeleton) -> None:
    """Load the weights of the model folder ``folder`` (`TrainConfig.init`) into ``model``; `MotionsynthError` unless
    it is a ``family`` model of ``skeleton`` whose weights fit."""
    ckpt = read_checkpoint(folder)
    if ckpt.family != family:
        raise MotionsynthError(f"train.init: {folder} is a {ckpt.family!r} model, not {family!r}")
    ckpt.check_skeleton(skeleton, what="the training data")
    try:
        model.load_state_dict(cast("dict[str, torch.Tensor]", ckpt.state), strict=True)  # as read
    except RuntimeError as e:
        raise MotionsynthError(f"train.init: the weights of {folder} do not fit this {family} model "
                               f"({' '.join(str(e).splitlines()[:2])})") from None


# ---- resuming ----------------------------------------------------------------------------------------------------------
def _saved_run_config(run: Path) -> dict:
    """The checked ``config.yaml`` of the run to resume (`checkpoint.read_config`)."""
    path = run / "config.yaml"
    if not path.is_file():
        raise MotionsynthError(f"{run}: nothing to resume (no config.yaml)")
    return read_config(path)


def check_resumable(path: str | os.PathLike) -> None:
    """Raise `MotionsynthError` naming ``path`` unless it is a Lightning checkpoint that loads as plain data: tensors,
    numbers, strings and containers only (``torch.load(weights_only=True)``, memory-mapped; nothing is run), holding
    a ``state_dict``. A truncated file, another file and one carrying pickled objects (code) are refused before
    anything in the run folder changes."""
    import pickle
    import zipfile

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise MotionsynthError(f"{path}: not a plain checkpoint (it holds pickled objects other than tensors and "
                                   f"values, which are never loaded); refusing to resume from it") from None
        raise MotionsynthError(f"{path}: damaged checkpoint ({_first_line(e)}); refusing to resume from it") from None
    except (RuntimeError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, ImportError,
            zipfile.BadZipFile) as e:
        raise MotionsynthError(f"{path}: damaged checkpoint (truncated or not a checkpoint: {_first_line(e)}); "
                               f"refusing to resume from it") from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise MotionsynthError(f"{path}: not a training checkpoint (no state_dict); refusing to resume from it")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


@contextlib.contextmanager
def _new_run_folder(run: Path, last: Path):
    """Make the run folder (with its parents) for the block; when the block fails before the first
    ``checkpoints/last.ckpt`` (nothing to resume), the folders this call made are removed again: a run that never
    got going leaves nothing behind."""
    missing = [p for p in (run, *run.parents) if not p.exists()]
    run.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except Exception:
        if missing and not last.exists():
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise


def _run_config(family: str, run: Path, cache, config_file, preset: str | None, overrides: dict | None,
                resume: bool) -> tuple:
    """(train config, model config, preset) of a new run (``config_file``, ``preset``, ``overrides``) or of the run
    in ``run`` to resume (its saved configuration, ``overrides`` still applied; same family and data)."""
    last = run / "checkpoints" / "last.ckpt"
    if not resume:
        if last.exists():
            raise ParamError(f"{run} already holds a run; pass `resume` to continue it or choose another `out`", "resume",
                             "out")
        file_config = load_yaml(config_file) if config_file else {}
        return resolve_config(family, preset, file_config, overrides)
    if not last.is_file():
        raise MotionsynthError(f"{run}: nothing to resume (no checkpoints/last.ckpt)")
    saved = _saved_run_config(run)
    check_resumable(last)
    if saved.get("family") != family:
        raise MotionsynthError(f"{run} trains {saved.get('family')!r}, not {family!r}")
    if saved.get("data", {}).get("data_hash") != cache.data_hash:
        raise MotionsynthError(f"{run} was trained on other data (data hash differs); resume with the same cache")
    file_config = {"preset": saved.get("preset"), "train": saved.get("train") or {}, "model": saved["model"]}
    return resolve_config(family, None, file_config, overrides)


def _datasets(cache, c, data) -> tuple:
    """The training windows (augmented by ``train.augment``, without the ``train.hold_out`` takes, whose filter is
    checked and set on ``c``) and the validation windows (None without ``val_every`` or any window)."""
    augment = Augment(**c.augment) if c.augment else None
    c.hold_out = check_label_filter(c.hold_out, cache.label_names, "train.hold_out") or None
    if c.hold_out and augment is not None and augment.p_mirror > 0:  # a mirrored kept take must not be held out
        mirrored = cast(dict, augment.with_labels(dict(cache.label_names)).label_map)  # set by with_labels
        for kind, pats in c.hold_out.items():
            leak = sorted(n for n, m in mirrored[kind].items() if matches(m, pats) and not matches(n, pats))
            if leak:
                raise MotionsynthError(f"train.hold_out: mirroring (train.augment) turns the kept {kind} labels "
                                       f"{', '.join(leak)} into held-out ones; hold them out too")
    train_set = WindowDataset(cache, "train", c.window, c.stride, augment=augment, seed=c.seed, exclude=c.hold_out)
    if len(train_set) == 0:
        raise MotionsynthError(f"no training windows of {c.window} frames in {data} (train split too short"
                               f"{' once train.hold_out is left out' if c.hold_out else ''})")
    val_set = WindowDataset(cache, "val", c.window, c.window // 2 or 1, seed=c.seed,
                            exclude=c.hold_out) if c.val_every else None
    if val_set is not None and len(val_set) == 0:
        val_set = None
    return train_set, val_set


# ---- the entry point -------------------------------------------------------------------------------------------------
def train(family: str, data: str | os.PathLike, out: str | os.PathLike, config_file: str | os.PathLike | None = None,
          preset: str | None = None, overrides: dict | None = None, resume: bool = False,
          command: str | None = None, progress: bool = True, cache=None, callbacks: list | None = None) -> Path:
    """Train ``family`` on the motion cache ``data``; write the run folder ``out`` (see the module docstring).

    ``overrides``: nested dict ``{"train": {...}, "model": {...}}`` applied last. ``resume``: continue the run in
    ``out`` from ``checkpoints/last.ckpt`` with its saved configuration (``overrides`` still apply, e.g. more
    steps). ``cache``: an already opened cache object (tests); else ``MotionCache(data)``. ``callbacks``: extra
    Lightning callbacks.
    Returns the exported model folder ``out/model``.
    """
    L = _lightning()
    run = Path(out).expanduser()
    last = run / "checkpoints" / "last.ckpt"
    if cache is None:
        if not Path(data).expanduser().exists():
            raise MotionsynthError(f"{data}: no such motion cache; make one with `motionsynth data prepare`")
        cache = MotionCache(data)
    train_cfg, model_cfg, preset = _run_config(family, run, cache, config_file, preset, overrides, resume)
    c = train_cfg
    from_data = getattr(get_family(family).network, "config_from_data", None)
    if callable(from_data):  # a network sized by the data (the classifier's heads by the cache's vocabulary)
        model_cfg = from_data(model_cfg, cache)
    for name in ("steps", "batch_size", "window", "stride", "devices", "num_nodes", "ckpt_every"):
        if int(getattr(c, name)) < 1:
            raise MotionsynthError(f"train.{name} must be at least 1, got {getattr(c, name)}")

    if c.threads:
        torch.set_num_threads(int(c.threads))
    L.seed_everything(c.seed, workers=True, verbose=False)
    train_set, val_set = _datasets(cache, c, data)

    model = build_model(family, asdict(model_cfg), cache.skeleton)
    cast(Any, model).set_stats(cache.stats)  # a StatsMixin network
    if c.init and not resume:
        _init_weights(model, family, c.init, cache.skeleton)
    lit = make_lightning_module(model, c)
    per, manual = _steps_per_step(model, c), _phases(model, c) is not None
    ema = EMA(model, c.ema) if c.ema else None
    world = c.devices * c.num_nodes
    trainer_ref: dict = {}
    sampler = StreamSampler(len(train_set), c.steps * c.batch_size * world, c.seed,
                            start=lambda: int(trainer_ref["t"].global_step) // per * c.batch_size * world
                            if "t" in trainer_ref else 0,
                            shard=lambda: (trainer_ref["t"].global_rank, trainer_ref["t"].world_size)
                            if "t" in trainer_ref else (0, 1))
    loader = torch.utils.data.DataLoader(PassDataset(train_set), batch_size=c.batch_size, sampler=sampler,
                                         num_workers=c.num_workers, drop_last=True,
                                         persistent_workers=c.num_workers > 0,
                                         generator=torch.Generator().manual_seed(c.seed))
    # Loaders get their own generators: creating an iterator must not draw from the global RNG, whose state is
    # checkpointed for the model's sampling noise.
    val_loader = None if val_set is None else torch.utils.data.DataLoader(
        val_set, batch_size=c.batch_size, shuffle=False, num_workers=c.num_workers,
        generator=torch.Generator().manual_seed(c.seed + 1))

    config = {"family": family, "preset": preset, "fps": float(cache.fps), "train": asdict(c),
              "model": asdict(model_cfg),
              "data": {"path": str(Path(str(data)).expanduser()), "data_hash": cache.data_hash,
                       "dataset": str(getattr(cache, "dataset", ""))},
              "command": command or shlex.join(["motionsynth", *sys.argv[1:]])}
    callbacks = [
        *([_ema_callback(ema)] if ema is not None else []),
        L.pytorch.callbacks.ModelCheckpoint(dirpath=str(run / "checkpoints"), every_n_train_steps=c.ckpt_every * per,
                                            save_last=True, save_top_k=0, save_on_train_epoch_end=False),
        _export_callback(run, family, config, cache, per, ema),
        *(callbacks or []),
    ]
    if progress:
        callbacks.append(L.pytorch.callbacks.TQDMProgressBar(refresh_rate=max(1, c.log_every)))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        trainer = _make_trainer(L, c, world, val_loader is not None, run, callbacks, progress, per, manual)
    except (MisconfigurationException, ValueError, RuntimeError) as e:
        raise MotionsynthError(f"cannot set up training with devices={c.devices}, num_nodes={c.num_nodes}, "
                               f"accelerator={c.accelerator!r}, precision={c.precision!r}: {e}") from None
    trainer_ref["t"] = trainer
    # StreamSampler resumes the data stream itself (from global_step), so Lightning's mid-epoch warning is moot
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
    with _new_run_folder(run, last):
        with atomic_open(run / "config.yaml") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        trainer.fit(lit, train_dataloaders=loader, val_dataloaders=val_loader,
                    ckpt_path=str(last) if resume else None, weights_only=True)
    if trainer.is_global_zero:
        step = int(trainer.global_step) // per
        export(run / "model", model, family, {**config, "final_step": step}, cache,
               results=validation_summary(trainer, step), ema=ema)
    return run / "model"
