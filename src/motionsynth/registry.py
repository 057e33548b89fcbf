"""One table of model families, and the one door from a checkpoint folder to a model or a task method.

A family is a `FamilySpec`: its network class (`motionsynth.models`), the task method that uses it
(`motionsynth.methods`), and its role:

===============  ===========================================================================================
role             what a checkpoint of the family is for
===============  ===========================================================================================
``method``       a task method: ``load_method`` gives a `tasks.Method` (``motionsynth inbetween``, ``bench``, …)
``component``    a part of another family's method (``mvae`` inside ``meva``); ``help`` says what to do instead
``evaluator``    scores other models' output (an action classifier); not a task method
===============  ===========================================================================================

Adding a family is a network module, a method class and one `register` call (or one entry in `FAMILIES` below).
Commands, the harness and scripts reach every family only through this module: `family`, `names`,
`model_config`, `build_model`, `load_checkpoint`, `load_method`.

A network class provides ``Config`` (a dataclass with ``Config.preset(name)`` for ``"cpu"`` and ``"paper"``),
``from_config(config, skeleton)``, ``config_dict()``, ``set_stats(FeatureStats)``, ``training_step(batch, step)`` →
(loss, logs) and ``validation_step(batch)`` → logs with ``"loss"``; optionally ``configure_optimizers(train_config)``
and ``config_from_data(config, cache)`` (see `motionsynth.train`). A method class takes a loaded
`checkpoint.Checkpoint` and keyword options.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from .checkpoint import MAX_PARAMETERS, Checkpoint, check_model_config, read_checkpoint
from .errors import MotionsynthError
from .methods.baselines import BASELINES, make_baseline
from .methods.cvae import CVAEMethod
from .methods.delta import DeltaMethod
from .methods.delta_denoise import DeltaDenoiseMethod
from .methods.diffusion import DiffusionMethod
from .methods.meva import MEVAMethod
from .methods.prior import PriorMethod
from .models.classifier import CLASSIFIER_TRAIN, ActionClassifier
from .models.cvae import CVAE
from .models.delta import DeltaInterpolator
from .models.delta_denoise import DeltaDenoiser
from .models.diffusion import MotionDiffusion
from .models.hmvae import HMVAE
from .models.meva import AUGMENT, MEVA, MotionVAE
from .models.trajectory import TrajectoryModel

if TYPE_CHECKING:
    from pathlib import Path

    from .tasks import BaseMethod

__all__ = ["ROLES", "FamilySpec", "FAMILIES", "register", "family", "names", "model_config", "build_model",
           "load_checkpoint", "load_method", "method_class", "serving", "check_serves", "open_method"]

ROLES = ("method", "component", "evaluator")


@dataclass(frozen=True)
class FamilySpec:
    """One model family.

    Attributes:
        name: what ``motionsynth train NAME`` and ``config.yaml``'s ``family`` call it.
        network: the `torch.nn.Module` class.
        method: the task method class (role ``method``), else None.
        role: one of `ROLES`.
        summary: one line for help texts.
        defaults: model hyper-parameters the name implies (``hmvae-m`` is HM-VAE with ``variant="m"``).
        train_defaults: training settings the family implies (e.g. MEVA's augmentation), under the preset.
        help: for a component or evaluator, what to use instead of a task method.
    """

    name: str
    network: type[Any]
    method: type[Any] | None
    role: str
    summary: str
    defaults: dict = field(default_factory=dict)
    train_defaults: dict = field(default_factory=dict)
    help: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if (self.role == "method") != (self.method is not None):
            raise ValueError(f"family {self.name}: a method class goes with role 'method' and only with it")


FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    """Add (or replace) a family."""
    FAMILIES[spec.name] = spec
    return spec


for _spec in (
    FamilySpec("hmvae", HMVAE, PriorMethod, "method", "hierarchical motion VAE (local + global latents)",
               {"variant": "hmvae"}),
    FamilySpec("hmvae-m", HMVAE, PriorMethod, "method", "HM-VAE ablation M-VAE: one (global) latent", {"variant": "m"}),
    FamilySpec("hmvae-tcn", HMVAE, PriorMethod, "method", "HM-VAE ablation TCN-VAE: temporal convolutions",
               {"variant": "tcn"}),
    FamilySpec("trajectory", TrajectoryModel, None, "component", "HM-VAE root trajectory from body motion",
               help="the trajectory family is a component (root trajectory) of hmvae, not a task method: use an "
                    "hmvae, hmvae-m or hmvae-tcn checkpoint"),
    FamilySpec("mvae", MotionVAE, None, "component", "MEVA's motion VAE (GRU)", train_defaults={"augment": AUGMENT},
               help="the mvae family is a component (motion VAE) of meva, not a task method: train meva on it "
                    "(motionsynth train meva --set model.vae_checkpoint=RUN/model)"),
    FamilySpec("meva", MEVA, MEVAMethod, "method", "MEVA denoiser: VME + MRR on a trained motion VAE"),
    FamilySpec("cvae", CVAE, CVAEMethod, "method", "two-branch conditional VAE: every task in one forward pass",
               train_defaults={"schedule": "constant", "warmup_steps": 0}),
    FamilySpec("delta", DeltaInterpolator, DeltaMethod, "method", "Δ-interpolator: a transformer adds a residual to "
               "the interpolation of the key frames (in-betweening, one forward pass)",
               train_defaults={"steps": 20000}),
    FamilySpec("delta-denoise", DeltaDenoiser, DeltaDenoiseMethod, "method", "Δ-denoiser: a transformer adds a "
               "residual to the smoothing filter's output (denoising, one forward pass)"),
    FamilySpec("diffusion", MotionDiffusion, DiffusionMethod, "method", "transformer denoising diffusion (DDIM/DDPM, "
               "classifier-free guidance): every task by inpainting, denoising by SDEdit",
               train_defaults={"ema": 0.999}),
    FamilySpec("classifier", ActionClassifier, None, "evaluator", "action classifier (content, style): scores "
               "real and generated motion", train_defaults=CLASSIFIER_TRAIN,
               help="the classifier family is an evaluator (action recognition), not a task method: use `motionsynth "
                    "classify CLIP --model CKPT`, or score a generator with `motionsynth bench generate --model GEN "
                    "--classifier CKPT`"),
):
    register(_spec)


def names(role: str | None = None) -> list[str]:
    """Family names (of one role), sorted."""
    return sorted(n for n, s in FAMILIES.items() if role is None or s.role == role)


def family(name: str) -> FamilySpec:
    """The family called ``name``; a clear error listing the known ones otherwise."""
    if name not in FAMILIES:
        raise MotionsynthError(f"unknown model family {name!r}; choose one of {', '.join(names())}")
    return FAMILIES[name]


def model_config(name: str, preset: str = "cpu", overrides: dict | None = None):
    """The config dataclass of family ``name``: its network's ``preset``, the family's defaults, then ``overrides``
    (nested dicts merge into nested dataclasses)."""
    spec = family(name)
    return _merge(spec.network.Config.preset(preset), {**spec.defaults, **(overrides or {})})


def _merge(cfg, overrides: dict):
    known = {f.name for f in fields(cfg)}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{type(cfg).__name__} has no setting {key!r}; settings: {', '.join(sorted(known))}")
        current = getattr(cfg, key)
        if is_dataclass(current) and isinstance(value, dict):
            _merge(current, value)
        else:
            setattr(cfg, key, value)
    if hasattr(cfg, "__post_init__"):
        cfg.__post_init__()
    return cfg


def build_model(name: str, config, skeleton) -> torch.nn.Module:
    """Instantiate family ``name`` from a config dataclass or a dict of resolved hyper-parameters (a dict is checked
    first: `checkpoint.check_model_config`, `MotionsynthError` for a wrong type or size)."""
    network = family(name).network
    if isinstance(config, dict):
        check_model_config(network.Config, config, "model")
        config = _merge(network.Config(), config)
    return network.from_config(config, skeleton)


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint folder (`checkpoint.read_checkpoint`) and build its model in eval mode on ``device``.

    Before anything is allocated, the hyper-parameters are checked against the family's config
    (`checkpoint.check_model_config`) and the network is sized on the ``meta`` device: at most
    `checkpoint.MAX_PARAMETERS` parameters, and no more than its weights file holds. Then it is built on the CPU
    without random initialisation (`_no_init`: the file's values replace every parameter), and its tensors (names and
    shapes) must be exactly those of the weights file.
    Raises `MotionsynthError` for anything `read_checkpoint` refuses, an unknown family, bad hyper-parameters or
    weights that do not fit the configured model.
    """
    ckpt = read_checkpoint(folder)
    folder, name = cast("Path", ckpt.path), ckpt.family  # read_checkpoint sets the path
    if name not in FAMILIES:
        raise MotionsynthError(f"{folder}: unknown model family {name!r}; this motionsynth knows {', '.join(names())}")
    with torch.device("meta"):
        _check_size(_build_checked(ckpt), ckpt)
    with _no_init():
        model = _build_checked(ckpt)
    _check_weights(model, ckpt)
    try:
        model.load_state_dict(cast("dict[str, torch.Tensor]", ckpt.state), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[:3]
        raise MotionsynthError(f"{folder}: weights do not fit the configured {name} model ({' '.join(first)})") \
            from None
    ckpt.model, ckpt.state = model.to(device).eval(), None
    return ckpt


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")
_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_init():
    """Build networks without drawing their initial weights: ``torch.nn.init``'s fill functions do nothing inside
    (layers keep ``torch.empty``'s memory), for a network whose every parameter and persistent buffer is loaded next
    (`_check_weights` + a strict ``load_state_dict``). Buffers a network computes from its config or skeleton are
    computed as usual. The patch is process-wide, so builds inside are serialised by a lock."""
    with _INIT_LOCK:
        saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS}
        try:
            for name in _INIT_FUNCTIONS:
                setattr(torch.nn.init, name, _keep)
            yield
        finally:
            for name, fn in saved.items():
                setattr(torch.nn.init, name, fn)


def _keep(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return tensor


def _build_checked(ckpt: Checkpoint) -> torch.nn.Module:
    """The checkpoint's network (on the current default device), its config checked; bad hyper-parameters are a
    `MotionsynthError` naming config.yaml."""
    where = f"{ckpt.path}/config.yaml"
    check_model_config(family(ckpt.family).network.Config, ckpt.config["model"], f"{where}: model")
    try:
        return build_model(ckpt.family, ckpt.config["model"], ckpt.skeleton)
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise MotionsynthError(f"{where}: bad {ckpt.family} hyper-parameters ({e})") from None


def _check_size(network: torch.nn.Module, ckpt: Checkpoint) -> None:
    """Refuse a configured network (built on the meta device) larger than `MAX_PARAMETERS`, or with more parameters
    than its weights file holds values: then building it for real allocates at most what the file holds."""
    count = sum(p.numel() for p in network.parameters())
    if count > MAX_PARAMETERS:
        raise MotionsynthError(f"{ckpt.path}/config.yaml: the configured {ckpt.family} network has {count:,} "
                               f"parameters, more than the {MAX_PARAMETERS:,} a checkpoint may have")
    held = sum(t.numel() for t in (ckpt.state or {}).values())
    if count > held:
        raise MotionsynthError(f"{ckpt.path}: weights do not fit the configured {ckpt.family} model ({count:,} "
                               f"parameters configured, {held:,} values in the weights file)")


def _check_weights(network: torch.nn.Module, ckpt: Checkpoint) -> None:
    """Refuse a network whose tensors (names, shapes) are not exactly those of the checkpoint's weights."""
    want = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in (ckpt.state or {}).items()}
    problems = [f"missing {k}" for k in want if k not in have] + [f"unexpected {k}" for k in have if k not in want] \
        + [f"{k}: {list(have[k])} in the file, {list(want[k])} configured" for k in want
           if k in have and have[k] != want[k]]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise MotionsynthError(f"{ckpt.path}: weights do not fit the configured {ckpt.family} model "
                               f"({'; '.join(problems[:3])}{more})")


def load_method(checkpoint: Checkpoint | str | os.PathLike, device: str | torch.device = "cpu",
                progress: bool = False, **options):
    """A checkpoint as its family's `tasks.Method` — the object every command, the harness and the scripts call
    ``complete`` on.

    Args:
        checkpoint: a checkpoint folder (loaded on ``device``) or an already loaded `Checkpoint`.
        progress: let the method show progress bars (stderr) where it has some.
        options: options of the family's method, checked against its ``Options`` (`config.Options`; e.g.
            ``restarts=16`` for the prior, ``overlap=16`` for MEVA). An option named ``*_model`` given as a path is
            another model the method uses (e.g. the prior's ``init_model``): it is loaded here, through this same
            door, as a `tasks.Method` on ``device``.
    Raises:
        `MotionsynthError` for a component or evaluator family, an unknown family or option, or a bad value.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, device)
    where = f"{ckpt.path}: " if ckpt.path else ""
    spec = family(ckpt.family)
    if spec.method is None:
        raise MotionsynthError(where + (spec.help or f"the {spec.name} family has no task method; methods exist for "
                                                     f"{', '.join(names('method'))}"))
    spec.method.Options.build(options, f"the {spec.name} method")  # names and values, before loading anything more
    options = {k: load_method(v, device) if k.endswith("_model") and isinstance(v, (str, os.PathLike)) else v
               for k, v in options.items()}
    method = spec.method(ckpt, **options)
    method.progress = progress
    return method


# ---- what serves which task ------------------------------------------------------------------------------------------
def method_class(name: str) -> type[BaseMethod]:
    """The method class of a family (role ``method``) or of a baseline (`methods.baselines.BASELINES`), by name."""
    if name in BASELINES:
        return BASELINES[name]
    spec = family(name)
    if spec.method is None:
        raise MotionsynthError(spec.help or f"the {name} family has no task method")
    return spec.method


def serving(task: str) -> tuple[list[str], list[str]]:
    """What serves ``task`` (a `tasks.TASKS` name): (the families whose method lists it, the baselines that do)."""
    return ([n for n in names("method") if task in cast("type[BaseMethod]", family(n).method).tasks],
            [n for n, cls in BASELINES.items() if task in cls.tasks])


def check_serves(method, task: str) -> None:
    """Refuse, before any work, a method that does not serve ``task`` — ``method``: a family or baseline name, or a
    `tasks.Method` — in one line of the user's words: what it does, and what can do the task instead."""
    from .tasks import TASKS
    from .tasks import task as task_named

    wanted = task_named(task)
    if isinstance(method, str):
        name, cls = method, method_class(method)
        what = f"the {name} baseline" if name in BASELINES else f"a {name} model"
    else:
        cls, what = method, f"the {method.name} method"
    if task in cls.tasks:
        return
    does = ", ".join(TASKS[t].noun for t in cls.tasks if t in TASKS) or "no task"
    families, baselines = serving(task)
    alternatives = ([f"a {' / '.join(families)} model"] if families else []) + \
        ([f"the baseline{'s' * (len(baselines) > 1)} {', '.join(baselines)}"] if baselines else [])
    raise MotionsynthError(f"{what} cannot do {wanted.noun} (it does {does}); for {wanted.noun} use "
                           + (" or ".join(alternatives) or "a model trained for it"))


def open_method(value: str, task: str | None = None, device: str | torch.device = "cpu", progress: bool = False,
                **options):
    """A ``--model`` value as a `tasks.Method`: a baseline name (`methods.baselines.BASELINES`, unless a folder of
    that name exists) or a model — a shipped name, a training run folder or a checkpoint folder
    (`checkpoint.resolve_model`). With ``task``, a method that does not serve it is refused (`check_serves`) before
    its weights are built. ``options`` go to the method (`load_method`, `baselines.make_baseline`)."""
    from .checkpoint import read_config, resolve_model

    if value in BASELINES and not os.path.exists(value):
        if task is not None:
            check_serves(value, task)
        return make_baseline(value, **options)
    folder = resolve_model(value)
    name = read_config(folder / "config.yaml").get("family")
    if task is not None and name in FAMILIES and family(name).method is not None:
        check_serves(name, task)
    return load_method(load_checkpoint(folder, device), device, progress, **options)
