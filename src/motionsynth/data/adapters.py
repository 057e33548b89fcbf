"""Dataset adapters: turn a published dataset (a folder or a zip) into named, labelled takes.

An adapter *lists* a source cheaply (file names, label files) into `TakeRef` records, then each take is *loaded*
separately (`load_take`), possibly in a worker process — that is how `motionsynth.data.cache.prepare` reads thousands
of files on several cores. Takes that cannot be used are reported as ``(name, reason)`` and skipped; the rest go on.

Adapters (``--dataset`` on the command line):

- ``bandai-namco``: either Bandai Namco Research motion dataset (1 or 2), as a .zip or an extracted folder:
  ``<root>/data/*.bvh`` with a ``.json`` beside each (``{"content": i, "style": j}``), label names in
  ``<root>/cfg/content_label.txt`` and ``style_label.txt`` (one per line; the ``dataset-N_`` prefix is dropped).
- ``bvh-folder``: any folder, zip or single file of BVH (searched recursively). Labels optionally from a CSV (a
  ``name`` column matching the take name, file stem or file name, plus one column per label key; the bookkeeping
  columns of a `motionsynth synthesize` manifest, `MANIFEST_COLUMNS`, are not labels) or from the named
  groups of a regular expression searched in the take name (``(?P<action>[a-z]+)_\\d+``). Rows of the CSV that
  match no take are reported with a warning (``warnings.warn``; none matching at all: no take is labelled).
- ``amass``: a folder of AMASS ``.npz`` files (recursive; per-subject ``shape.npz`` / ``*_stagei.npz`` are ignored).
  Optionally ``body_models`` (``--body-models``): a folder of SMPL / SMPL-H / SMPL-X model files, for exact
  per-subject bone lengths (`motionsynth.io.amass.read_amass`'s ``body_model_dir``; needs the optional ``smplx``).

Without ``--dataset`` each source's adapter is detected from what it holds (`detect_dataset`); `get_adapters` gives
one adapter per source for a cache made of several (`motionsynth.data.cache.prepare`, ``docs/DATA.md``).

Take names are the file's path relative to the source without its extension (``walk/walk_01``); for Bandai Namco
the file stem (``dataset-2_walk_normal_001``). Labels are ``dict[str, str]``, as the source names them (the cache
maps them onto one vocabulary, `motionsynth.data.labels.unify_label`).
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Generator, NoReturn, cast

from .. import limits
from ..errors import FormatError, InvalidMotionError, MotionsynthError, ParamError
from ..motion import Motion

DATASETS = ("bandai-namco", "bvh-folder", "amass")
# Columns of a labels CSV that are not labels: the bookkeeping of a `motionsynth synthesize` manifest (which is a
# labels CSV of the takes it wrote). They are read and ignored.
MANIFEST_COLUMNS = ("file", "seed", "frames", "model_hash", "probability")
_SHOWN_ROWS = 5  # unmatched rows of a labels CSV named in its warning


@dataclass(frozen=True)
class TakeRef:
    """Where one take lives: a file (``member`` None) or a member of the zip at ``path``. Picklable."""

    name: str
    path: str
    member: str | None = None
    kind: str = "bvh"  # "bvh" | "amass"
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    body_models: str | None = None  # amass: the SMPL model folder (``read_amass(body_model_dir=…)``)

    @property
    def where(self) -> str:
        """Human-readable location for messages (``archive.zip:data/x.bvh`` or the file path)."""
        return f"{self.path}:{self.member}" if self.member else self.path


@dataclass
class Listing:
    """What an adapter found in a source.

    Attributes:
        takes: loadable takes, in a stable (sorted) order.
        label_names: label key → ordered vocabulary (may miss values first seen in takes; the cache adds them).
        problems: ``(name, reason)`` of takes already known to be unusable (reported and skipped).
        dataset: the dataset's own name where the source tells it (a Bandai Namco root folder: ``bandai-namco-2``);
            empty otherwise (the cache then names the source by its file or folder name).
    """

    takes: list[TakeRef]
    label_names: dict[str, list[str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    dataset: str = ""


# ---- loading ---------------------------------------------------------------------------------------------------
_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


def _zip(path: str) -> zipfile.ZipFile:
    """An open ZipFile per (process, path): a forked worker must not share its parent's file offset."""
    key = (os.getpid(), path)
    if key not in _ZIPS:
        _ZIPS[key] = zipfile.ZipFile(path)
    return _ZIPS[key]


def load_take(ref: TakeRef) -> Motion:
    """Read one take into a `Motion` with ``name`` and ``labels`` set, its top joints folded onto the canonical root
    (`Motion.fold_top_joints`: the first branching joint carries the trajectory, whichever joint of the chain above
    it the file animates — so every take of a dataset has the same moving root). Raises `FormatError` naming the
    file when it cannot be used (invalid values included)."""
    try:
        if ref.kind == "amass":
            from ..io.amass import read_amass

            motion = read_amass(ref.path, body_model_dir=ref.body_models)
        else:
            from ..io.bvh import parse_bvh, read_bvh

            if ref.member is None:
                motion = read_bvh(ref.path)
            else:
                try:
                    data = _zip(ref.path).read(ref.member)
                except (OSError, zipfile.BadZipFile, KeyError, NotImplementedError) as e:
                    raise FormatError(f"cannot read from the archive: {e}", ref.where) from None
                motion = parse_bvh(data.decode("utf-8", errors="replace"), ref.where)
        if motion.num_frames == 0:
            raise FormatError("no frames", ref.where)
        motion = motion.fold_top_joints()
    except FormatError:
        raise
    except InvalidMotionError as e:  # a reader built a Motion with NaN, zero quaternions, a bad fps…
        raise FormatError(str(e), ref.where) from None
    motion.name = ref.name
    motion.labels = dict(ref.labels)
    return motion


def safe_call(fn: Callable, ref: TakeRef):
    """``fn(ref)``, or a `MotionsynthError` describing why it failed (any exception: one bad file must not stop a
    whole dataset)."""
    try:
        return fn(ref)
    except MotionsynthError as e:
        return e
    except Exception as e:  # reader bugs on odd files are reported per take, not fatal
        return FormatError(f"{type(e).__name__}: {e}", ref.where)


def _init_worker(max_joint_frames: int) -> None:
    """Set up a worker: one torch thread, this process's joint-frame limit (a spawned worker would not inherit it)."""
    import torch

    torch.set_num_threads(1)
    limits.set_max_joint_frames(max_joint_frames)


def map_takes(fn: Callable, refs: list[TakeRef], workers: int = 1) -> Generator:
    """``safe_call(fn, ref)`` for every ref, in order, on ``workers`` processes (1: in this process).

    ``fn`` must be a picklable module-level function (or ``functools.partial`` of one). Uses ``fork`` where the
    platform has it (no re-import cost), else ``spawn``. A generator: closing it (``contextlib.closing``) stops the
    workers at once when the caller gives up early.
    """
    from functools import partial

    if workers <= 1 or len(refs) <= 1:
        for ref in refs:
            yield safe_call(fn, ref)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, len(refs)), initializer=_init_worker, initargs=(limits.max_joint_frames(),)) as pool:
        yield from pool.imap(partial(safe_call, fn), refs, chunksize=max(1, min(16, len(refs) // (8 * workers))))


# ---- adapters --------------------------------------------------------------------------------------------------
def _check_source(source: Path) -> Path:
    source = Path(source).expanduser()
    if not source.exists():
        raise MotionsynthError(f"{source}: no such file or folder")
    return source


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise MotionsynthError(f"{path}: not a readable zip archive ({e})") from None


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text (a leading BOM dropped), or `FormatError` naming the file and the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise FormatError(f"not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded)", where, line) from None


def _label_lines(text: str) -> list[str]:
    """Label names from a Bandai ``cfg/*_label.txt``: one per line, ``dataset-N_`` prefix removed."""
    return [re.sub(r"^dataset-\d+_", "", line.strip()) for line in text.splitlines() if line.strip()]


class BandaiNamco:
    """Bandai Namco Research motion dataset 1 or 2 (zip or folder); labels ``content`` and ``style``."""

    name = "bandai-namco"
    label_keys = ("content", "style")

    def list(self, source: Path) -> Listing:
        source = _check_source(source)
        if not source.is_file():
            return self._list(source, None)
        with _open_zip(source) as z:
            return self._list(source, z)

    def _list(self, source: Path, z: zipfile.ZipFile | None) -> Listing:
        if z is not None:
            names = z.namelist()
            roots = sorted({m[: -len(PurePosixPath(m).name)][: -len("data/")] for m in names
                            if re.search(r"(^|/)data/[^/]+\.bvh$", m, re.I)})
            if len(roots) != 1:
                raise MotionsynthError(self._layout_error(source, roots))
            root = roots[0]
            dataset_name = root.rstrip("/").rsplit("/", 1)[-1]
            read = lambda rel: _decode(z.read(root + rel), f"{source}:{root + rel}")
            exists = set(names).__contains__
            bvhs = sorted(m for m in names if re.fullmatch(re.escape(root) + r"data/[^/]+\.bvh", m, re.I))
            files: builtins.list[tuple[str, str, str | None, str]] = [
                (PurePosixPath(m).stem, str(source), m, m[len(root):]) for m in bvhs]
            has = lambda rel: exists(root + rel)
        else:
            def is_root(p: Path) -> bool:
                return (p / "data").is_dir() and any((p / "data").glob("*.bvh"))

            # the dataset folder itself, or the one dataset folder inside (as `data download` leaves it)
            dirs = [source] if is_root(source) else sorted(p for p in source.iterdir() if p.is_dir() and is_root(p))
            if len(dirs) != 1:
                raise MotionsynthError(self._layout_error(source, [f"{p.name}/" for p in dirs]))
            root_dir = dirs[0]
            dataset_name = root_dir.name
            read = lambda rel: _decode((root_dir / rel).read_bytes(), str(root_dir / rel))
            has = lambda rel: (root_dir / rel).is_file()
            files = [(p.stem, str(p), None, f"data/{p.name}") for p in sorted((root_dir / "data").glob("*.bvh"))]
        vocab = {}
        for key in self.label_keys:
            rel = f"cfg/{key}_label.txt"
            if not has(rel):
                raise MotionsynthError(f"{source}: no {rel} — not a Bandai Namco dataset (expected data/*.bvh, "
                                       f"cfg/content_label.txt and cfg/style_label.txt)")
            try:
                vocab[key] = _label_lines(read(rel))
            except (OSError, zipfile.BadZipFile, NotImplementedError) as e:
                raise FormatError(f"cannot read {rel}: {e}", str(source)) from None
        takes, problems = [], []
        for stem, path, member, rel in files:
            rel_json = rel[: -len(".bvh")] + ".json"
            try:
                ids = json.loads(read(rel_json)) if has(rel_json) else None
                if ids is None:
                    raise ValueError(f"no {rel_json} beside it")
                if not isinstance(ids, dict):
                    raise TypeError(f"{rel_json} holds {type(ids).__name__}, not an object")
                labels = {}
                for key in self.label_keys:
                    i = ids[key]
                    n = int(i) if isinstance(i, (int, float, str)) and not isinstance(i, bool) else -1
                    if (n != i and not isinstance(i, str)) or not 0 <= n < len(vocab[key]):  # 1.5, -1, 99
                        raise ValueError(f"{key} {i!r} is not one of the label numbers 0…{len(vocab[key]) - 1}")
                    labels[key] = vocab[key][n]
            except (ValueError, KeyError, IndexError, TypeError, OverflowError, FormatError, OSError,
                    zipfile.BadZipFile, NotImplementedError) as e:
                problems.append((stem, f"bad label file: {e}"))
                continue
            takes.append(TakeRef(stem, path, member, "bvh", labels))
        return Listing(takes, vocab, problems, dataset_name or source.stem)

    @staticmethod
    def _layout_error(source: Path, roots: builtins.list[str]) -> str:
        if len(roots) > 1:
            return (f"{source}: holds several datasets ({', '.join(r or '/' for r in roots)}); give one of them "
                    f"(for a zip, extract one part first: `motionsynth data download bandai-namco --part 2 "
                    f"--from ZIP --out DIR`)")
        return f"{source}: no data/*.bvh inside — not a Bandai Namco dataset (zip or folder with data/ and cfg/)"


class BvhFolder:
    """Any folder, zip or single file of BVH; optional labels from a CSV or a filename regex."""

    name = "bvh-folder"

    def __init__(self, labels: str | os.PathLike | None = None, label_pattern: str | None = None):
        self.labels_csv = Path(labels) if labels else None
        self.pattern = None
        if label_pattern:
            try:
                self.pattern = re.compile(label_pattern)
            except re.error as e:
                raise ParamError(f"`label_pattern` {label_pattern!r} is not a valid regular expression: {e}",
                                 "label_pattern") from None
            if not self.pattern.groupindex:
                raise ParamError(f"`label_pattern` {label_pattern!r} has no named groups "
                                 f"(write e.g. '(?P<action>[a-z]+)_\\d+')", "label_pattern")

    def list(self, source: Path) -> Listing:
        source = _check_source(source)
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
            found: builtins.list[tuple[str, str, str | None]] = [
                (p.relative_to(source).with_suffix("").as_posix(), str(p), None) for p in files]
        elif source.suffix.lower() == ".bvh":
            found = [(source.stem, str(source), None)]
        else:
            with _open_zip(source) as z:
                members = sorted(m for m in z.namelist() if m.lower().endswith(".bvh") and not m.endswith("/"))
            found = [(m[: -len(".bvh")], str(source), m) for m in members]
        if not found:
            raise MotionsynthError(f"{source}: no .bvh files found")
        table = self._read_csv() if self.labels_csv else None
        takes, matched = [], set()
        for name, path, member in found:
            labels: dict[str, str] = {}
            if table is not None:
                stem = PurePosixPath(name).name
                key = next((k for k in (name, stem, stem + ".bvh") if k in table), None)
                if key is not None:
                    matched.add(key)
                    labels.update(table[key])
            if self.pattern is not None:
                m = self.pattern.search(name)
                if m:
                    labels.update({k: v for k, v in m.groupdict().items() if v is not None})
            takes.append(TakeRef(name, path, member, "bvh", labels))
        if table is not None:
            self._warn_unmatched(table, matched, [name for name, _, _ in found], source)
        return Listing(takes, {}, [])

    def _warn_unmatched(self, table: dict, matched: set[str], takes: builtins.list[str], source: Path) -> None:
        """Warn when rows of the labels CSV match no take: all of them (every take unlabelled), or some (counted,
        the first few named)."""
        unmatched = [name for name in table if name not in matched]
        if not unmatched:
            return
        shown = ", ".join(repr(n) for n in unmatched[:_SHOWN_ROWS]) + (", …" if len(unmatched) > _SHOWN_ROWS else "")
        if len(unmatched) == len(table):
            warnings.warn(f"labels CSV {self.labels_csv}: none of its {len(table)} rows matches a take of {source}, so "
                          f"no take is labelled (a row's 'name' must be a take name such as {takes[0]!r}, its file "
                          f"stem or its file name; rows: {shown})", stacklevel=3)
        else:
            warnings.warn(f"labels CSV {self.labels_csv}: {len(unmatched)} of its {len(table)} rows match no take "
                          f"of {source}: {shown}", stacklevel=3)

    def _read_csv(self) -> dict[str, dict[str, str]]:
        """The labels CSV as ``take name → {label key: value}`` (empty values left out).

        Raises `FormatError` naming the file and the line for anything malformed: a file that is not UTF-8 text, no
        header or no ``name`` column, an unnamed or repeated column, a row with another number of fields than the
        header, a row without a take name, a take listed twice, broken quoting or NUL bytes.
        """
        path = cast(Path, self.labels_csv)  # called when there is one
        if not path.is_file():
            raise FormatError("no such labels file (the labels CSV)", str(path))
        try:
            data = path.read_bytes()
        except OSError as e:
            raise FormatError(f"cannot read the labels CSV: {e.strerror or e}", str(path)) from None
        text = _decode(data, str(path))
        if "\x00" in text:
            raise FormatError("labels CSV: NUL byte (binary data, not a CSV text file)", str(path),
                              text[: text.index("\x00")].count("\n") + 1)
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)

        def fail(message: str, line: int | None = None) -> NoReturn:
            raise FormatError(f"labels CSV: {message}", str(path), line if line is not None else reader.line_num)

        table: dict[str, dict[str, str]] = {}
        first_line: dict[str, int] = {}
        try:
            header = next(reader, None)
            if header is None:
                fail("empty file; it needs a header with a 'name' column and one column per label key", 1)
            header = [h.strip() for h in header]
            for i, h in enumerate(header):
                if not h:
                    fail(f"column {i + 1} of the header has no name (header: {','.join(header)})")
                if header.index(h) != i:
                    fail(f"column {h!r} appears twice in the header")
            if "name" not in header:
                fail(f"the header has no 'name' column (columns: {', '.join(header)}); it needs a 'name' column "
                     f"(take name, file stem or file name) and one column per label key")
            name_col = header.index("name")
            for row in reader:
                line = reader.line_num
                if not row or not any(c.strip() for c in row):
                    continue  # blank lines
                if len(row) != len(header):
                    fail(f"this row has {len(row)} fields, the header has {len(header)} ({', '.join(header)})")
                name = row[name_col].strip()
                if name.lower().endswith(".bvh"):
                    name = name[:-4]
                if not name:
                    fail("this row has no take name in the 'name' column")
                if name in table:
                    fail(f"take {name!r} is listed twice (first on line {first_line[name]})")
                first_line[name] = line
                table[name] = {k: v.strip() for k, v in zip(header, row)
                               if k != "name" and k not in MANIFEST_COLUMNS and v.strip()}
        except csv.Error as e:
            fail(f"malformed CSV ({e})")
        if not table:
            fail("no rows below the header", 1)
        return table


class Amass:
    """A folder of AMASS ``.npz`` motions (searched recursively); no labels. ``body_models``: a folder of SMPL model
    files for exact per-subject bone lengths (with the optional ``smplx``; without it, one warning and the built-in
    neutral skeleton, as `read_amass` does)."""

    name = "amass"
    _IGNORED = re.compile(r"^(shape|.*_stagei)\.npz$", re.I)

    def __init__(self, body_models: str | os.PathLike | None = None):
        self.body_models = None if body_models is None else Path(body_models).expanduser()
        self._used: str | None = None  # the folder the reader gets (after `list`; None without smplx)

    @property
    def settings(self) -> dict:
        """What the cache records of the adapter's options: the body model folder, when the takes were read with
        it."""
        return {"body_models": str(Path(self._used).resolve())} if self._used else {}

    def _body_models(self) -> str | None:
        """The model folder the reader gets, checked once here rather than once per take."""
        if self.body_models is None:
            return None
        if not self.body_models.is_dir():
            raise ParamError(f"`body_models` {self.body_models}: no such folder (it should hold the SMPL / "
                             f"SMPL-H / SMPL-X model files, e.g. smplh/SMPLH_FEMALE.pkl or .npz)", "body_models")
        try:
            import smplx  # noqa: F401  (optional dependency)
        except ImportError:
            warnings.warn("body models given but the optional 'smplx' package is not installed "
                          "(pip install motionsynth[smpl]); using the built-in approximate neutral SMPL skeleton",
                          stacklevel=2)
            return None
        return str(self.body_models)

    def list(self, source: Path) -> Listing:
        source = _check_source(source)
        if source.is_file():
            files, base = [source], source.parent
        else:
            files, base = sorted(p for p in source.rglob("*.npz") if not self._IGNORED.match(p.name)), source
        if not files:
            raise MotionsynthError(f"{source}: no AMASS .npz files found")
        body_models = self._used = self._body_models()
        return Listing([TakeRef(p.relative_to(base).with_suffix("").as_posix(), str(p), None, "amass",
                                body_models=body_models) for p in files])


def get_adapter(dataset: str, labels: str | os.PathLike | None = None, label_pattern: str | None = None,
                body_models: str | os.PathLike | None = None):
    """The adapter for a ``--dataset`` name (``labels`` and ``label_pattern`` only apply to ``bvh-folder``,
    ``body_models`` only to ``amass``)."""
    if body_models is not None and dataset != "amass":
        raise ParamError(f"`body_models` only applies to `dataset` amass, not {dataset}", "body_models", "dataset")
    if dataset == "bvh-folder":
        return BvhFolder(labels, label_pattern)
    if labels or label_pattern:
        raise ParamError(f"`labels` / `label_pattern` only apply to `dataset` bvh-folder, not {dataset}",
                         "labels", "label_pattern", "dataset")
    if dataset == "bandai-namco":
        return BandaiNamco()
    if dataset == "amass":
        return Amass(body_models)
    raise MotionsynthError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def detect_dataset(source: str | os.PathLike) -> str:
    """The adapter name for a source, from what it holds (what ``data prepare`` uses without ``--dataset``):
    ``bandai-namco`` for a zip or folder with ``data/*.bvh`` and ``cfg/content_label.txt`` (itself or one folder
    down), ``bvh-folder`` for other BVH (a file, a zip, a folder searched recursively), ``amass`` for ``.npz``.
    Raises `MotionsynthError` when the source holds neither."""
    path = _check_source(Path(source))
    bandai = re.compile(r"(^|/)data/[^/]+\.bvh$", re.I)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".bvh", ".npz"):
            return "bvh-folder" if suffix == ".bvh" else "amass"
        with _open_zip(path) as z:
            names = z.namelist()
        if any(bandai.search(m) for m in names) and any(m.endswith("cfg/content_label.txt") for m in names):
            return "bandai-namco"
        if any(m.lower().endswith(".bvh") for m in names):
            return "bvh-folder"
        raise MotionsynthError(f"{path}: no .bvh inside; cannot tell which dataset it is (give --dataset)")
    for p in (path, *sorted(c for c in path.iterdir() if c.is_dir())):
        if (p / "cfg" / "content_label.txt").is_file() and any((p / "data").glob("*.bvh")):
            return "bandai-namco"
    if next((p for p in path.rglob("*") if p.suffix.lower() == ".bvh"), None) is not None:
        return "bvh-folder"
    if next((p for p in path.rglob("*.npz") if not Amass._IGNORED.match(p.name)), None) is not None:
        return "amass"
    raise MotionsynthError(f"{path}: no .bvh or .npz files found; cannot tell which dataset it is (give --dataset)")


def get_adapters(sources: builtins.list[Path], dataset: str | None = None, labels: str | os.PathLike | None = None,
                 label_pattern: str | None = None, body_models: str | os.PathLike | None = None) -> builtins.list:
    """One adapter per source: ``dataset`` for all of them, or (None) each source's `detect_dataset`. The
    adapter options go to the sources they apply to (``labels``/``label_pattern`` to ``bvh-folder``,
    ``body_models`` to ``amass``); an option that applies to none of them is refused as `get_adapter` refuses it."""
    if dataset is not None:
        return [get_adapter(dataset, labels, label_pattern, body_models) for _ in sources]
    kinds = [detect_dataset(s) for s in sources]
    if (labels or label_pattern) and "bvh-folder" not in kinds:
        raise ParamError(f"`labels` / `label_pattern` only apply to bvh-folder sources; these are "
                         f"{', '.join(sorted(set(kinds)))} (give --dataset bvh-folder to read them as plain BVH)",
                         "labels", "label_pattern", "dataset")
    if body_models is not None and "amass" not in kinds:
        raise ParamError(f"`body_models` only applies to amass sources; these are {', '.join(sorted(set(kinds)))}",
                         "body_models", "dataset")
    return [get_adapter(k, labels if k == "bvh-folder" else None, label_pattern if k == "bvh-folder" else None,
                        body_models if k == "amass" else None) for k in kinds]
