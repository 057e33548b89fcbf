"""The prepared, memory-mapped motion cache every model trains from.

`prepare` reads a dataset once (through an adapter, on several processes), and writes a folder:

==========================  ==========================================================================================
``meta.json``               version, dataset, source, fps, take table (name, start, length, split, labels, and
                            where it came from: source index, original name, the source's label names where
                            they were unified), ``sources`` (per source: file, path, dataset name, adapter,
                            takes, frames, retargeted, renamed, skipped), label vocabulary, counts, skipped
                            takes with reasons, ``data_hash``; ``adapter``: the adapter's options when any
                            (AMASS ``body_models``)
``skeleton.json``           the skeleton (`Skeleton.to_json`) of the first train take
``rotations.npy``           (N, J, 4) float32 local quaternions (x, y, z, w) of all N frames, takes back to back
``root_positions.npy``      (N, 3) float32 moving-root positions (file units, cm)
``features.npy``            (N, D) float32 `motionsynth.data.features.encode` of each take
``stats.npz``               `FeatureStats` (mean, std) over the **train** split only
``offsets.npy``             (takes, J, 3) per-take rest offsets — only when bone offsets differ between takes
==========================  ==========================================================================================

Take ``i`` occupies rows ``takes[i].start : takes[i].start + takes[i].length`` of every array. `MotionCache` opens
the arrays with ``np.load(mmap_mode="r")``, so even millions of frames never need to fit in memory; `prepare` streams
takes into the files as they are parsed (one take in memory per process) and writes into a temporary folder that is
renamed into place at the end, so an interrupted run never leaves a half-written cache.

A run killed outright (``kill -9``, a lost machine) leaves its temporary folder ``.OUT.tmp-PID-XXXX`` beside ``OUT``.
The folder holds a lock file locked (``fcntl.lockf``) by the writing process for as long as it runs, and its name
carries that process id; the next `prepare` into the same ``OUT`` removes such folders whose writer is gone (lock
free, or no lock and the process id no longer alive), and puts back a previous cache (``.OUT.old-PID``) that a kill
between the two final renames left aside. ``MotionCache.info`` (``motionsynth data info``) lists stale folders it
finds beside a cache; `stale_temp_folders` and `remove_stale_temp_folders` do the same for any ``OUT``.

Every take is folded onto the dataset's canonical moving root by the loader (`Motion.fold_top_joints`): the first
branching joint (``Hips``) carries the trajectory whichever joint above it (``joint_Root``) a file animates, so takes
of one dataset never disagree on the moving root because of how their files were exported.

Splits are by take, decided by a hash of the take's name in its source alone (sha1 → [0, 1): < 0.8 train, < 0.9
val, else test), so a take keeps its split when the dataset grows or another source joins it (even when a name clash
renames it in the cache), and no window of a test take can reach training.

Several sources make one cache (``prepare([A, B, …], …)``, ``docs/DATA.md``): each is read by its own adapter, the
first source's skeleton is the cache's, takes of a later source on another skeleton are retargeted onto it
(`motionsynth.retarget.retarget`), a name an earlier source already uses becomes ``SOURCE/NAME``, labels go through
`labels.unify_label`, and every take records where it came from (`Take.source`, `Take.original`,
`MotionCache.sources`).

The cache keeps local rotations and the root trajectory. Per-joint animated translations of non-root joints (BVH
files with position channels on every joint) are replaced by the rest offsets — for the Bandai Namco data these
channels equal the offsets (checked: within 1e-5 cm).

``data_hash`` is the sha256 over the fps and, take by take in order, the take name and the raw float32 rotation and
root-position bytes: it identifies the prepared data, and is stable across runs and machines.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Sequence, cast

import numpy as np

from ..errors import InvalidMotionError, MotionsynthError, ParamError, SkeletonMismatchError
from ..io.npz import NPY_ERRORS
from ..motion import Motion
from ..skeleton import Skeleton
from .adapters import Listing, TakeRef, get_adapters, load_take, map_takes
from .labels import unify_label, unify_labels

VERSION = 1
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
_ARRAYS = ("rotations", "root_positions", "features")
_LOCK = ".lock"  # inside a temporary folder: locked by the prepare that writes it

try:
    import fcntl
except ImportError:  # Windows: ownership is judged by the process id alone
    fcntl = None  # type: ignore[assignment]  # the module or None


@dataclass
class Take:
    """One take in the cache: rows ``start : start + length`` of the arrays."""

    name: str
    start: int
    length: int
    split: str
    labels: dict[str, str] = field(default_factory=dict)
    source: int = 0
    """Index of the take's source in ``meta["sources"]`` (`MotionCache.sources`)."""
    original: str = ""
    """The take's name in its source ("": ``name``, as in caches from before several sources)."""
    source_labels: dict[str, str] = field(default_factory=dict)
    """The labels as the source named them, only where `labels.unify_label` renamed one."""


def split_of(name: str) -> str:
    """'train', 'val' or 'test' for a take name: a stable hash (sha1 of the UTF-8 name) mapped to [0, 1)."""
    u = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return "train" if u < SPLIT_FRACTIONS[0] else "val" if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1] else "test"


# ---- writing ---------------------------------------------------------------------------------------------------
class _NpyAppender:
    """Write a ``.npy`` file of unknown length by appending rows; the header is rewritten with the true shape on
    `close`. The header is padded to a fixed 128 bytes so that rewriting it never moves the data."""

    HEADER = 128

    def __init__(self, path: Path, dtype, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape, self.rows = path, np.dtype(dtype), tuple(row_shape), 0
        self.f = open(path, "wb")
        self.f.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        d = repr({"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (rows, *self.row_shape)})
        pad = self.HEADER - 10 - len(d) - 1
        if pad < 0:
            raise ValueError("npy header too long")
        body = (d + " " * pad + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: rows of shape {rows.shape[1:]}, expected {self.row_shape}")
        self.f.write(rows.tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(self._header(self.rows))
        self.f.close()


@dataclass
class _Encoded:
    """What a worker sends back for one take (float32 arrays; small)."""

    skeleton: Skeleton
    fps: float
    rotations: np.ndarray
    root_positions: np.ndarray
    features: np.ndarray
    labels: dict[str, str]
    retargeted: bool = False


def _same_skeleton(reference: Skeleton, skeleton: Skeleton) -> bool:
    """Whether a take on ``skeleton`` joins a cache on ``reference`` as it is (`_problem`'s skeleton checks)."""
    try:
        reference.check_compatible(skeleton, what="take")
    except SkeletonMismatchError:
        return False
    return reference.root == skeleton.root


def _encode_take(ref: TakeRef, fps: float | None, target: Skeleton | None = None) -> _Encoded:
    """Load, resample, and encode one take (runs in a worker); retargeted onto ``target`` when it is given and the
    take's skeleton is not the same (`body.NotHumanoidError` when it cannot be)."""
    from .features import encode

    motion = load_take(ref)
    if fps is not None and abs(motion.fps - fps) > 1e-9:
        motion = motion.resample(fps)
    motion.translations = None  # the cache keeps rest offsets (see the module docstring)
    retargeted = False
    if target is not None and not _same_skeleton(target, motion.skeleton):
        from ..retarget import retarget

        motion, retargeted = retarget(motion, target), True
    return _Encoded(motion.skeleton, float(motion.fps), motion.rotations.astype(np.float32),
                    motion.root_positions.astype(np.float32), np.asarray(encode(motion, dtype=np.float32)),
                    dict(motion.labels), retargeted)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ParamError(f"{out}: exists and is not a folder; choose another `out`", "out")
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").is_file():
        raise ParamError(f"{out}: folder exists, is not empty and is not a motion cache; refusing to "
                         f"overwrite it (choose another `out`)", "out")


@dataclass
class _Source:
    """One source of a cache being prepared: where it is, its adapter, what the adapter listed, its unique key."""

    path: Path
    adapter: str
    listing: Listing
    key: str
    settings: dict = field(default_factory=dict)


def prepare(source: str | os.PathLike | Sequence[str | os.PathLike], dataset: str | None, out: str | os.PathLike,
            fps: float | None = None, workers: int | None = None, progress: bool = True,
            labels: str | os.PathLike | None = None, label_pattern: str | None = None,
            body_models: str | os.PathLike | None = None) -> MotionCache:
    """Read ``source`` (one, or several in order) with its adapter and write a motion cache folder at ``out``
    (replacing a cache already there, atomically).

    Args:
        source: dataset zip, folder or file — or a list of them: one cache from several sources (``docs/DATA.md``).
            The first usable take (of the first source that has one) gives the cache its skeleton; takes of a later
            source on another skeleton are retargeted onto it (`motionsynth.retarget.retarget`; a skeleton that is
            not humanoid stops the prepare with an error naming the source), takes on the same skeleton are stored
            as they are. A take whose name an earlier source already uses is renamed ``SOURCE/NAME`` (``SOURCE``:
            the source's dataset name, `MotionCache.sources`).
        dataset: adapter name for every source: 'bandai-namco', 'bvh-folder' or 'amass'; None detects each source's
            (`adapters.detect_dataset`).
        out: cache folder to write.
        fps: resample every take to this frame rate; None keeps the files' rate (takes at another rate than the
            first readable take are then skipped with a reason).
        workers: processes that parse and encode takes (default: the number of CPUs).
        progress: show a progress bar on stderr.
        labels, label_pattern: ``bvh-folder`` only — a labels CSV, or a regex with named groups.
        body_models: ``amass`` only — a folder of SMPL / SMPL-H / SMPL-X model files for exact per-subject bone
            lengths (needs the optional ``smplx``; without it a warning and the built-in neutral skeleton). Recorded
            in ``meta.json`` (``adapter``).

    Labels are mapped onto one vocabulary (`labels.unify_label`). Splits are decided by each take's name in its
    source (`split_of`), so adding a source never moves a take of another one to another split. Takes that cannot
    be read, use another skeleton (in the first source) or another frame rate are reported in ``meta["skipped"]``
    (``MotionCache.skipped``) and left out; everything else is prepared. Raises `MotionsynthError` when nothing
    usable remains.
    """
    if fps is not None and not fps > 0:
        raise ParamError(f"`fps` must be positive, got {fps}", "fps")
    paths = [Path(p).expanduser() for p in ([source] if isinstance(source, (str, os.PathLike)) else source)]
    if not paths:
        raise ParamError("no source given; give one or more dataset zips, folders or files", "source")
    out = Path(out).expanduser()
    given: dict[Path, Path] = {}
    for p in paths:
        if p.resolve() in given:
            raise ParamError(f"{p}: the same source is given twice ({given[p.resolve()]} and {p})", "source")
        given[p.resolve()] = p
    sources: list[_Source] = []
    for p, adapter in zip(paths, get_adapters(paths, dataset, labels, label_pattern, body_models)):
        listing = adapter.list(p)
        key = base = listing.dataset or p.stem or p.name
        n = 2
        while any(s.key == key for s in sources):
            key, n = f"{base}-{n}", n + 1
        sources.append(_Source(p, adapter.name, listing, key, dict(getattr(adapter, "settings", {}))))
    remove_stale_temp_folders(out)
    _check_out(out)
    if workers is None:
        workers = os.cpu_count() or 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    lock = _hold_lock(tmp)
    try:
        _default_permissions(tmp)
        _write_cache(tmp, sources, fps, workers, progress)
        (tmp / _LOCK).unlink(missing_ok=True)  # not part of the cache; the process id in the name covers the rename
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)
    return MotionCache(out)


def _write_cache(tmp: Path, sources: list[_Source], fps: float | None, workers: int, progress: bool) -> dict:
    from tqdm.auto import tqdm

    from ..body import NotHumanoidError
    from .features import FeatureStats

    t0 = time.perf_counter()
    skipped = [{"name": n, "reason": r, "source": src.key} for src in sources for n, r in src.listing.problems]
    takes: list[Take] = []
    skeletons: list[Skeleton] = []
    digest = hashlib.sha256()
    appenders: dict[str, _NpyAppender] = {}
    reference: Skeleton | None = None
    reference_source = ""
    cache_fps = fps
    seen: set[str] = set()
    retargeted = [0] * len(sources)
    bar = tqdm(total=sum(len(src.listing.takes) for src in sources), desc="prepare", unit="take",
               disable=not progress, leave=False)
    try:
        for k, src in enumerate(sources):
            # a later source is retargeted onto the cache's skeleton where its own differs
            seen_here: set[str] = set()
            with closing(map_takes(partial(_encode_take, fps=fps, target=reference), src.listing.takes,
                                   workers)) as results:
                for ref, result in zip(src.listing.takes, results):
                    bar.update(1)
                    if isinstance(result, NotHumanoidError):
                        raise MotionsynthError(
                            f"{src.path}: its skeleton differs from the cache's (that of {reference_source}) and cannot "
                            f"be retargeted onto it: {result} (take {ref.name}); leave this source out, or prepare it "
                            f"into a cache of its own") from None
                    name = ref.name if ref.name not in seen or ref.name in seen_here else f"{src.key}/{ref.name}"
                    seen_here.add(ref.name)
                    reason = _problem(name, result, reference, cache_fps, seen)
                    if reason:
                        skipped.append({"name": ref.name, "reason": reason, "source": src.key})
                        continue
                    if reference is None:
                        reference, cache_fps, reference_source = result.skeleton, result.fps, str(src.path.name)
                        digest.update(repr(float(cache_fps)).encode())
                        J, D = len(reference), result.features.shape[1]
                        for key, shape in (("rotations", (J, 4)), ("root_positions", (3,)), ("features", (D,))):
                            appenders[key] = _NpyAppender(tmp / f"{key}.npy", np.float32, shape)
                    seen.add(name)
                    start = appenders["rotations"].rows
                    for key in _ARRAYS:
                        appenders[key].append(getattr(result, key))
                    digest.update(name.encode("utf-8") + b"\0")
                    digest.update(result.rotations.tobytes())
                    digest.update(result.root_positions.tobytes())
                    unified = unify_labels(result.labels)
                    takes.append(Take(name, start, len(result.rotations), split_of(ref.name), unified, k, ref.name,
                                      dict(result.labels) if unified != result.labels else {}))
                    skeletons.append(result.skeleton)
                    retargeted[k] += result.retargeted
    finally:
        bar.close()
        for a in appenders.values():
            a.close()
    if not takes:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:3])
        raise MotionsynthError(f"{', '.join(str(src.path) for src in sources)}: no usable takes ({len(skipped)} "
                               f"skipped: {reasons})")

    train = [i for i, t in enumerate(takes) if t.split == "train"]
    first = train[0] if train else 0
    skeleton = skeletons[first]
    (tmp / "skeleton.json").write_text(skeleton.to_json())
    offsets = np.stack([s.offsets for s in skeletons]).astype(np.float32)
    bones = [j for j in range(len(skeleton)) if j != skeleton.root]
    per_take_offsets = bool(np.abs(offsets[:, bones] - offsets[first, bones]).max(initial=0.0) > 1e-6)
    if per_take_offsets:
        np.save(tmp / "offsets.npy", offsets)

    feats = np.load(tmp / "features.npy", mmap_mode="r")
    stats_takes = train or list(range(len(takes)))  # a tiny dataset may have no train take at all
    stats = FeatureStats.from_arrays(feats[takes[i].start: takes[i].start + takes[i].length] for i in stats_takes)
    stats.save(tmp / "stats.npz")
    del feats

    # one vocabulary: the sources' label lists in order, then names first seen in takes, all through unify_label
    vocab: dict[str, list[str]] = {}
    pairs = [(kind, name) for src in sources for kind, names in src.listing.label_names.items() for name in names]
    for kind, name in pairs + [(kind, name) for t in takes for kind, name in t.labels.items()]:
        names = vocab.setdefault(kind, [])
        if unify_label(kind, name) not in names:
            names.append(unify_label(kind, name))
    frames = int(sum(t.length for t in takes))
    table = []
    for k, src in enumerate(sources):
        own = [t for t in takes if t.source == k]
        table.append({"file": src.path.name, "path": str(src.path.resolve()), "dataset": src.key,
                      "adapter": src.adapter, "takes": len(own), "frames": int(sum(t.length for t in own)),
                      "retargeted": retargeted[k], "renamed": sum(t.name != t.original for t in own),
                      "skipped": sum(s["source"] == src.key for s in skipped), **(
                          {"settings": src.settings} if src.settings else {})})
    adapters = list(dict.fromkeys(src.adapter for src in sources))
    meta = {
        "version": VERSION, "dataset": "+".join(adapters),
        "source": " + ".join(str(src.path.resolve()) for src in sources), "fps": float(cast(float, cache_fps)),
        "joints": len(skeleton), "feature_dim": int(appenders["features"].row_shape[0]),
        "data_hash": digest.hexdigest(), "per_take_offsets": per_take_offsets,
        "stats_split": "train" if train else "all",
        "counts": {"takes": len(takes), "frames": frames, "skipped": len(skipped),
                   "splits": {s: sum(t.split == s for t in takes) for s in SPLITS}},
        "label_names": vocab, "skipped": skipped, "prepare_seconds": round(time.perf_counter() - t0, 2),
        "sources": table, "takes": [asdict(t) for t in takes],
    }
    settings = next((src.settings for src in sources if src.settings), None)
    if settings:
        meta["adapter"] = dict(settings)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def _problem(name: str, result, reference: Skeleton | None, fps: float | None, seen: set[str]) -> str | None:
    """Why a loaded take (``name`` in the cache) cannot join the cache, or None."""
    if isinstance(result, BaseException):
        return str(result)
    if name in seen:
        return "duplicate take name"
    if len(result.rotations) == 0:
        return "no frames"
    if reference is not None:
        try:
            reference.check_compatible(result.skeleton, what="take")
        except SkeletonMismatchError as e:
            return str(e)
        if reference.root != result.skeleton.root:
            return (f"moving root is {result.skeleton.names[result.skeleton.root]!r}, not "
                    f"{reference.names[reference.root]!r}")
        if abs(result.fps - fps) > 1e-6:
            return f"{result.fps:g} fps, not {fps:g} like the other takes (give fps to resample them all)"
    if not (np.isfinite(result.rotations).all() and np.isfinite(result.root_positions).all()
            and np.isfinite(result.features).all()):
        return "non-finite values"
    return None


def _default_permissions(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder; give the finished cache the usual permissions (0777 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


# ---- temporary folders of interrupted runs ---------------------------------------------------------------------
def _hold_lock(folder: Path) -> int | None:
    """Create and lock ``folder/.lock`` for as long as this process runs (a POSIX record lock: the kernel drops it
    when the process dies, however it dies; forked workers do not inherit it). Returns the descriptor to close."""
    if fcntl is None:
        return None
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: leave no unlocked lock file (the process id decides then)
        os.close(fd)
        (folder / _LOCK).unlink(missing_ok=True)
        return None
    return fd


def _temp_folders(out: Path) -> list[Path]:
    """The hidden folders a prepare into ``out`` makes beside it: ``.OUT.tmp-*`` (the cache being written) and
    ``.OUT.old-*`` (the previous cache while it is replaced)."""
    prefixes = (f".{out.name}.tmp-", f".{out.name}.old-")
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.name.startswith(prefixes) and p.is_dir() and not p.is_symlink())


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: never judge a folder stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError as e:
        return e.errno != errno.ESRCH
    return True


def _writer_alive(folder: Path) -> bool:
    """Whether the prepare that made ``folder`` may still be running (when in doubt: yes)."""
    m = re.search(r"\.(?:tmp|old)-(\d+)(?:-|$)", folder.name)
    pid = int(m.group(1)) if m else None
    if pid == os.getpid():
        return True  # this process (checking our own lock would release it: POSIX locks are per process)
    lock = folder / _LOCK
    if fcntl is not None and lock.is_file():
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            return True
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # locked: its writer is running
        finally:
            os.close(fd)  # closing drops the lock we may have taken
        return False
    if pid is None:
        return False  # a folder from before writers were recorded (random name, no lock): nobody writes it
    return _pid_alive(pid)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def stale_temp_folders(out: str | os.PathLike) -> list[dict]:
    """Temporary folders beside ``out`` left by a `prepare` into it that was killed: ``[{"path", "bytes"}]``."""
    out = Path(out).expanduser()
    return [{"path": str(p), "bytes": _folder_bytes(p)} for p in _temp_folders(out) if not _writer_alive(p)]


def remove_stale_temp_folders(out: str | os.PathLike) -> list[dict]:
    """Remove what killed prepares into ``out`` left beside it (folders whose writer is gone; never a running
    prepare's), putting back a previous cache that a kill between the two final renames left as ``.OUT.old-PID``
    when ``out`` itself is missing. Returns ``[{"path", "bytes", "action": "removed" | "restored"}]``."""
    out = Path(out).expanduser()
    done = []
    for item in stale_temp_folders(out):
        folder = Path(item["path"])
        if folder.name.startswith(f".{out.name}.old-") and not out.exists() and (folder / "meta.json").is_file():
            try:
                os.replace(folder, out)
            except OSError:
                continue
            done.append({**item, "action": "restored"})
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            done.append({**item, "action": "removed"})
    return done


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``, replacing an old cache there with one rename each."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- reading ---------------------------------------------------------------------------------------------------
class MotionCache:
    """A prepared cache folder (see the module docstring); arrays are memory-mapped, read-only.

    Attributes:
        path, dataset, fps, data_hash, skeleton, takes (list of `Take`), label_names (label key → names),
        rotations (N, J, 4), root_positions (N, 3), features (N, D) — float32 memmaps.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            stale = stale_temp_folders(self.path)
            note = (f" ({len(stale)} stale temporary folder(s) of a killed prepare beside it: "
                    f"{', '.join(Path(d['path']).name for d in stale[:3])}; the next prepare removes them)"
                    if stale else "")
            raise MotionsynthError(f"{self.path}: not a motion cache (no meta.json){note}; make one with "
                                   f"`motionsynth data prepare SOURCE --dataset NAME --out {self.path}`")
        try:
            self.meta = json.loads(meta_path.read_text())
            if not isinstance(self.meta, dict):
                raise ValueError(f"meta.json holds {type(self.meta).__name__}, not an object")
            if self.meta.get("version") != VERSION:
                raise MotionsynthError(f"{self.path}: cache version {self.meta.get('version')}, this motionsynth "
                                       f"reads version {VERSION}; prepare it again")
            self.skeleton = Skeleton.from_json((self.path / "skeleton.json").read_text())
            self.rotations = np.load(self.path / "rotations.npy", mmap_mode="r")
            self.root_positions = np.load(self.path / "root_positions.npy", mmap_mode="r")
            self.features = np.load(self.path / "features.npy", mmap_mode="r")
            self.offsets = (np.load(self.path / "offsets.npy", mmap_mode="r")
                            if self.meta.get("per_take_offsets") else None)
            self.takes = [Take(**t) for t in self.meta["takes"]]
            N = self.meta["counts"]["frames"]
            self._check(N)
        except MotionsynthError:
            raise
        except (*NPY_ERRORS, TypeError, AttributeError, IndexError) as e:
            raise MotionsynthError(f"{self.path}: damaged motion cache ({e}); prepare it again") from None

    def _check(self, N) -> None:
        """Shapes, types and the take table against each other (cheap: no pass over the arrays); ValueError."""
        J = len(self.skeleton)
        if isinstance(N, bool) or not isinstance(N, int):
            raise ValueError(f"counts.frames is {N!r}, not a number of frames")
        for key, a, shape in (("rotations", self.rotations, (N, J, 4)), ("root_positions", self.root_positions, (N, 3)),
                              ("features", self.features, (N, None))):
            if a.dtype.kind != "f" or a.ndim != len(shape) or any(n is not None and n != m
                                                                  for n, m in zip(shape, a.shape)):
                raise ValueError(f"{key}.npy is {a.dtype} {a.shape}, expected float {shape} "
                                 f"(array lengths disagree with meta.json or the skeleton)")
        D = self.meta.get("feature_dim", self.features.shape[1])
        if D != self.features.shape[1]:
            raise ValueError(f"features.npy has {self.features.shape[1]} channels, meta.json says {D}")
        if self.offsets is not None and (self.offsets.dtype.kind != "f"
                                         or self.offsets.shape != (len(self.takes), J, 3)):
            raise ValueError(f"offsets.npy is {self.offsets.dtype} {self.offsets.shape}, expected "
                             f"({len(self.takes)}, {J}, 3)")
        table = self.meta.get("sources")
        if table is not None and not (isinstance(table, list) and all(
                isinstance(x, dict) and all(isinstance(x.get(k), str) for k in ("file", "path", "dataset", "adapter"))
                and all(isinstance(x.get(k), int) for k in ("takes", "frames", "retargeted", "renamed", "skipped"))
                for x in table)):
            raise ValueError("sources is not a list of {file, path, dataset, adapter, takes, frames, retargeted, "
                             "renamed, skipped}")
        n_sources = len(table) if table else 1
        fps = self.meta["fps"]
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps {fps!r} is not a positive frame rate")
        for t in self.takes:
            if not (isinstance(t.name, str) and isinstance(t.start, int) and isinstance(t.length, int)
                    and not isinstance(t.start, bool) and not isinstance(t.length, bool)
                    and 0 <= t.start and 0 <= t.length and t.start + t.length <= N):
                raise ValueError(f"take {t.name!r} has rows {t.start!r}+{t.length!r} outside the {N} frames")
            if t.split not in SPLITS:
                raise ValueError(f"take {t.name!r} has split {t.split!r}")
            for what, labels in (("labels", t.labels), ("source_labels", t.source_labels)):
                if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                           for k, v in labels.items()):
                    raise ValueError(f"take {t.name!r} has {what} {labels!r}, not text → text")
            if not (isinstance(t.source, int) and not isinstance(t.source, bool) and 0 <= t.source < n_sources
                    and isinstance(t.original, str)):
                raise ValueError(f"take {t.name!r} has source {t.source!r} / original name {t.original!r}")
        names = self.meta["label_names"]
        if not isinstance(names, dict) or not all(isinstance(v, list) for v in names.values()):
            raise ValueError("label_names is not label key → list of names")
        skipped = self.meta["skipped"]
        if not isinstance(skipped, list) or not all(isinstance(x, dict) and "name" in x and "reason" in x
                                                    for x in skipped):
            raise ValueError("skipped is not a list of {name, reason}")
        for key in ("dataset", "source", "data_hash"):
            if not isinstance(self.meta[key], str):
                raise ValueError(f"{key} is {self.meta[key]!r}, not text")

    def __getstate__(self) -> dict:
        """Pickle by path (DataLoader workers started with spawn re-open the memory maps instead of copying them)."""
        return {"path": str(self.path)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])  # type: ignore[misc]  # re-open by path

    dataset = property(lambda self: self.meta["dataset"])
    fps = property(lambda self: float(self.meta["fps"]))
    data_hash = property(lambda self: self.meta["data_hash"])
    label_names = property(lambda self: self.meta["label_names"])
    skipped = property(lambda self: self.meta["skipped"])

    @property
    def num_frames(self) -> int:
        return len(self.rotations)

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    def __len__(self) -> int:
        return len(self.takes)

    def __repr__(self) -> str:
        return f"MotionCache({str(self.path)!r}, {len(self.takes)} takes, {self.num_frames} frames @ {self.fps:g} fps)"

    @cached_property
    def stats(self):
        """`FeatureStats` of the train split (the normalisation every model uses)."""
        from .features import FeatureStats

        try:
            stats = FeatureStats.load(self.path / "stats.npz")
            mean, std = np.asarray(stats.mean), np.asarray(stats.std)
        except (MotionsynthError, *NPY_ERRORS) as e:
            raise MotionsynthError(f"{self.path}: damaged motion cache (stats.npz: {e}); prepare it again") from None
        if mean.shape != (self.feature_dim,) or std.shape != (self.feature_dim,) or not (
                np.isfinite(mean).all() and np.isfinite(std).all()):
            raise MotionsynthError(f"{self.path}: damaged motion cache (stats.npz: mean {mean.shape}, std "
                                   f"{std.shape}, expected ({self.feature_dim},) finite values); prepare it again")
        return stats

    @property
    def sources(self) -> list[dict]:
        """Where the takes came from, one entry per source in the order given to `prepare`: ``file``, ``path``,
        ``dataset`` (its name, unique in the cache), ``adapter``, ``takes``, ``frames``, ``retargeted``, ``renamed``,
        ``skipped``. A cache from before several sources: one entry made from ``source`` and ``dataset``."""
        table = self.meta.get("sources")
        if table:
            return [dict(s) for s in table]
        path = Path(self.meta["source"])
        return [{"file": path.name, "path": str(path), "dataset": path.stem, "adapter": self.dataset,
                 "takes": len(self.takes), "frames": self.num_frames, "retargeted": 0, "renamed": 0,
                 "skipped": len(self.skipped)}]

    def split(self, name: str) -> list[int]:
        """Indices of the takes in split ``name`` ('train', 'val' or 'test')."""
        if name not in SPLITS:
            raise MotionsynthError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return [i for i, t in enumerate(self.takes) if t.split == name]

    def index(self, name: str) -> int:
        """Index of a take by name."""
        for i, t in enumerate(self.takes):
            if t.name == name:
                return i
        raise MotionsynthError(f"no take named {name!r} in {self.path}")

    def rows(self, i: int) -> slice:
        """Rows of take ``i`` in the arrays."""
        t = self.takes[i]
        return slice(t.start, t.start + t.length)

    def motion(self, i: int) -> Motion:
        """Take ``i`` as a float64 `Motion` (with its name and labels; its own offsets when they differ)."""
        t, rows = self.takes[i], self.rows(i)
        skeleton = self.skeleton
        if self.offsets is not None:
            skeleton = Skeleton.from_dict({**self.skeleton.to_dict(), "offsets": np.asarray(self.offsets[i]).tolist()})
        try:
            return Motion(skeleton, np.asarray(self.rotations[rows], dtype=np.float64),
                          np.asarray(self.root_positions[rows], dtype=np.float64), self.fps, labels=dict(t.labels),
                          name=t.name)
        except InvalidMotionError as e:
            raise MotionsynthError(f"{self.path}: damaged motion cache ({e}); prepare it again") from None

    def info(self) -> dict:
        """Summary: takes, frames, hours, fps, joints, labels with counts, split sizes (takes and frames), the
        sources (``sources``: per source its file, dataset name, adapter and counts of takes, frames, retargeted,
        renamed and skipped takes), the skipped takes with their reasons (``skipped``: how many, ``skipped_takes``:
        ``[{name, reason}]``, with ``source`` where the cache records it) and
        ``stale_temp``: temporary folders of killed prepares beside the cache (``[{path, bytes}]``)."""
        labels: dict[str, dict[str, int]] = {}
        for key, names in self.label_names.items():
            counts = dict.fromkeys(names, 0)
            for t in self.takes:
                if key in t.labels:
                    counts[t.labels[key]] = counts.get(t.labels[key], 0) + 1
            labels[key] = counts
        splits = {s: {"takes": 0, "frames": 0} for s in SPLITS}
        for t in self.takes:
            splits[t.split]["takes"] += 1
            splits[t.split]["frames"] += t.length
        sources = [{key: s[key] for key in ("file", "dataset", "adapter", "takes", "frames", "retargeted",
                                            "renamed", "skipped")} for s in self.sources]
        return {
            "path": str(self.path), "dataset": self.dataset, "source": self.meta["source"], "sources": sources,
            "takes": len(self.takes), "frames": self.num_frames,
            "hours": round(self.num_frames / self.fps / 3600, 3), "fps": self.fps, "joints": len(self.skeleton),
            "feature_dim": self.feature_dim, "labels": labels, "splits": splits, "skipped": len(self.skipped),
            "skipped_takes": [{"name": str(s["name"]), "reason": str(s["reason"]),
                               **({"source": str(s["source"])} if "source" in s else {})} for s in self.skipped],
            "stale_temp": stale_temp_folders(self.path), "data_hash": self.data_hash,
        }
