"""Self-describing, safe model checkpoints: a checkpoint is a FOLDER.

===================  ==============================================================================================
``config.yaml``      ``family`` (the model family, a key of `MODELS`), ``model`` (its resolved hyper-parameters),
                     ``fps`` and, when trained by `motionsynth train`, ``train`` and ``command``
``weights.safetensors``  the state dict (safetensors: loading never runs code)
``skeleton.json``    the skeleton the model was trained on (`Skeleton.to_json`)
``stats.npz``        feature normalisation (`FeatureStats`)
``labels.json``      label vocabulary: label key → list of names (may be empty)
``card.md``          model card: data, licence, command, test figures
``data_hash``        the training cache's data hash (one line)
===================  ==============================================================================================

`save_checkpoint` writes the folder atomically (a temporary folder beside it, renamed into place; an existing
checkpoint there is replaced only once the new one is complete). `load_checkpoint` rebuilds the model from the
registry, loads the weights in eval mode and checks nothing is missing; any problem is a `MotionsynthError`.
`load_method` turns a checkpoint into its family's `tasks.Method`. Lightning ``.ckpt`` files (written during
training) are for resuming a run only, never for distribution.

Licence: models trained on the Bandai Namco motion dataset inherit its CC BY-NC 4.0 licence — `card.md` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from .errors import MotionsynthError
from .models import MODELS, build_model
from .skeleton import Skeleton

FILES = ("config.yaml", "weights.safetensors", "skeleton.json", "stats.npz", "labels.json", "card.md", "data_hash")

BANDAI_LICENCE = ("Trained on the Bandai Namco Research Motion Dataset, licensed CC BY-NC 4.0 "
                  "(https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset); this model "
                  "carries the same licence: non-commercial use, with attribution.")


@dataclass(eq=False)
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        model: the `torch.nn.Module`, in eval mode, on the CPU.
        family: its model family (key of `MODELS`).
        config: the whole ``config.yaml`` (dict); ``config["model"]`` are the model's hyper-parameters.
        skeleton, stats (`FeatureStats`), labels (key → names), data_hash.
        weights_hash: sha256 of ``weights.safetensors`` (identifies the model in benchmark files).
        path: the folder.
    """

    model: torch.nn.Module
    family: str
    config: dict
    skeleton: Skeleton
    stats: Any
    labels: dict[str, list[str]] = field(default_factory=dict)
    data_hash: str = ""
    weights_hash: str = ""
    path: Path | None = None

    @property
    def fps(self) -> float | None:
        return self.config.get("fps")

    def check_skeleton(self, skeleton: Skeleton, what: str = "motion") -> None:
        """Raise `SkeletonMismatchError` unless ``skeleton`` matches the one the model was trained on."""
        try:
            self.skeleton.check_compatible(skeleton, what=what)
        except MotionsynthError as e:
            raise type(e)(f"{e} — the model {self.path or ''} was trained on a {len(self.skeleton)}-joint skeleton "
                          f"({', '.join(self.skeleton.names[:4])}, …); retarget the input or use a model "
                          f"trained on this skeleton") from None


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_card(family: str, config: dict, data: str = "", command: str = "", results: str = "",
                 dataset: str = "") -> str:
    """A model card in markdown: family, data, licence, command, hyper-parameters, test figures."""
    licence = BANDAI_LICENCE if "bandai" in (dataset + data).lower() else \
        "The licence of the training data applies to this model; check it before redistributing."
    return "\n".join([
        f"# {family} model", "",
        "## Data", data or "(not recorded)", "",
        "## Licence", licence, "",
        "## Command", f"```\n{command}\n```" if command else "(not recorded)", "",
        "## Hyper-parameters", f"```yaml\n{yaml.safe_dump(config.get('model', {}), sort_keys=False)}```", "",
        "## Test figures", results or "(none yet)", "",
    ])


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module, config: dict, skeleton: Skeleton, stats,
                    labels: dict | None = None, data_hash: str = "", card: str | None = None) -> Path:
    """Write a checkpoint folder atomically.

    Args:
        folder: the checkpoint folder (replaced if it exists).
        model: the model (any family in `MODELS`; its ``state_dict`` is saved, tensors made contiguous on CPU).
        config: dict with at least ``family`` and ``model`` (the model's hyper-parameters, resolved); other keys
            (``fps``, ``train``, ``command``, ``data``) are kept as they are.
        skeleton, stats (`FeatureStats`), labels (key → names), data_hash: saved beside the weights.
        card: model card markdown (default: `default_card`).
    Returns:
        the folder's Path.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    if config.get("family") not in MODELS:
        raise MotionsynthError(f"unknown model family {config.get('family')!r}; known: {', '.join(sorted(MODELS))}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"), metadata={"family": config["family"]})
        (tmp / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
        (tmp / "skeleton.json").write_text(skeleton.to_json())
        stats.save(tmp / "stats.npz")
        (tmp / "labels.json").write_text(json.dumps(labels or {}, indent=1))
        (tmp / "card.md").write_text(card if card is not None else default_card(config["family"], config))
        (tmp / "data_hash").write_text(f"{data_hash}\n")
        if folder.exists():  # swap: move the old one aside, rename the new one in, then delete the old one
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, old / "x")
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _plain(x):
    """Make a config YAML-safe (tuples → lists, numpy scalars → Python)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return x


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint folder written by `save_checkpoint` (model in eval mode on ``device``).

    Raises `MotionsynthError` for a missing folder, a missing or damaged file, an unknown family or weights that do
    not fit the configured model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .data.features import FeatureStats

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        hint = " (a Lightning .ckpt is for resuming training; export models are folders: RUN/model)" \
            if folder.suffix == ".ckpt" else ""
        raise MotionsynthError(f"{folder}: no such checkpoint folder{hint}")
    missing = [f for f in FILES if not (folder / f).is_file() and f != "card.md"]
    if missing:
        raise MotionsynthError(f"{folder}: not a complete checkpoint (missing {', '.join(missing)})")
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        skeleton = Skeleton.from_json((folder / "skeleton.json").read_text())
        labels = json.loads((folder / "labels.json").read_text())
        stats = FeatureStats.load(folder / "stats.npz")
        data_hash = (folder / "data_hash").read_text().strip()
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        raise MotionsynthError(f"{folder}: damaged checkpoint ({e})") from None
    if not isinstance(config, dict) or "family" not in config or "model" not in config:
        raise MotionsynthError(f"{folder}/config.yaml: needs 'family' and 'model' entries")
    family = config["family"]
    if family not in MODELS:
        raise MotionsynthError(f"{folder}: unknown model family {family!r}; this motionsynth knows "
                               f"{', '.join(sorted(MODELS))}")
    try:
        model = build_model(family, config["model"], skeleton)
    except (TypeError, ValueError) as e:
        raise MotionsynthError(f"{folder}/config.yaml: bad {family} hyper-parameters ({e})") from None
    try:
        state = load_file(str(folder / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise MotionsynthError(f"{folder}/weights.safetensors: damaged weights ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[:3]
        raise MotionsynthError(f"{folder}: weights do not fit the configured {family} model ({' '.join(first)})") \
            from None
    model.to(device).eval()
    return Checkpoint(model=model, family=family, config=config, skeleton=skeleton, stats=stats, labels=labels,
                      data_hash=data_hash, weights_hash=_file_hash(folder / "weights.safetensors"), path=folder)


# family → (module, class) of its `tasks.Method`; imported when used (a family's method may pull in heavy code)
METHODS: dict[str, tuple[str, str]] = {
    "hmvae": ("motionsynth.models.prior", "PriorMethod"),
    "hmvae-m": ("motionsynth.models.prior", "PriorMethod"),
    "hmvae-tcn": ("motionsynth.models.prior", "PriorMethod"),
    "meva": ("motionsynth.models.meva", "MEVAMethod"),
}

# families that are parts of another family's method: what they are, and what to do with them
COMPONENTS: dict[str, str] = {
    "mvae": "the mvae family is a component (motion VAE) of meva, not a task method: train meva on it "
            "(motionsynth train meva --set model.vae_checkpoint=RUN/model)",
    "trajectory": "the trajectory family is a component (root trajectory) of hmvae, not a task method: use an "
                  "hmvae, hmvae-m or hmvae-tcn checkpoint",
}


def load_method(checkpoint: Checkpoint | str | os.PathLike, device: str | torch.device = "cpu", **options):
    """A checkpoint as its family's `tasks.Method` (the object ``motionsynth bench --model`` and the task commands
    call ``complete`` on).

    ``hmvae``, ``hmvae-m``, ``hmvae-tcn`` → `motionsynth.models.prior.PriorMethod`; ``meva`` →
    `motionsynth.models.meva.MEVAMethod`. Component families (``mvae``, ``trajectory``) have no method of their own.

    Args:
        checkpoint: a checkpoint folder (loaded on ``device``) or an already loaded `Checkpoint`.
        options: keyword arguments of the method's constructor (e.g. ``overlap=16`` for MEVA).
    Returns:
        the method; its ``checkpoint_hash`` is the checkpoint's ``weights_hash`` (benchmark records name it).
    Raises:
        `MotionsynthError` for a component family, an unknown one or an unknown option.
    """
    import importlib
    import inspect

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, device)
    where = f"{ckpt.path}: " if ckpt.path else ""
    if ckpt.family in COMPONENTS:
        raise MotionsynthError(where + COMPONENTS[ckpt.family])
    if ckpt.family not in METHODS:
        raise MotionsynthError(f"{where}the {ckpt.family} family has no task method; methods exist for "
                               f"{', '.join(sorted(METHODS))}")
    module, name = METHODS[ckpt.family]
    cls = getattr(importlib.import_module(module), name)
    try:
        inspect.signature(cls).bind(ckpt, **options)
    except TypeError as e:  # an option the method does not take
        raise MotionsynthError(f"{where}bad option for the {ckpt.family} method {name}: {e}") from None
    method = cls(ckpt, **options)
    if getattr(method, "checkpoint_hash", None) is None:
        method.checkpoint_hash = ckpt.weights_hash
    return method


__all__ = ["MODELS", "Checkpoint", "save_checkpoint", "load_checkpoint", "load_method", "default_card", "FILES",
           "BANDAI_LICENCE", "METHODS", "COMPONENTS"]
