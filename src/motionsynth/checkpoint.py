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
checkpoint there is replaced only once the new one is complete; the folder and its files get the umask's permissions).
`read_checkpoint` reads and checks every file (types, the statistics against the skeleton's feature size, finite
values; ``config.yaml``: only `CONFIG_SECTIONS`, each of its type, ``fps`` finite and positive — `check_config`) and
returns a `Checkpoint` without a model; any problem is a `MotionsynthError` naming the file. The model's
hyper-parameters are checked against the family's config dataclass by `check_model_config` (types, sizes from 1 to
`MAX_SIZE`) when `registry.load_checkpoint` builds the network — first on the ``meta`` device, so that a network
larger than `MAX_PARAMETERS` or unlike the weights file is refused before anything is allocated. Lightning ``.ckpt``
files (written during training) are for resuming a run only, never for distribution.

Every ``--model`` value and every loader goes through `resolve_model` (`read_checkpoint` calls it): a value is a
checkpoint folder, a training run folder (its ``best/``, else its ``model/``) or the name of a shipped model.

Shipped (pretrained) models are checkpoint folders ``NAME/`` in `pretrained_dir` (the package's ``pretrained/``
folder, or ``$MOTIONSYNTH_PRETRAINED``) listed in its ``index.yaml`` (name → ``family``, ``for``: what it is for,
``source``: the run it was exported from, ``dtype``). `export_model` (``motionsynth models export``) copies a
checkpoint there, optionally with its weight matrices stored in float16; `read_checkpoint` casts half-precision
tensors back to float32 on load (still safetensors: no code runs).

Licence: models trained on the Bandai Namco motion dataset inherit its CC BY-NC 4.0 licence — `card.md` says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml

from .data.features import FeatureStats, feature_dim
from .errors import MotionsynthError, ParamError
from .io.atomic import atomic_open, check_output, default_permissions, short_path, temp_folder
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

    @property
    def window(self) -> int:
        """The frames the model works on at once (its config's ``window``; 64, the presets', when it has none)."""
        return int(self.config["model"].get("window", 64))

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
                 dataset: str = "", validation: str = "") -> str:
    """A model card in markdown: family, data, licence, command, hyper-parameters, test figures (``results``: a few
    bullets on the test split, what `motionsynth models` shows) and validation figures (``validation``: what
    training saw)."""
    licence = BANDAI_LICENCE if "bandai" in (dataset + data).lower() else \
        "The licence of the training data applies to this model; check it before redistributing."
    return "\n".join([
        f"# {family} model", "",
        "## Data", data or "(not recorded)", "",
        "## Licence", licence, "",
        "## Command", f"```\n{command}\n```" if command else "(not recorded)", "",
        "## Hyper-parameters", f"```yaml\n{yaml.safe_dump(config.get('model', {}), sort_keys=False)}```", "",
        "## Test figures", results or "(none yet)", "",
        *(["## Validation figures", validation, ""] if validation else []),
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
    tmp = temp_folder(folder)
    try:
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"), metadata={"family": config["family"]})
        (tmp / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
        (tmp / "skeleton.json").write_text(skeleton.to_json())
        stats.save(tmp / "stats.npz")
        (tmp / "labels.json").write_text(json.dumps(labels or {}, indent=1))
        (tmp / "card.md").write_text(card if card is not None else default_card(config["family"], config))
        (tmp / "data_hash").write_text(f"{data_hash}\n")
        default_permissions(tmp)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename the finished folder ``tmp`` to ``folder``; an existing one is moved aside first, deleted after."""
    if folder.exists():
        old = temp_folder(folder, "old")
        os.replace(folder, old / "x")
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


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
    """Read and check a checkpoint written by `save_checkpoint`; the weights stay a state dict (``Checkpoint.state``,
    on the CPU, half-precision tensors cast to float32) and ``model`` is None.

    Args:
        folder: anything `resolve_model` accepts: a checkpoint folder, a training run folder or a shipped name.
    Raises `MotionsynthError` naming the folder or file for a missing folder, a missing, damaged, wrong-typed or
    wrong-shaped file and non-finite statistics.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_model(folder)
    missing = [f for f in FILES if not (folder / f).is_file() and f != "card.md"]
    if missing:
        raise MotionsynthError(f"{folder}: not a complete checkpoint (missing {', '.join(missing)})")
    config = read_config(folder / "config.yaml")
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
    state = {k: v.float() if v.dtype in HALF_DTYPES else v for k, v in state.items()}  # fp16 exports → fp32
    return Checkpoint(model=None, family=config["family"], config=config, skeleton=skeleton, stats=stats,
                      labels=labels, data_hash=data_hash, weights_hash=_file_hash(folder / "weights.safetensors"),
                      path=folder, state=state)


def _read(path: Path, reader):
    try:
        return reader(path)
    except RecursionError:
        raise MotionsynthError(f"{path}: damaged checkpoint file (nested too deeply to read)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, yaml.YAMLError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MotionsynthError(f"{path}: damaged checkpoint file ({first})") from None


# ---- what config.yaml may hold -----------------------------------------------------------------------------------
CONFIG_SECTIONS = {"family": str, "model": dict, "fps": float, "preset": str, "train": dict, "data": dict,
                   "command": str, "best": dict, "final_step": int}
"""The top-level entries of a checkpoint's (and a training run's) ``config.yaml`` and their types."""
MAX_SIZE = 1_000_000
"""The largest value of a size hyper-parameter (`SIZES`): far above any real network, below a typo's."""
MAX_PARAMETERS = 1_000_000_000
"""The most parameters a checkpoint's network may have (counted before anything is allocated)."""
SIZES = frozenset({"window", "channels", "kernel", "hidden", "layers", "latent", "local_latent", "global_latent",
                   "mrr_hidden", "d_model", "heads", "ff", "T", "embedding", "branches"})
"""Model hyper-parameters that are sizes or counts of layers: whole numbers from 1 to `MAX_SIZE` (every other whole
number must not be negative)."""


def read_config(path: str | os.PathLike) -> dict:
    """Read and check a ``config.yaml`` of a checkpoint or a training run (`check_config`)."""
    path = Path(path)
    config = _read(path, lambda p: yaml.safe_load(p.read_text()))
    check_config(config, str(path))
    return config


def check_config(config, where: str) -> None:
    """Raise `MotionsynthError` (naming ``where``) unless ``config`` is a mapping of `CONFIG_SECTIONS` only, with a
    ``family`` name, a ``model`` mapping, each section of its type and ``fps``, when present, a finite positive
    number. The model's hyper-parameters are checked against its family by `check_model_config`."""
    if not isinstance(config, dict) or not isinstance(config.get("family"), str) \
            or not isinstance(config.get("model"), dict):
        raise MotionsynthError(f"{where}: needs a 'family' name and a 'model' mapping")
    unknown = sorted(str(k) for k in config if k not in CONFIG_SECTIONS)
    if unknown:
        raise MotionsynthError(f"{where}: unknown section{'s' * (len(unknown) > 1)} {', '.join(unknown)}; a config "
                               f"has {', '.join(CONFIG_SECTIONS)}")
    for key, kind in CONFIG_SECTIONS.items():
        if key in config and not _is_type(config[key], kind):
            raise MotionsynthError(f"{where}: {key} must be {_type_name(kind)}, got {_shown(config[key])}")
    if "fps" in config and not config["fps"] > 0:
        raise MotionsynthError(f"{where}: fps must be a positive number, got {_shown(config['fps'])}")


def check_model_config(config_class: type, values, where: str) -> None:
    """Check a family's hyper-parameters ``values`` (a mapping, as in ``config.yaml``'s ``model``) against its config
    dataclass before any network is built: every key one of its fields; every value of the field's type (a whole
    number is a number too, true/false is not one; a nested dataclass is a mapping, checked the same way); numbers
    finite; `SIZES` from 1 to `MAX_SIZE`, other whole numbers not negative. Raises `MotionsynthError` naming
    ``where`` and the setting."""
    if not isinstance(values, dict):
        raise MotionsynthError(f"{where}: must be a mapping of settings, got {_shown(values)}")
    hints = typing.get_type_hints(config_class)
    known = [f.name for f in dataclasses.fields(config_class)]
    for key, value in values.items():
        if key not in known:
            raise MotionsynthError(f"{where}: {config_class.__name__} has no setting {key!r}; settings: "
                                   f"{', '.join(sorted(known))}")
        kind, what = hints[key], f"{where}.{key}"
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            check_model_config(cast(type, kind), value, what)  # a dataclass type hint
            continue
        if not _is_type(value, kind):
            raise MotionsynthError(f"{what} must be {_type_name(kind)}, got {_shown(value)}")
        low, high = (1, MAX_SIZE) if key in SIZES else (0, None)
        for n in _whole_numbers(value):
            if n < low or (high is not None and n > high):
                raise MotionsynthError(f"{what} must be {'from 1 to ' + format(high, ',') if high else 'at least 0'}"
                                       f", got {n:,}")


def _is_type(value, kind) -> bool:
    """Whether ``value`` (from YAML) is of the annotated type ``kind`` (int, float, str, bool, list[…], dict[…],
    unions with None, dataclasses, Any)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_type(value, a) for a in args)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if kind is list or origin is list:
        return isinstance(value, (list, tuple)) and (not args or all(_is_type(v, args[0]) for v in value))
    if kind is dict or origin is dict:
        return isinstance(value, dict) and (not args or all(_is_type(k, args[0]) and _is_type(v, args[1])
                                                            for k, v in value.items()))
    if dataclasses.is_dataclass(kind):
        return isinstance(value, cast(type, kind))  # a dataclass type hint
    return isinstance(value, kind) if isinstance(kind, type) else True


def _type_name(kind) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {int: "a whole number", float: "a finite number", str: "a text", bool: "true or false", dict: "a mapping",
             list: "a list", type(None): "null"}
    return names.get(origin or kind, "a mapping" if dataclasses.is_dataclass(kind) else str(kind))


def _whole_numbers(value):
    """The whole numbers in a value (itself, or the items of a list, or the values of a mapping)."""
    if isinstance(value, bool):
        return
    if isinstance(value, numbers.Integral):
        yield int(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _whole_numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _whole_numbers(v)


def _shown(value, limit: int = 60) -> str:
    """A value for a one-line message: its repr, cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


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


# ---- resolving --model values; shipped (pretrained) models ------------------------------------------------------
PRETRAINED_ENV = "MOTIONSYNTH_PRETRAINED"
INDEX = "index.yaml"
HALF_DTYPES = (torch.float16, torch.bfloat16)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_INDEX_HEADER = ("# Shipped pretrained models: name → family, what it is for, the run it was exported from,\n"
                 "# weight dtype. Each name is a checkpoint folder beside this file. Written by\n"
                 "# `motionsynth models export`.\n")


def pretrained_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder of shipped models: ``root`` if given, else ``$MOTIONSYNTH_PRETRAINED``, else the package's
    ``pretrained/`` folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(PRETRAINED_ENV)
    return Path(env).expanduser() if env else Path(__file__).parent / "pretrained"


def shipped_models(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """The index of shipped models (`pretrained_dir`): name → ``{family, for, source, dtype}``, in index order; empty
    when there is no index."""
    path = pretrained_dir(root) / INDEX
    if not path.is_file():
        return {}
    index = _read(path, lambda p: yaml.safe_load(p.read_text()))
    if index is None:
        return {}
    if not isinstance(index, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in index.items()):
        raise MotionsynthError(f"{path}: damaged index of shipped models (expected name: {{family: …, for: …}})")
    return index


def _shipped_hint(root=None) -> str:
    names = list(shipped_models(root))
    listed = f"shipped models: {', '.join(names)}" if names else "no models ship with this installation yet"
    return f"{listed} (`motionsynth models`)"


def resolve_model(value: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder a ``--model`` value means — one rule for every command and loader:

    1. a checkpoint folder (it holds ``weights.safetensors``; one with only ``config.yaml`` is taken as a checkpoint
       too, so that `read_checkpoint` names what is missing);
    2. a training run folder (``motionsynth train --out RUN``): ``RUN/best`` (lowest validation loss), else
       ``RUN/model`` (the last step);
    3. the name of a shipped model (`shipped_models`, in `pretrained_dir` ``root``), e.g. ``hmvae-bandai``.

    A folder on disk wins over a shipped model of the same name. Raises `MotionsynthError` (one line) for anything
    else: an empty value, a NUL character, an unknown ``~user``, a name too long for the file system, a symbolic link
    to nothing (or a loop), a missing path that is no shipped name (the message lists the shipped names), a
    Lightning ``.ckpt`` file, another file, a run with nothing exported yet, a folder that is neither a checkpoint
    nor a run.
    """
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or not text.strip():
        raise ParamError(f"`model` {text!r}: empty; give a checkpoint folder, a training run folder or a "
                         f"shipped model name ({_shipped_hint(root)})", "model")
    if "\0" in text:
        raise ParamError(f"`model` {short_path(text)!r}: a path cannot hold a NUL character", "model")
    try:
        path = Path(text).expanduser()
    except RuntimeError as e:  # ~nosuchuser
        raise ParamError(f"`model` {short_path(text)}: {e}", "model") from None
    try:
        return _resolve_path(path, text, root)
    except OSError as e:  # a name too long, a path through something unreadable
        raise ParamError(f"`model` {short_path(text)}: {(e.strerror or str(e)).lower()}", "model") from None


def _resolve_path(path: Path, text: str, root) -> Path:
    """`resolve_model` for a value that is a usable path (``~`` expanded)."""
    if path.is_dir():
        if (path / "weights.safetensors").is_file():
            return path
        for sub in ("best", "model"):
            if (path / sub).is_dir():
                return path / sub
        if (path / "checkpoints").is_dir():
            raise MotionsynthError(f"{path}: a training run with no exported model yet (no best/ or model/); "
                                   f"best/ appears at the first validation, model/ when training ends")
        if (path / "config.yaml").is_file():
            return path
        raise MotionsynthError(f"{path}: not a checkpoint folder (config.yaml + weights.safetensors) nor a training "
                               f"run folder (best/ or model/)")
    if path.suffix == ".ckpt":
        raise MotionsynthError(f"{path}: a Lightning .ckpt is for resuming training, not a model; pass the run folder "
                               f"or its exported checkpoint folder (RUN/best or RUN/model)")
    if path.exists():
        raise MotionsynthError(f"{path}: not a folder; a model is a checkpoint folder, a training run folder or a "
                               f"shipped model name")
    if path.is_symlink():
        raise MotionsynthError(f"{path}: a symbolic link to nothing (broken, or a loop)")
    shipped = shipped_models(root)
    if text in shipped and _NAME.match(text):  # (a hand-edited index cannot point outside the folder)
        folder = pretrained_dir(root) / text
        if not folder.is_dir():
            raise MotionsynthError(f"shipped model {text!r} is listed in {pretrained_dir(root) / INDEX} but its "
                                   f"folder {folder} is missing (a broken installation: reinstall motionsynth)")
        return folder
    raise MotionsynthError(f"{short_path(text)}: no such checkpoint folder, training run folder or shipped model; "
                           f"{_shipped_hint(root)}")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def card_figures(card: str, limit: int = 200) -> str:
    """A model card's ``## Test figures`` section on one line (bullets joined by ``;``, at most ``limit``
    characters), or '' when none is recorded."""
    lines = card.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().lower().startswith("## test figures")), None)
    if start is None:
        return ""
    parts: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        text = line.strip().removeprefix("- ").removeprefix("* ").strip()
        if not text or text == "(none yet)" or text.startswith("```") or set(text) <= set("-|: "):
            continue
        parts.append(text)
    out = ""
    for text in parts:
        out += text if not out else (" " if out.endswith(":") else "; ") + text
    return out if len(out) <= limit else out[: limit - 1].rstrip() + "…"


def model_table(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per shipped model: ``name, family, bytes, for, source, dtype, figures`` (the card's test figures
    line), ``missing`` (True when the index lists a folder that is not there)."""
    base = pretrained_dir(root)
    rows = []
    for name, entry in shipped_models(root).items():
        folder = base / name
        missing = not (folder / "weights.safetensors").is_file()
        card = folder / "card.md"
        rows.append({"name": name, "family": str(entry.get("family", "?")),
                     "bytes": 0 if missing else _folder_bytes(folder), "for": str(entry.get("for", "")),
                     "source": str(entry.get("source", "")), "dtype": str(entry.get("dtype", "float32")),
                     "figures": card_figures(card.read_text()) if card.is_file() else "", "missing": missing})
    return rows


def _to_half(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """float16 copies of the weight matrices and kernels (floating tensors of 2 or more dimensions whose values fit
    float16); vectors (biases, norms, the feature statistics buffers), scalars, integers and tensors that would
    overflow stay as they are. Returns the new state and how many tensors were cast."""
    out, cast = {}, 0
    for key, v in state.items():
        if v.is_floating_point() and v.dtype not in HALF_DTYPES and v.dim() >= 2:
            h = v.to(torch.float16)
            if bool(torch.isfinite(h).all()) or not bool(torch.isfinite(v).all()):
                out[key], cast = h.contiguous(), cast + 1
                continue
        out[key] = v.contiguous()
    return out, cast


def export_model(source: str | os.PathLike, name: str, fp16: bool = False, purpose: str = "",
                 root: str | os.PathLike | None = None) -> Path:
    """Copy a checkpoint (anything `resolve_model` accepts) into the shipped models as ``NAME/`` and list it in the
    index — what ``motionsynth models export`` runs.

    Args:
        source: checkpoint folder, training run folder (its best/, else model/) or shipped name.
        name: the shipped name (lower case letters, digits, ``.``, ``_``, ``-``), e.g. ``hmvae-bandai``.
        fp16: store weight matrices in float16 (`read_checkpoint` casts them back to float32 on load).
        purpose: one line: what the model is for (``motionsynth models`` shows it).
        root: the pretrained folder (default `pretrained_dir`).
    Returns:
        the new checkpoint folder. It is written beside the others in a temporary folder, then renamed into place
        (replacing an older one of the same name only once complete); the index is rewritten atomically after.
    """
    from safetensors.torch import save_file

    if not _NAME.match(name):
        raise ParamError(f"`name` {name!r}: use lower case letters, digits, '.', '_' and '-' "
                               f"(e.g. hmvae-bandai)")
    src = resolve_model(source, root)
    ckpt = read_checkpoint(src)  # checks every file before anything is written
    base = check_output(pretrained_dir(root), folder=True)
    folder = base / name
    if folder.resolve() == src.resolve():
        raise MotionsynthError(f"{src} is already the shipped model {name!r}")
    tmp = temp_folder(folder)
    try:
        from safetensors import safe_open

        with safe_open(str(src / "weights.safetensors"), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        state = ckpt.state
        assert state is not None  # read_checkpoint keeps the weights as a state dict
        if fp16:
            state, _ = _to_half(state)
            metadata["dtype"] = "float16"
        save_file(state, str(tmp / "weights.safetensors"), metadata={**metadata, "family": ckpt.family})
        for f in FILES:
            if f not in ("weights.safetensors", "card.md"):
                shutil.copyfile(src / f, tmp / f)
        card = (src / "card.md").read_text() if (src / "card.md").is_file() else default_card(ckpt.family,
                                                                                               ckpt.config)
        stored = "float16 (weight matrices; vectors and statistics float32)" if fp16 else "float32"
        note = (f"Shipped as `{name}` (`motionsynth models export {src} --name {name}{' --fp16' if fp16 else ''}`); "
                f"weights stored in {stored}, loaded as float32.")
        card = card.split("\n## Distribution\n")[0]  # a re-export replaces the note of the previous one
        (tmp / "card.md").write_text(card.rstrip("\n") + "\n\n## Distribution\n" + note + "\n")
        default_permissions(tmp)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = shipped_models(root).get(name, {})
    update_index(name, {"family": ckpt.family, "for": purpose or old.get("for", ""), "source": str(src),
                        "dtype": "float16" if fp16 else "float32"}, root, replace=True)
    return folder


def update_index(name: str, fields: dict, root: str | os.PathLike | None = None, replace: bool = False) -> None:
    """Set ``fields`` of the shipped model ``name`` in the index (all of its entry with ``replace``); the index is
    rewritten atomically."""
    index = shipped_models(root)
    index[name] = dict(fields) if replace else {**index.get(name, {}), **fields}
    with atomic_open(pretrained_dir(root) / INDEX) as f:
        f.write(_INDEX_HEADER + yaml.safe_dump(index, sort_keys=False, allow_unicode=True))


__all__ = ["Checkpoint", "save_checkpoint", "read_checkpoint", "read_config", "check_config", "check_model_config",
           "CONFIG_SECTIONS", "MAX_SIZE", "MAX_PARAMETERS", "SIZES", "default_card", "FILES", "BANDAI_LICENCE",
           "PRETRAINED_ENV", "pretrained_dir", "shipped_models", "resolve_model", "model_table", "card_figures",
           "export_model", "update_index"]
