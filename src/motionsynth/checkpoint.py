"""Self-describing, safe model checkpoints: a checkpoint is a FOLDER. This module is its file I/O only; building the
model and its task method from a folder is `motionsynth.registry` (`load_checkpoint`, `load_method`).

===================  ==============================================================================================
``config.yaml``      ``family`` (the model family, a name in `registry.FAMILIES`), ``model`` (its resolved
                     hyper-parameters), ``fps`` and, when trained by `motionsynth train`, ``train`` and ``command``
``weights.safetensors``  the state dict (safetensors: loading never runs code)
``skeleton.json``    the skeleton the model was trained on (`Skeleton.to_json`)
``stats.npz``        feature normalisation (`FeatureStats`), D = `features.feature_dim(skeleton)` values each
``labels.json``      label vocabulary: label kind → list of names (may be empty)
``card.md``          model card: data, licence, command, test figures
``data_hash``        the training cache's data hash (one line)
===================  ==============================================================================================

`save_checkpoint` writes the folder atomically (a temporary folder beside it, renamed into place; an existing
checkpoint there is replaced only once the new one is complete). `read_checkpoint` reads and checks every file
(types, the statistics against the skeleton's feature size, finite values) and returns a `Checkpoint` without a model;
any problem is a `MotionsynthError` naming the file. Lightning ``.ckpt`` files (written during training) are for
resuming a run only, never for distribution.

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

import numpy as np
import torch
import yaml

from .data.features import FeatureStats, feature_dim
from .errors import MotionsynthError
from .skeleton import Skeleton

FILES = ("config.yaml", "weights.safetensors", "skeleton.json", "stats.npz", "labels.json", "card.md", "data_hash")

BANDAI_LICENCE = ("Trained on the Bandai Namco Research Motion Dataset, licensed CC BY-NC 4.0 "
                  "(https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset); this model "
                  "carries the same licence: non-commercial use, with attribution.")


@dataclass(eq=False)
class Checkpoint:
    """A checkpoint folder's contents.

    Attributes:
        model: the `torch.nn.Module` in eval mode (`registry.load_checkpoint`), or None as `read_checkpoint`
            returns it.
        family: its model family (a name in `registry.FAMILIES`).
        config: the whole ``config.yaml`` (dict); ``config["model"]`` are the model's hyper-parameters.
        skeleton, stats (`FeatureStats`), labels (key → names), data_hash.
        weights_hash: sha256 of ``weights.safetensors`` (identifies the model in benchmark files).
        path: the folder.
        state: the weights as read (name → tensor) until a model is built from them, then None.
    """

    model: torch.nn.Module | None
    family: str
    config: dict
    skeleton: Skeleton
    stats: Any
    labels: dict[str, list[str]] = field(default_factory=dict)
    data_hash: str = ""
    weights_hash: str = ""
    path: Path | None = None
    state: dict[str, torch.Tensor] | None = None

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
        model: the model (its ``state_dict`` is saved, tensors made contiguous on CPU).
        config: dict with at least ``family`` and ``model`` (the model's hyper-parameters, resolved); other keys
            (``fps``, ``train``, ``command``, ``data``) are kept as they are.
        skeleton, stats (`FeatureStats`), labels (key → names), data_hash: saved beside the weights.
        card: model card markdown (default: `default_card`).
    Returns:
        the folder's Path.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    if not isinstance(config.get("family"), str) or "model" not in config:
        raise MotionsynthError(f"a checkpoint config needs 'family' and 'model' entries, got {sorted(config)}")
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


def read_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint folder written by `save_checkpoint`; the weights stay a state dict
    (``Checkpoint.state``, on the CPU) and ``model`` is None.

    Raises `MotionsynthError` naming the folder or file for a missing folder, a missing, damaged, wrong-typed or
    wrong-shaped file and non-finite statistics.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        hint = " (a Lightning .ckpt is for resuming training; export models are folders: RUN/model)" \
            if folder.suffix == ".ckpt" else ""
        raise MotionsynthError(f"{folder}: no such checkpoint folder{hint}")
    missing = [f for f in FILES if not (folder / f).is_file() and f != "card.md"]
    if missing:
        raise MotionsynthError(f"{folder}: not a complete checkpoint (missing {', '.join(missing)})")
    config = _read(folder / "config.yaml", lambda p: yaml.safe_load(p.read_text()))
    if not isinstance(config, dict) or not isinstance(config.get("family"), str) \
            or not isinstance(config.get("model"), dict):
        raise MotionsynthError(f"{folder}/config.yaml: needs a 'family' name and a 'model' mapping")
    skeleton = _read(folder / "skeleton.json", lambda p: Skeleton.from_json(p.read_text()))
    labels = _read(folder / "labels.json", lambda p: json.loads(p.read_text()))
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, list)
                                               and all(isinstance(n, str) for n in v) for k, v in labels.items()):
        raise MotionsynthError(f"{folder}/labels.json: expected {{label kind: [names]}}")
    stats = _read(folder / "stats.npz", FeatureStats.load)
    _check_stats(stats, skeleton, folder / "stats.npz")
    data_hash = _read(folder / "data_hash", lambda p: p.read_text().strip())
    try:
        state = load_file(str(folder / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise MotionsynthError(f"{folder}/weights.safetensors: damaged weights ({e})") from None
    return Checkpoint(model=None, family=config["family"], config=config, skeleton=skeleton, stats=stats,
                      labels=labels, data_hash=data_hash, weights_hash=_file_hash(folder / "weights.safetensors"),
                      path=folder, state=state)


def _read(path: Path, reader):
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, yaml.YAMLError) as e:
        raise MotionsynthError(f"{path}: damaged checkpoint file ({e})") from None


def _check_stats(stats, skeleton: Skeleton, path: Path) -> None:
    """The statistics must have one finite mean and one finite std per feature of ``skeleton`` (`FeatureStats`
    refuses negative ones and floors the rest)."""
    D = feature_dim(skeleton)
    for name in ("mean", "std"):
        value = np.asarray(getattr(stats, name))
        if value.shape != (D,):
            raise MotionsynthError(f"{path}: '{name}' has shape {value.shape}, but the checkpoint's "
                                   f"{len(skeleton)}-joint skeleton has {D} features")
        if not np.isfinite(value).all():
            raise MotionsynthError(f"{path}: '{name}' holds non-finite values")


__all__ = ["Checkpoint", "save_checkpoint", "read_checkpoint", "default_card", "FILES", "BANDAI_LICENCE"]
