"""BVH (Biovision Hierarchy) reading and writing.

Reading accepts any channel order, 0–6 channels per joint (positions may be on any joint), ``End Site`` blocks, tabs
or spaces, CRLF / CR line ends and scientific notation. One file, a folder (recursive) or the ``.bvh`` members of a
``.zip`` (read in memory, never extracted) can be read; `iter_bvh` reads many, optionally in worker processes.

Conventions (see `motionsynth.motion`):

- ``CHANNELS ... Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry``: `rotations.euler_to_quat` with the
  intrinsic (upper-case) order ``"ZXY"`` and the angles in file order, in degrees. A joint with fewer than three
  rotation channels gets the missing axes appended (with zero angles); writing it back keeps only its own channels.
- Position channel values *replace* the joint's ``OFFSET`` (the BVH convention for both the root and 6-channel joints);
  a missing axis keeps the offset's value.
- ``Skeleton.root`` (the moving root) is the first joint whose position channels change over the frames (Bandai Namco
  files have a static ``joint_Root`` above ``Hips``); else the first joint with position channels; else joint 0.
  ``Motion.root_positions`` are that joint's translations. When other joints have position channels too, all
  per-joint translations are kept in ``Motion.translations`` (T, J, 3) so that they round-trip; otherwise it is None.
- fps = 1 / Frame Time, snapped to the nearest integer when within 1e-4 (relative), else rounded to 6 significant
  digits. ``Motion.name`` is the file stem; BVH carries no labels.

Every problem with the input raises `FormatError` naming the file and, where it applies, the line number.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from .. import rotations as R
from ..errors import FormatError
from ..motion import Motion
from ..skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton
from .atomic import atomic_open

__all__ = ["read_bvh", "parse_bvh", "iter_bvh", "iter_bvh_members", "write_bvh", "format_bvh"]

_CHANNEL_NAMES = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}
_MOTION_LINE = re.compile(rb"^[ \t]*MOTION[ \t]*\r?$", re.MULTILINE)
_WHITESPACE = np.zeros(256, dtype=bool)  # the bytes `bytes.split()` splits on
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
_STATIC_TOLERANCE = 1e-6  # a position channel moving less than this (file units) counts as static


# ---- reading --------------------------------------------------------------------------------------------------------
def read_bvh(path: str | os.PathLike) -> Motion:
    """Read one BVH file. Raises `FormatError` (naming file and line) on bad input."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError("no such file", str(path)) from None
    except IsADirectoryError:
        raise FormatError("is a folder, not a BVH file (use iter_bvh for folders)", str(path)) from None
    return _parse(data, str(path), path.stem)


def parse_bvh(text: str | bytes, path: str = "<string>") -> Motion:
    """Parse BVH text (``str`` or ``bytes``); ``path`` names the source in error messages and gives the name."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    name = "" if path == "<string>" else PurePosixPath(str(path).replace("\\", "/")).stem
    return _parse(data, path, name)


def _parse(data: bytes, where: str, name: str) -> Motion:
    if not data or data.isspace():
        raise FormatError("empty file", where)
    if b"\x00" in data[:4096] or data[:2] in (b"PK", b"\x1f\x8b"):
        raise FormatError("binary data, not a BVH text file", where)
    if b"\n" not in data:  # classic Mac line ends (CR only)
        data = data.replace(b"\r", b"\n")
    found = _MOTION_LINE.search(data)
    head = data[:found.start()] if found else data
    try:
        header = head.decode("utf-8")
    except UnicodeDecodeError:
        header = head.decode("latin-1")
    skel = _parse_hierarchy(header, where, motion_line=header.count("\n") + 1 if found else None)
    if not found:
        raise FormatError("missing MOTION section after the HIERARCHY", where, header.count("\n") + 1)
    motion_line = header.count("\n") + 1
    pos = found.end() + 1 if data[found.end():found.end() + 1] == b"\n" else found.end()
    n_frames, frame_time, values = _parse_motion(data, pos, motion_line, skel, where)
    return _build_motion(skel, n_frames, frame_time, values, name)


class _Hierarchy:
    """What the HIERARCHY section declares, before the moving root is known."""

    def __init__(self):
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[list[float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_sites: dict[int, list[float]] = {}

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)


def _parse_hierarchy(header: str, where: str, motion_line: int | None) -> _Hierarchy:
    """Parse everything before ``MOTION``: the joint tree, offsets, channels and end sites."""
    tokens = [(tok, i) for i, line in enumerate(header.split("\n"), 1) for tok in line.split()]
    if not tokens:
        raise FormatError("missing HIERARCHY (the file has no hierarchy before MOTION)", where, motion_line)
    if tokens[0][0] != "HIERARCHY":
        raise FormatError(f"missing HIERARCHY: the file starts with {tokens[0][0][:40]!r}", where, tokens[0][1])
    h = _Hierarchy()
    stack: list[int] = []  # open blocks: joint index, or -1 for an End Site
    pending: tuple[int, int] | None = None  # (joint index or -1, line) declared and waiting for its "{"
    has_offset: set[int] = set()
    lines_of: dict[int, int] = {}
    k = 1
    while k < len(tokens):
        tok, line = tokens[k]
        k += 1
        if pending is not None and tok != "{":
            raise FormatError(f"expected '{{' after the joint declaration, found {tok!r}", where, line)
        if tok in ("ROOT", "JOINT"):
            if tok == "ROOT" and h.names:
                raise FormatError("a second ROOT: only one skeleton per file is supported", where, line)
            if tok == "JOINT" and not stack:
                raise FormatError("JOINT outside any ROOT block", where, line)
            if stack and stack[-1] == -1:
                raise FormatError("JOINT inside an End Site block", where, line)
            words = []
            while k < len(tokens) and tokens[k][1] == line and tokens[k][0] != "{":
                words.append(tokens[k][0])
                k += 1
            if not words:
                raise FormatError(f"{tok} without a name", where, line)
            name = " ".join(words)
            if name in h.names:
                first = lines_of[h.names.index(name)]
                raise FormatError(f"duplicate joint name {name!r} (first declared on line {first})", where, line)
            h.names.append(name)
            h.parents.append(stack[-1] if stack else -1)
            h.offsets.append([0.0, 0.0, 0.0])
            h.channels.append(())
            lines_of[len(h.names) - 1] = line
            pending = (len(h.names) - 1, line)
        elif tok == "End":
            if k < len(tokens) and tokens[k][0] == "Site":
                k += 1
            if not stack or stack[-1] == -1:
                raise FormatError("End Site outside a joint", where, line)
            pending = (-1, line)
        elif tok == "{":
            if pending is None:
                raise FormatError("unexpected '{'", where, line)
            if pending[0] == -1:
                h.end_sites.setdefault(stack[-1], [0.0, 0.0, 0.0])
            stack.append(pending[0])
            pending = None
        elif tok == "}":
            if not stack:
                raise FormatError("unbalanced braces: '}' without a matching '{'", where, line)
            j = stack.pop()
            if j >= 0 and j not in has_offset:
                raise FormatError(f"joint {h.names[j]!r} has no OFFSET", where, lines_of[j])
        elif tok == "OFFSET":
            if not stack:
                raise FormatError("OFFSET outside a joint block", where, line)
            nums = [t for t, ln in tokens[k:k + 3] if ln == line]
            if len(nums) != 3:
                raise FormatError(f"OFFSET needs 3 numbers, found {len(nums)}", where, line)
            offset = [_number(t, where, line) for t in nums]
            k += 3
            if stack[-1] == -1:
                h.end_sites[stack[-2]] = offset
            else:
                h.offsets[stack[-1]] = offset
                has_offset.add(stack[-1])
        elif tok == "CHANNELS":
            if not stack or stack[-1] == -1:
                raise FormatError("CHANNELS outside a joint block", where, line)
            if k >= len(tokens) or tokens[k][1] != line or not tokens[k][0].isdigit():
                raise FormatError("CHANNELS must be followed by the number of channels", where, line)
            n = int(tokens[k][0])
            names = [t for t, ln in tokens[k + 1:k + 1 + n] if ln == line]
            extra = [t for t, ln in tokens[k + 1 + n:k + 2 + n] if ln == line]
            if len(names) != n or extra:
                raise FormatError(f"CHANNELS {n} lists {len(names) + len(extra)}{'+' if extra else ''} channel names",
                                  where, line)
            unknown = [t for t in names if t.lower() not in _CHANNEL_NAMES]
            if unknown:
                raise FormatError(f"unknown channel name {unknown[0]!r} (expected X/Y/Z position or rotation)",
                                  where, line)
            chans = tuple(_CHANNEL_NAMES[t.lower()] for t in names)
            if len(set(chans)) != len(chans):
                raise FormatError(f"repeated channel in {' '.join(names)}", where, line)
            h.channels[stack[-1]] = chans
            k += 1 + n
        elif tok == "HIERARCHY":
            raise FormatError("a second HIERARCHY keyword", where, line)
        else:
            raise FormatError(f"unexpected {tok[:40]!r} in the HIERARCHY section", where, line)
    if pending is not None:
        raise FormatError("a joint declaration without its '{' block", where, pending[1])
    if not h.names:
        raise FormatError("the HIERARCHY declares no ROOT joint", where, tokens[-1][1])
    if stack:
        raise FormatError(f"unbalanced braces: {len(stack)} '{{' not closed before MOTION", where,
                          motion_line or tokens[-1][1])
    return h


def _number(token: str, where: str, line: int) -> float:
    try:
        x = float(token)
    except ValueError:
        raise FormatError(f"not a number: {token[:40]!r}", where, line) from None
    if not np.isfinite(x):
        raise FormatError(f"non-finite value {token!r}", where, line)
    return x


def _parse_motion(data: bytes, pos: int, motion_line: int, h: _Hierarchy, where: str):
    """Parse ``Frames:``, ``Frame Time:`` and the frame lines from ``data[pos:]`` (the line after MOTION).

    Returns (frames, frame_time, (frames, channels) float64 values).
    """
    line_no = motion_line
    fields = {}
    for key in (b"Frames:", b"Frame Time:"):
        while True:  # the next non-blank line
            if pos >= len(data):
                raise FormatError(f"truncated MOTION block: missing '{key.decode()}'", where, line_no + 1)
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            line, pos = data[pos:end].strip(), end + 1
            line_no += 1
            if line:
                break
        if not line.startswith(key):
            raise FormatError(f"expected '{key.decode()}', found {line[:40].decode('latin-1')!r}", where, line_no)
        fields[key] = (line[len(key):].strip().decode("latin-1"), line_no)
    text, ln = fields[b"Frames:"]
    if not text.isdigit():
        raise FormatError(f"Frames: {text!r} is not a frame count", where, ln)
    n_frames = int(text)
    if n_frames == 0:
        raise FormatError("the MOTION block has 0 frames", where, ln)
    text, ln = fields[b"Frame Time:"]
    try:
        frame_time = float(text)
    except ValueError:
        raise FormatError(f"Frame Time: {text!r} is not a number", where, ln) from None
    if not frame_time > 0 or not np.isfinite(frame_time):
        raise FormatError(f"Frame Time must be positive, got {text}", where, ln)
    first_line = line_no + 1
    values = _parse_frames(data[pos:], n_frames, h.num_channels, first_line, where)
    return n_frames, frame_time, values


def _parse_frames(block: bytes, n_frames: int, n_channels: int, first_line: int, where: str) -> np.ndarray:
    """(frames, channels) values of the frame lines in ``block`` (whose first line is file line ``first_line``).

    numpy's C ``loadtxt`` reads well-formed blocks fast; anything it rejects is re-examined line by line to name the
    problem and its line.
    """
    values = None
    if block and not block.isspace():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = np.loadtxt(io.BytesIO(block), dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            values = None
    if values is None or values.shape != (n_frames, n_channels):
        values = _parse_frames_checked(block, n_frames, n_channels, first_line, where)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        frame_lines = _token_counts(block)[0]
        raise FormatError(f"non-finite value {values[row, col]} (column {col + 1})", where,
                          first_line + int(frame_lines[row]))
    return values


def _token_counts(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices of the non-blank lines of ``block``, number of values on every line, newline byte positions)."""
    a = np.frombuffer(block, dtype=np.uint8)
    ws = _WHITESPACE[a]
    starts = np.flatnonzero(~ws & np.concatenate([[True], ws[:-1]]))  # first byte of each value
    newlines = np.flatnonzero(a == 10)
    counts = np.bincount(np.searchsorted(newlines, starts), minlength=len(newlines) + 1)
    return np.flatnonzero(counts), counts, newlines


def _parse_frames_checked(block: bytes, n_frames: int, n_channels: int, first_line: int, where: str) -> np.ndarray:
    """The slow, careful reading of the frame lines: raises `FormatError` naming the first bad line."""
    frame_lines, counts, newlines = _token_counts(block)
    wrong = frame_lines[counts[frame_lines] != n_channels]
    if len(wrong) and (len(frame_lines) <= n_frames or wrong[0] <= frame_lines[n_frames - 1]):
        i = wrong[0]
        raise FormatError(f"frame line has {counts[i]} values, expected {n_channels} (one per channel)", where,
                          first_line + int(i))
    if len(frame_lines) < n_frames:
        raise FormatError(f"truncated MOTION block: 'Frames: {n_frames}' but only {len(frame_lines)} frame lines",
                          where, first_line + (int(frame_lines[-1]) + 1 if len(frame_lines) else 0))
    if len(frame_lines) > n_frames:
        raise FormatError(f"more frame lines ({len(frame_lines)}) than 'Frames: {n_frames}'", where,
                          first_line + int(frame_lines[n_frames]))
    for i in frame_lines:
        lo = newlines[i - 1] + 1 if i > 0 else 0
        hi = newlines[i] if i < len(newlines) else len(block)
        for tok in block[lo:hi].split():
            try:
                float(tok)
            except ValueError:
                raise FormatError(f"not a number: {tok[:40].decode('latin-1')!r}", where, first_line + int(i)) from None
    return np.array(block.split(), dtype=np.float64).reshape(n_frames, n_channels)


def _rotation_order(channels: tuple[str, ...]) -> tuple[str, list[int]]:
    """(intrinsic Euler order of 3 axes, indices into ``channels`` of each axis or -1 for a padded axis)."""
    axes = [c[0] for c in channels if c in ROTATION_CHANNELS]
    idx = [channels.index(f"{a}rotation") for a in axes]
    for a in "XYZ":
        if a not in axes:
            axes.append(a)
            idx.append(-1)
    return "".join(axes), idx


def _fps(frame_time: float) -> float:
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) <= 1e-4 * fps:
        return float(round(fps))
    return float(f"{fps:.6g}")


def _build_motion(h: _Hierarchy, n_frames: int, frame_time: float, values: np.ndarray, name: str) -> Motion:
    J = len(h.names)
    offsets = np.asarray(h.offsets, dtype=np.float64)
    col0 = np.cumsum([0] + [len(c) for c in h.channels])
    # translations: offsets, replaced by position channels where present
    trans = np.broadcast_to(offsets, (n_frames, J, 3))
    has_pos = [j for j in range(J) if any(c in POSITION_CHANNELS for c in h.channels[j])]
    if has_pos:
        trans = trans.copy()
        for j in has_pos:
            for i, c in enumerate(h.channels[j]):
                if c in POSITION_CHANNELS:
                    trans[:, j, "XYZ".index(c[0])] = values[:, col0[j] + i]
    # rotations: one vectorised Euler conversion per distinct channel order
    rot = np.zeros((n_frames, J, 4))
    rot[..., 3] = 1.0
    groups: dict[str, list[tuple[int, list[int]]]] = {}
    for j in range(J):
        if any(c in ROTATION_CHANNELS for c in h.channels[j]):
            order, idx = _rotation_order(h.channels[j])
            groups.setdefault(order, []).append((j, [col0[j] + i if i >= 0 else -1 for i in idx]))
    padded = any(-1 in cols for g in groups.values() for _, cols in g)
    table = np.concatenate([values, np.zeros((n_frames, 1))], axis=1) if padded else values  # column -1 is zero
    for order, members in groups.items():
        joints = [j for j, _ in members]
        angles = table[:, np.asarray([cols for _, cols in members])]  # (T, k, 3)
        rot[:, joints] = R.euler_to_quat(angles, order, degrees=True)
    # moving root
    root = next((j for j in has_pos if np.ptp(trans[:, j], axis=0).max() > _STATIC_TOLERANCE),
                has_pos[0] if has_pos else 0)
    skeleton = Skeleton(h.names, h.parents, offsets, h.channels, h.end_sites, root=root)
    root_positions = np.array(trans[:, root])
    translations = trans if any(j != root for j in has_pos) else None
    return Motion(skeleton, rot, root_positions, _fps(frame_time), translations=translations, name=name)


# ---- many files -----------------------------------------------------------------------------------------------------
def iter_bvh(source: str | os.PathLike, workers: int = 1) -> Iterator[tuple[str, Motion | FormatError]]:
    """Read every BVH take of a file, a folder or a zip, yielding ``(name, Motion)`` or ``(name, FormatError)``.

    - a ``.bvh`` file: one item, named by the path as given;
    - a folder: every ``*.bvh`` below it (recursive), sorted, named by the path relative to the folder
      (``/``-separated);
    - a ``.zip``: every member ending ``.bvh``, sorted, read in memory (never extracted), named by the member name.

    A take that cannot be read is yielded as its `FormatError` instead of stopping the iteration, so that a dataset
    can report and skip it. A missing source raises `FormatError`. ``workers > 1`` parses in that many processes
    (each reads its own members from disk or the zip, so only the parsed motions travel back); order is kept.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
        jobs = [(None, str(p), p.relative_to(source).as_posix()) for p in files]
        yield from _run_jobs(jobs, workers)
    elif source.is_file() and zipfile.is_zipfile(source):
        try:
            with zipfile.ZipFile(source) as z:
                members = sorted(n for n in z.namelist() if n.lower().endswith(".bvh") and not n.endswith("/"))
        except (zipfile.BadZipFile, OSError) as e:
            raise FormatError(f"cannot read zip: {e}", str(source)) from None
        yield from iter_bvh_members(source, members, workers)
    elif source.is_file():
        yield from _run_jobs([(None, str(source), str(source))], workers)
    else:
        raise FormatError("no such file or folder", str(source))


def iter_bvh_members(zip_path: str | os.PathLike, members: Iterable[str],
                     workers: int = 1) -> Iterator[tuple[str, Motion | FormatError]]:
    """Like `iter_bvh` for chosen members of a zip (in the given order); a missing member yields a FormatError."""
    if not Path(zip_path).is_file():
        raise FormatError("no such file", str(zip_path))
    yield from _run_jobs([(str(zip_path), m, m) for m in members], workers)


def _run_jobs(jobs: list[tuple[str | None, str, str]], workers: int) -> Iterator[tuple[str, Motion | FormatError]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _unpack(_load_job(job))
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)  # fork: no re-import of torch
    workers = min(workers, len(jobs))
    chunk = max(1, min(16, len(jobs) // (workers * 8)))
    pool = ctx.Pool(workers, initializer=_init_worker)
    try:
        for item in pool.imap(_load_job, jobs, chunksize=chunk):
            yield _unpack(item)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # parallelism comes from the processes; also avoids OpenMP state inherited by fork


_open_zips: dict[tuple[int, str], zipfile.ZipFile] = {}


def _load_job(job: tuple[str | None, str, str]):
    """Read and parse one take; errors come back as plain tuples (exceptions lose their fields when pickled)."""
    zip_path, member, name = job
    try:
        if zip_path is None:
            return name, read_bvh(member)
        where = f"{zip_path}:{member}"
        key = (os.getpid(), zip_path)  # a ZipFile's file handle must not be shared with forked processes
        if key not in _open_zips:
            _open_zips[key] = zipfile.ZipFile(zip_path)
        try:
            data = _open_zips[key].read(member)
        except KeyError:
            raise FormatError("no such member in the zip", where) from None
        # zipfile raises NotImplementedError for a compression method it cannot read
        except (zipfile.BadZipFile, OSError, NotImplementedError) as e:
            raise FormatError(f"cannot read zip member: {e}", where) from None
        return name, _parse(data, where, PurePosixPath(member).stem)
    except FormatError as e:
        return name, ("FormatError", e.reason, e.path, e.line)


def _unpack(item) -> tuple[str, Motion | FormatError]:
    name, result = item
    if isinstance(result, tuple):
        result = FormatError(*result[1:])
    return name, result


# ---- writing --------------------------------------------------------------------------------------------------------
def write_bvh(motion: Motion, path: str | os.PathLike) -> None:
    """Write ``motion`` as BVH in its skeleton's channel layout, atomically (no half-written file on failure).

    Position channels get the root's ``root_positions`` on the moving root, ``translations`` (when present) or the
    rest offsets elsewhere; rotations are converted to each joint's Euler order. Numbers use 6 decimals.
    What the layout has no channel for is not written: translations of joints without position channels, rotations
    of joints without rotation channels. Joints are written depth-first (children in index order), so a skeleton
    not already in that order (e.g. SMPL) reads back with its joints reordered.
    """
    text = format_bvh(motion)
    with atomic_open(path, "w", newline="\n") as f:
        f.write(text)


def format_bvh(motion: Motion) -> str:
    """The BVH text of ``motion`` (see `write_bvh`)."""
    skel = motion.skeleton
    T, J = motion.num_frames, len(skel)
    lines = ["HIERARCHY"]
    file_order: list[int] = []  # joints in depth-first order, as written

    def emit(j: int, depth: int) -> None:
        tab = "\t" * depth
        file_order.append(j)
        lines.extend([f"{tab}{'ROOT' if j == 0 else 'JOINT'} {skel.names[j]}", tab + "{",
                      f"{tab}\tOFFSET {' '.join(_fmt(x) for x in skel.offsets[j])}"])
        if skel.channels[j]:
            lines.append(f"{tab}\tCHANNELS {len(skel.channels[j])} {' '.join(skel.channels[j])}")
        for c in skel.children[j]:
            emit(c, depth + 1)
        if j in skel.end_sites:
            lines.extend([f"{tab}\tEnd Site", f"{tab}\t{{",
                          f"{tab}\t\tOFFSET {' '.join(_fmt(x) for x in skel.end_sites[j])}", f"{tab}\t}}"])
        lines.append(tab + "}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / motion.fps:.10g}"]

    columns = []
    trans = motion.translations
    euler: dict[int, np.ndarray] = {}
    groups: dict[str, list[int]] = {}
    for j in range(J):
        if any(c in ROTATION_CHANNELS for c in skel.channels[j]):
            groups.setdefault(_rotation_order(skel.channels[j])[0], []).append(j)
    for order, joints in groups.items():
        angles = R.quat_to_euler(R.quat_normalize(motion.rotations[:, joints]), order, degrees=True)
        for k, j in enumerate(joints):
            euler[j] = angles[:, k]
    for j in file_order:
        if not skel.channels[j]:
            continue
        if j == skel.root:
            pos = motion.root_positions
        elif trans is not None:
            pos = trans[:, j]
        else:
            pos = np.broadcast_to(skel.offsets[j], (T, 3))
        order = _rotation_order(skel.channels[j])[0]
        for c in skel.channels[j]:
            columns.append(pos[:, "XYZ".index(c[0])] if c in POSITION_CHANNELS else euler[j][:, order.index(c[0])])
    if columns:
        table = np.stack(columns, axis=1)
        table[np.abs(table) < 5e-7] = 0.0  # no "-0.000000"
        row = " ".join(["%.6f"] * table.shape[1])
        lines += [row % tuple(r) for r in table.tolist()]
    else:
        lines += [""] * T
    return "\n".join(lines) + "\n"


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s
