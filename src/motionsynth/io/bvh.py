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

Every problem with the input raises `FormatError` naming the file and, where it applies, the line number. Limits
(one parser each, `_integer` and `_number`, for every header field; ASCII digits only):

- ``CHANNELS`` 0–6 per joint; ``Frames:`` 1–100,000,000; frames × joints at most `limits.max_joint_frames()`
  (20,000,000 unless raised: ``MOTIONSYNTH_MAX_JOINT_FRAMES``, ``motionsynth --max-joint-frames N``, or
  ``max_joint_frames=`` of `read_bvh` / `parse_bvh`), checked from the ``Frames:`` line before any frame is read and
  refused with `limits.LimitError` naming file and line; beyond 1,000,000 joint-frames at least one channel per 8
  joints (so that a small file cannot make the reader allocate gigabytes); ``Frame Time:`` 1e-6 to 1,000 seconds
  (fps 0.001 to 1,000,000); the words of ``Frame Time:`` and the numbers after the colons may be separated by any
  run of spaces or tabs;
- every offset and channel value finite with ``|x| <= 1e9`` (beyond that float64 forward kinematics and Euler
  conversion lose all precision; no capture volume or angle comes near it);
- joint names printable (no control characters) and not ``{`` / ``}`` — what the writer can write back: `write_bvh`
  refuses with `MotionsynthError` what the reader would refuse (names, values, frame rate, an empty layout, the
  channel-per-8-joints rule). The writer's size cap is fixed at 100,000,000 joint-frames, not the reader's
  adjustable limit: writing what was computed is never refused for being over a limit that the reader of the file
  can raise.

Reading and writing take time linear in the file size, whatever the number of joints or the depth of the tree.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, cast

import numpy as np

from .. import limits
from .. import rotations as R
from ..errors import FormatError, MotionsynthError
from ..motion import Motion
from ..skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton
from .atomic import atomic_open

__all__ = ["read_bvh", "parse_bvh", "declared_size", "iter_bvh", "iter_bvh_members", "write_bvh", "format_bvh"]

_CHANNEL_NAMES = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}
_MOTION_LINE = re.compile(rb"^[ \t]*MOTION[ \t]*\r?$", re.MULTILINE)
_WHITESPACE = np.zeros(256, dtype=bool)  # the bytes `bytes.split()` splits on
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
_STATIC_TOLERANCE = 1e-6  # a position channel moving less than this (file units) counts as static
_MAX_CHANNELS = 6  # per joint: 3 positions + 3 rotations
_MAX_FRAMES = 100_000_000
_WRITE_MAX_JOINT_FRAMES = 100_000_000  # frames x joints the writer writes (the reader's limit is `limits`)
_FREE_JOINT_FRAMES = 1_000_000  # beyond this, at most 8 joints per channel (no small file with many static joints
_JOINTS_PER_CHANNEL = 8  # and many frames can make the reader allocate gigabytes)
_MAX_ABS = 1e9  # largest |value| of an offset or channel value
_FRAME_TIME = (1e-6, 1e3)  # seconds: 1,000,000 to 0.001 fps
_MAX_NUMBER_CHARS = 100  # longest header number
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")
_MOTION_KEYS = (("Frames:", re.compile(rb"Frames:")), ("Frame Time:", re.compile(rb"Frame[ \t]+Time:")))
_DECLARED_FRAMES = re.compile(rb"\s*Frames:[ \t]*([0-9]{1,18})[ \t]*\r?(?:\n|$)")
_JOINT_WORDS = (b"ROOT", b"JOINT")
_MAX_INDENT = 32  # tabs: deeper joints are written at this indentation, so a deep chain's file grows linearly


# ---- reading --------------------------------------------------------------------------------------------------------
def read_bvh(path: str | os.PathLike, *, max_joint_frames: int | None = None) -> Motion:
    """Read one BVH file. Raises `FormatError` (naming file and line) on bad input, `limits.LimitError` (naming file
    and the ``Frames:`` line) when frames × joints exceeds ``max_joint_frames`` (default
    `limits.max_joint_frames()`; a caller such as the editor may pass a tighter one)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError("no such file", str(path)) from None
    except IsADirectoryError:
        raise FormatError("is a folder, not a BVH file (use iter_bvh for folders)", str(path)) from None
    return _parse(data, str(path), path.stem, max_joint_frames)


def declared_size(data: bytes) -> tuple[int, int, int] | None:
    """(frames, joints, offset of the MOTION line's end) that a BVH's header declares, or None when ``data`` (the
    file's first bytes) holds no complete header (the reader then names the problem). Cheap, nothing checked: one
    scan of the HIERARCHY's lines for ``ROOT`` / ``JOINT``, nothing read beyond ``Frames:`` — for refusing a large
    file before the rest of it is read (the editor's uploads); `parse_bvh` checks the same size itself."""
    if b"\n" not in data:
        data = data.replace(b"\r", b"\n")  # classic Mac line ends, as the reader takes them
    motion = _MOTION_LINE.search(data)
    if motion is None:
        return None
    frames = _DECLARED_FRAMES.match(data, motion.end())
    if frames is None:
        return None
    first_words = (line.split(None, 1)[:1] for line in data[:motion.start()].split(b"\n"))
    joints = sum(1 for words in first_words if words and words[0] in _JOINT_WORDS)
    return int(frames.group(1)), joints, motion.end()


def parse_bvh(text: str | bytes, path: str = "<string>", *, max_joint_frames: int | None = None) -> Motion:
    """Parse BVH text (``str`` or ``bytes``); ``path`` names the source in error messages and gives the name.
    ``max_joint_frames``: as for `read_bvh`."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    name = "" if path == "<string>" else PurePosixPath(str(path).replace("\\", "/")).stem
    return _parse(data, path, name, max_joint_frames)


def _parse(data: bytes, where: str, name: str, max_joint_frames: int | None = None) -> Motion:
    if not data or data.isspace():
        raise FormatError("empty file", where)
    if b"\x00" in data[:4096] or data[:2] in (b"PK", b"\x1f\x8b"):
        raise FormatError("binary data, not a BVH text file", where)
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data = data[3:]
    if b"\n" not in data:  # classic Mac line ends (CR only)
        data = data.replace(b"\r", b"\n")
    found = _MOTION_LINE.search(data)
    head = data[:found.start()] if found else data
    header = _decode(head)
    skel = _parse_hierarchy(header, where, motion_line=header.count("\n") + 1 if found else None)
    if not found:
        raise FormatError("missing MOTION section after the HIERARCHY", where, header.count("\n") + 1)
    motion_line = header.count("\n") + 1
    pos = found.end() + 1 if data[found.end():found.end() + 1] == b"\n" else found.end()
    n_frames, frame_time, values = _parse_motion(data, pos, motion_line, skel, where, max_joint_frames)
    return _build_motion(skel, n_frames, frame_time, values, name, where)


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
    """Parse everything before ``MOTION``: the joint tree, offsets, channels and end sites.

    One pass over the words, with dictionaries for names and channel layouts: time linear in the header's size.
    """
    toks, lns = _words(header)
    if not toks:
        raise FormatError("missing HIERARCHY (the file has no hierarchy before MOTION)", where, motion_line)
    if toks[0] != "HIERARCHY":
        raise FormatError(f"missing HIERARCHY: the file starts with {toks[0][:40]!r}", where, lns[0])
    return _HierarchyParser(toks, lns, where).parse(motion_line)


class _HierarchyParser:
    """The state of `_parse_hierarchy`'s pass: the words and their lines, the position ``k``, the open blocks and
    the hierarchy so far; one method per keyword."""

    def __init__(self, toks: list[str], lns: list[int], where: str):
        self.toks, self.lns, self.where = toks, lns, where
        self.k = 1
        self.h = _Hierarchy()
        self.stack: list[int] = []  # open blocks: joint index, or -1 for an End Site
        self.pending: tuple[int, int] | None = None  # (joint index or -1, line) declared and waiting for its "{"
        self.has_offset: set[int] = set()
        self.lines_of: dict[str, int] = {}  # joint name → its line (a dict: a list search per joint would be O(J²))
        self.layouts: dict[tuple[str, ...], tuple[str, ...]] = {}  # CHANNELS words → checked channel names
        self.keywords = {"ROOT": self._joint, "JOINT": self._joint, "End": self._end_site, "{": self._open,
                         "}": self._close, "OFFSET": self._offset, "CHANNELS": self._channel_list}

    def error(self, message: str, line: int) -> FormatError:
        return FormatError(message, self.where, line)

    def parse(self, motion_line: int | None) -> _Hierarchy:
        toks, lns, n = self.toks, self.lns, len(self.toks)
        while self.k < n:
            tok, line = toks[self.k], lns[self.k]
            self.k += 1
            if self.pending is not None and tok != "{":
                raise self.error(f"expected '{{' after the joint declaration, found {tok[:40]!r}", line)
            handler = self.keywords.get(tok)
            if handler is None:
                raise self.error("a second HIERARCHY keyword" if tok == "HIERARCHY" else
                                 f"unexpected {tok[:40]!r} in the HIERARCHY section", line)
            handler(tok, line)
        if self.pending is not None:
            raise self.error("a joint declaration without its '{' block", self.pending[1])
        if not self.h.names:
            raise self.error("the HIERARCHY declares no ROOT joint", lns[-1])
        if self.stack:
            raise self.error(f"unbalanced braces: {len(self.stack)} '{{' not closed before MOTION",
                             motion_line or lns[-1])
        return self.h

    def _joint(self, tok: str, line: int) -> None:
        h, toks, lns, n = self.h, self.toks, self.lns, len(self.toks)
        _check_joint_place(tok, h, self.stack, self.where, line)
        start = self.k
        while self.k < n and lns[self.k] == line and toks[self.k] != "{":
            self.k += 1
        name = " ".join(toks[start:self.k])
        _check_joint_name(name, tok, self.lines_of, self.where, line)
        h.names.append(name)
        h.parents.append(self.stack[-1] if self.stack else -1)
        h.offsets.append([0.0, 0.0, 0.0])
        h.channels.append(())
        self.lines_of[name] = line
        self.pending = (len(h.names) - 1, line)

    def _end_site(self, tok: str, line: int) -> None:
        if self.k < len(self.toks) and self.toks[self.k] == "Site":
            self.k += 1
        if not self.stack or self.stack[-1] == -1:
            raise self.error("End Site outside a joint", line)
        self.pending = (-1, line)

    def _open(self, tok: str, line: int) -> None:
        if self.pending is None:
            raise self.error("unexpected '{'", line)
        if self.pending[0] == -1:
            self.h.end_sites.setdefault(self.stack[-1], [0.0, 0.0, 0.0])
        self.stack.append(self.pending[0])
        self.pending = None

    def _close(self, tok: str, line: int) -> None:
        if not self.stack:
            raise self.error("unbalanced braces: '}' without a matching '{'", line)
        j = self.stack.pop()
        if j >= 0 and j not in self.has_offset:
            raise self.error(f"joint {self.h.names[j][:40]!r} has no OFFSET", self.lines_of[self.h.names[j]])

    def _offset(self, tok: str, line: int) -> None:
        stack, k = self.stack, self.k
        if not stack:
            raise self.error("OFFSET outside a joint block", line)
        found = sum(1 for ln in self.lns[k:k + 3] if ln == line)
        if found != 3:
            raise self.error(f"OFFSET needs 3 numbers, found {found}", line)
        offset = [_number(t, self.where, line, "OFFSET value") for t in self.toks[k:k + 3]]
        self.k += 3
        if stack[-1] == -1:
            self.h.end_sites[stack[-2]] = offset
        else:
            self.h.offsets[stack[-1]] = offset
            self.has_offset.add(stack[-1])

    def _channel_list(self, tok: str, line: int) -> None:
        if not self.stack or self.stack[-1] == -1:
            raise self.error("CHANNELS outside a joint block", line)
        end = self.k
        while end < len(self.toks) and self.lns[end] == line:
            end += 1
        words = tuple(self.toks[self.k:end])
        if words not in self.layouts:
            self.layouts[words] = _channels(words, self.where, line)
        self.h.channels[self.stack[-1]] = self.layouts[words]
        self.k = end


def _words(header: str) -> tuple[list[str], list[int]]:
    """(the whitespace-separated words of ``header``, the 1-based line number of each)."""
    toks: list[str] = []
    lns: list[int] = []
    for i, line in enumerate(header.split("\n"), 1):
        words = line.split()
        if words:
            toks += words
            lns += [i] * len(words)
    return toks, lns


def _check_joint_place(keyword: str, h: _Hierarchy, stack: list[int], where: str, line: int) -> None:
    """Raise `FormatError` unless a ``ROOT`` / ``JOINT`` may start here."""
    if keyword == "ROOT" and h.names:
        raise FormatError("a second ROOT: only one skeleton per file is supported", where, line)
    if keyword == "JOINT" and not stack:
        raise FormatError("JOINT outside any ROOT block", where, line)
    if stack and stack[-1] == -1:
        raise FormatError("JOINT inside an End Site block", where, line)


def _check_joint_name(name: str, keyword: str, lines_of: dict[str, int], where: str, line: int) -> None:
    """Raise `FormatError` for a missing, repeated or unwritable joint name."""
    if not name:
        raise FormatError(f"{keyword} without a name", where, line)
    if name in lines_of:
        raise FormatError(f"duplicate joint name {name[:40]!r} (first declared on line {lines_of[name]})", where,
                          line)
    problem = _name_problem(name)
    if problem:
        raise FormatError(f"joint name {name[:40]!r} {problem}", where, line)


def _channels(words: tuple[str, ...], where: str, line: int) -> tuple[str, ...]:
    """The channel names of a ``CHANNELS`` line from the words after the keyword: ``("3", "Zrotation", ...)``."""
    if not words:
        raise FormatError("CHANNELS must be followed by the number of channels", where, line)
    n = _integer(words[0], "CHANNELS", "a channel count", 0, _MAX_CHANNELS, where, line)
    names = words[1:]
    if len(names) != n:
        raise FormatError(f"CHANNELS {n} lists {len(names)} channel names", where, line)
    unknown = [t for t in names if t.lower() not in _CHANNEL_NAMES]
    if unknown:
        raise FormatError(f"unknown channel name {unknown[0][:40]!r} (expected X/Y/Z position or rotation)",
                          where, line)
    chans = tuple(_CHANNEL_NAMES[t.lower()] for t in names)
    if len(set(chans)) != len(chans):
        raise FormatError(f"repeated channel in {' '.join(names)}", where, line)
    return chans


def _integer(token: str, label: str, what: str, lo: int, hi: int, where: str, line: int) -> int:
    """A whole number of a header field (``CHANNELS n``, ``Frames: n``): ASCII digits only, from ``lo`` to ``hi``.

    ``str.isdigit``/``int`` would take Unicode digits (``'³'``, ``'٣'``) and fail on (or spend long on) thousands of
    digits; this never does.
    """
    if not _DIGITS.fullmatch(token):
        raise FormatError(f"{label} {token[:40]!r} is not {what} (a whole number from {lo} to {hi:,})", where, line)
    digits = token.lstrip("0") or "0"
    if len(digits) > len(str(hi)) or not lo <= int(digits) <= hi:
        shown = token if len(token) <= 40 else f"{token[:20]}… ({len(token)} digits)"
        raise FormatError(f"{label} {shown} is out of range for {what} (a whole number from {lo} to {hi:,})",
                          where, line)
    return int(digits)


def _number(token: str, where: str, line: int, label: str = "value") -> float:
    """A decimal number of a header field (``OFFSET``, ``Frame Time:``): ASCII, at most 100 characters, finite,
    ``|x| <= 1e9``."""
    if len(token) > _MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(token):
        if token.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise FormatError(f"non-finite {label} {token!r}", where, line)
        raise FormatError(f"not a number: {token[:40]!r}", where, line)
    x = float(token)
    if not abs(x) <= _MAX_ABS:
        raise FormatError(f"{label} {token[:40]} is out of range (|x| <= {_MAX_ABS:g})", where, line)
    return x


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a BVH joint name, or None. The reader splits a line into words at whitespace and joins
    the words after ``JOINT`` with one space up to a ``{`` word, so a name round-trips only if it is such a join: no
    control or other non-printable characters (NUL, tabs, line ends), no leading, trailing or repeated spaces, no
    ``{`` or ``}`` word."""
    if not isinstance(name, str) or not name:
        return "is empty or not a string"
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        return f"holds a control or non-printable character ({bad!r})"
    words = name.split()
    if name != " ".join(words):
        return "has leading, trailing or repeated spaces"
    if "{" in words or "}" in words:
        return "has a '{' or '}' word"
    return None


def _parse_motion(data: bytes, pos: int, motion_line: int, h: _Hierarchy, where: str,
                  max_joint_frames: int | None = None):
    """Parse ``Frames:``, ``Frame Time:`` and the frame lines from ``data[pos:]`` (the line after MOTION).

    The size (frames × joints) is checked from the ``Frames:`` line, before any frame line is read.
    Returns (frames, frame_time, (frames, channels) float64 values).
    """
    line_no = motion_line
    fields = {}
    for key, pattern in _MOTION_KEYS:
        while True:  # the next non-blank line
            if pos >= len(data):
                raise FormatError(f"truncated MOTION block: missing '{key}'", where, line_no + 1)
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            line, pos = data[pos:end].strip(), end + 1
            line_no += 1
            if line:
                break
        found = pattern.match(line)
        if not found:
            raise FormatError(f"expected '{key}', found {line[:40].decode('latin-1')!r}", where, line_no)
        fields[key] = (_decode(line[found.end():].strip()), line_no)
    text, ln = fields["Frames:"]
    if _DIGITS.fullmatch(text) and not text.strip("0"):
        raise FormatError("the MOTION block has 0 frames", where, ln)
    n_frames = _integer(text, "Frames:", "a frame count", 1, _MAX_FRAMES, where, ln)
    if h.num_channels == 0:
        raise FormatError("the HIERARCHY declares no CHANNELS: there is nothing to animate", where, ln)
    limits.check_joint_frames(n_frames, len(h.names), f"{where}:{ln}", max_joint_frames)
    problem = _amplification_problem(n_frames, len(h.names), h.num_channels)
    if problem:
        raise FormatError(problem, where, ln)
    text, ln = fields["Frame Time:"]
    frame_time = _number(text, where, ln, "Frame Time:")
    if not _FRAME_TIME[0] <= frame_time <= _FRAME_TIME[1]:
        raise FormatError(f"Frame Time: {text[:40]} is out of range (a positive number of seconds from "
                          f"{_FRAME_TIME[0]:g} to {_FRAME_TIME[1]:g})", where, ln)
    first_line = line_no + 1
    values = _parse_frames(data[pos:], n_frames, h.num_channels, first_line, where)
    return n_frames, frame_time, values


def _amplification_problem(n_frames: int, n_joints: int, n_channels: int) -> str | None:
    """Why a motion of this size is refused by the reader and the writer alike, or None: beyond 1,000,000
    joint-frames there must be a channel per 8 joints, so that the memory stays proportional to the file's frame
    lines (a joint without channels costs the file nothing per frame). The joint-frame limit itself is checked
    apart: `limits` for the reader, `_WRITE_MAX_JOINT_FRAMES` for the writer."""
    size = n_frames * n_joints
    if size > _FREE_JOINT_FRAMES and n_joints > _JOINTS_PER_CHANNEL * n_channels:
        return (f"too large: {n_frames:,} frames x {n_joints:,} joints with only {n_channels} channels (beyond "
                f"{_FREE_JOINT_FRAMES:,} joint-frames, at least one channel per {_JOINTS_PER_CHANNEL} joints)")
    return None


def _decode(data: bytes) -> str:
    """UTF-8 text, or Latin-1 where it is not UTF-8 (like the header)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


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
        except (ValueError, OverflowError):  # the careful reading below names the problem
            values = None
    if values is None or values.shape != (n_frames, n_channels):
        values = _parse_frames_checked(block, n_frames, n_channels, first_line, where)
    bad = ~(np.abs(values) <= _MAX_ABS)  # also NaN
    if bad.any():
        row, col = np.argwhere(bad)[0]
        x = values[row, col]
        problem = f"value {x:g} is out of range (|x| <= {_MAX_ABS:g})" if np.isfinite(x) else f"non-finite value {x}"
        frame_lines = _token_counts(block)[0]
        raise FormatError(f"{problem} (column {col + 1})", where, first_line + int(frame_lines[row]))
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
    values = []
    for i in frame_lines:
        lo = newlines[i - 1] + 1 if i > 0 else 0
        hi = newlines[i] if i < len(newlines) else len(block)
        for tok in block[lo:hi].split():
            try:
                if b"_" in tok:  # float() takes "1_000"; numpy and the header grammar do not
                    raise ValueError
                values.append(float(tok))
            except ValueError:
                raise FormatError(f"not a number: {tok[:40].decode('latin-1')!r}", where, first_line + int(i)) from None
    return np.array(values, dtype=np.float64).reshape(n_frames, n_channels)


@functools.lru_cache(maxsize=256)
def _rotation_order(channels: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """(intrinsic Euler order of 3 axes, indices into ``channels`` of each axis or -1 for a padded axis)."""
    axes = [c[0] for c in channels if c in ROTATION_CHANNELS]
    idx = [channels.index(f"{a}rotation") for a in axes]
    for a in "XYZ":
        if a not in axes:
            axes.append(a)
            idx.append(-1)
    return "".join(axes), tuple(idx)


def _fps(frame_time: float) -> float:
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) <= 1e-4 * fps:
        return float(round(fps))
    return float(f"{fps:.6g}")


def _build_motion(h: _Hierarchy, n_frames: int, frame_time: float, values: np.ndarray, name: str,
                  where: str) -> Motion:
    """The `Motion` of the parsed values; a `Skeleton` or `Motion` that refuses them raises `FormatError`.

    Vectorised per distinct channel layout (a skeleton has a few), not per joint.
    """
    J = len(h.names)
    offsets = np.asarray(h.offsets, dtype=np.float64)
    col0 = np.cumsum([0] + [len(c) for c in h.channels])[:-1]  # first column of each joint
    layouts: dict[tuple[str, ...], list[int]] = {}
    for j, chans in enumerate(h.channels):
        layouts.setdefault(chans, []).append(j)
    # translations: offsets, replaced by position channels where present
    trans = np.broadcast_to(offsets, (n_frames, J, 3))
    has_pos = sorted(j for chans, js in layouts.items() if set(chans) & set(POSITION_CHANNELS) for j in js)
    if has_pos:
        trans = trans.copy()
    # rotations: one vectorised Euler conversion per distinct rotation order
    rot = np.zeros((n_frames, J, 4))
    rot[..., 3] = 1.0
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # order → [(joints (k,), their columns (k, 3))]
    for chans, js_list in layouts.items():
        js = np.asarray(js_list)
        for i, c in enumerate(chans):
            if c in POSITION_CHANNELS:
                trans[:, js, "XYZ".index(c[0])] = values[:, col0[js] + i]
        if any(c in ROTATION_CHANNELS for c in chans):
            order, idx = _rotation_order(chans)
            cols = np.where(np.asarray(idx) >= 0, col0[js][:, None] + np.asarray(idx), -1)
            groups.setdefault(order, []).append((js, cols))
    padded = any((cols < 0).any() for g in groups.values() for _, cols in g)
    table = np.concatenate([values, np.zeros((n_frames, 1))], axis=1) if padded else values  # column -1 is zero
    for order, members in groups.items():
        joints = np.concatenate([js for js, _ in members])
        rot[:, joints] = R.euler_to_quat(table[:, np.concatenate([c for _, c in members])], order, degrees=True)
    root = _moving_root(trans, has_pos)
    root_positions = np.array(trans[:, root])
    translations = trans if any(j != root for j in has_pos) else None
    try:
        skeleton = Skeleton(h.names, cast(Any, h.parents), offsets, h.channels, cast(Any, h.end_sites), root=root)  # made arrays by __post_init__
        return Motion(skeleton, rot, root_positions, _fps(frame_time), translations=translations, name=name)
    except FormatError:
        raise
    except (ValueError, MotionsynthError) as e:  # what the parser's own checks should already have caught
        raise FormatError(f"not a valid motion: {e}", where) from None


def _moving_root(trans: np.ndarray, has_pos: list[int]) -> int:
    """The first joint of ``has_pos`` whose (T, J, 3) translation moves; else the first of them; else joint 0."""
    if not has_pos:
        return 0
    moves = np.ptp(trans[:, has_pos], axis=0).max(-1) > _STATIC_TOLERANCE
    return has_pos[int(np.argmax(moves))] if moves.any() else has_pos[0]


# ---- many files -----------------------------------------------------------------------------------------------------
def iter_bvh(source: str | os.PathLike, workers: int = 1) -> Iterator[tuple[str, Motion | MotionsynthError]]:
    """Read every BVH take of a file, a folder or a zip, yielding ``(name, Motion)`` or ``(name, error)``.

    - a ``.bvh`` file: one item, named by the path as given;
    - a folder: every ``*.bvh`` below it (recursive), sorted, named by the path relative to the folder
      (``/``-separated);
    - a ``.zip``: every member ending ``.bvh``, sorted, read in memory (never extracted), named by the member name.

    A take that cannot be read is yielded as its `FormatError` (or `limits.LimitError`, too large) instead of stopping
    the iteration, so that a dataset can report and skip it. A missing source raises `FormatError`. ``workers > 1`` parses in that many processes
    (each reads its own members from disk or the zip, so only the parsed motions travel back); order is kept.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
        jobs: list[tuple[str | None, str, str]] = [(None, str(p), p.relative_to(source).as_posix()) for p in files]
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
                     workers: int = 1) -> Iterator[tuple[str, Motion | MotionsynthError]]:
    """Like `iter_bvh` for chosen members of a zip (in the given order); a missing member yields a FormatError."""
    if not Path(zip_path).is_file():
        raise FormatError("no such file", str(zip_path))
    yield from _run_jobs([(str(zip_path), m, m) for m in members], workers)


def _run_jobs(jobs: list[tuple[str | None, str, str]],
              workers: int) -> Iterator[tuple[str, Motion | MotionsynthError]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _unpack(_load_job(job))
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)  # fork: no re-import of torch
    workers = min(workers, len(jobs))
    chunk = max(1, min(16, len(jobs) // (workers * 8)))
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(limits.max_joint_frames(),))
    try:
        for item in pool.imap(_load_job, jobs, chunksize=chunk):
            yield _unpack(item)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _init_worker(max_joint_frames: int) -> None:
    """Set up a worker: one torch thread, this process's joint-frame limit (a spawned worker would not inherit it)."""
    import torch

    torch.set_num_threads(1)  # parallelism comes from the processes; also avoids OpenMP state inherited by fork
    limits.set_max_joint_frames(max_joint_frames)


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
    except limits.LimitError as e:  # one message, pickles as it is
        return name, e


def _unpack(item) -> tuple[str, Motion | MotionsynthError]:
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
    not already in that order (e.g. SMPL) reads back with its joints reordered. A motion the reader would refuse
    (see the module's limits: joint names, values, frame rate, no channels at all) raises `MotionsynthError`.
    """
    text = format_bvh(motion)
    with atomic_open(path, "w", newline="\n") as f:
        f.write(text)


def format_bvh(motion: Motion) -> str:
    """The BVH text of ``motion`` (see `write_bvh`)."""
    skel = motion.skeleton
    _check_writable(motion)
    lines, file_order = _hierarchy_lines(skel)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {1.0 / motion.fps:.10g}"]
    table = _channel_table(motion, file_order)
    if not np.all(np.abs(table) <= _MAX_ABS):  # also NaN
        t, c = np.argwhere(~(np.abs(table) <= _MAX_ABS))[0]
        raise MotionsynthError(f"cannot write BVH: frame {t}, channel {c + 1} has the value {table[t, c]:g} (the "
                               f"reader accepts finite values with |x| <= {_MAX_ABS:g})")
    table[np.abs(table) < 5e-7] = 0.0  # no "-0.000000"
    row = " ".join(["%.6f"] * table.shape[1])
    lines += [row % tuple(r) for r in table.tolist()]
    return "\n".join(lines) + "\n"


def _check_writable(motion: Motion) -> None:
    """Raise `MotionsynthError` for what `format_bvh` cannot write so that `parse_bvh` reads it back."""
    skel = motion.skeleton
    for j, name in enumerate(skel.names):
        problem = _name_problem(name)
        if problem:
            raise MotionsynthError(f"cannot write BVH: joint {j} name {str(name)[:40]!r} {problem}")
    for j, chans in enumerate(skel.channels):
        if len(chans) > _MAX_CHANNELS or len(set(chans)) != len(chans) or \
                any(c not in POSITION_CHANNELS + ROTATION_CHANNELS for c in chans):
            raise MotionsynthError(f"cannot write BVH: joint {skel.names[j][:40]!r} has the channels {chans} "
                                   "(at most one each of X/Y/Z position and rotation)")
    if not any(skel.channels):
        raise MotionsynthError("cannot write BVH: the skeleton has no channels (nothing to animate)")
    if not 1 <= motion.num_frames <= _MAX_FRAMES:
        raise MotionsynthError(f"cannot write BVH: {motion.num_frames:,} frames (from 1 to {_MAX_FRAMES:,})")
    size = motion.num_frames * len(skel)
    if size > _WRITE_MAX_JOINT_FRAMES:
        raise MotionsynthError(f"cannot write BVH: too large: {motion.num_frames:,} frames x {len(skel):,} joints is "
                               f"more than {_WRITE_MAX_JOINT_FRAMES:,} joint-frames")
    problem = _amplification_problem(motion.num_frames, len(skel), sum(len(c) for c in skel.channels))
    if problem:
        raise MotionsynthError(f"cannot write BVH: {problem}")
    if not 1 / _FRAME_TIME[1] <= motion.fps <= 1 / _FRAME_TIME[0]:
        raise MotionsynthError(f"cannot write BVH at {motion.fps} fps (from {1 / _FRAME_TIME[1]:g} to "
                               f"{1 / _FRAME_TIME[0]:g})")
    rest = [skel.offsets] + [np.asarray(v).reshape(1, 3) for v in skel.end_sites.values()]
    if not all(np.all(np.abs(a) <= _MAX_ABS) for a in rest):
        raise MotionsynthError(f"cannot write BVH: an offset or end site is not finite or beyond |x| <= {_MAX_ABS:g}")


def _hierarchy_lines(skel: Skeleton) -> tuple[list[str], list[int]]:
    """(the HIERARCHY lines of ``skel``, its joints in the order written: depth-first, children in index order).

    Iterative (an explicit stack), so that any depth can be written; indentation stops growing at 32 tabs.
    """
    lines = ["HIERARCHY"]
    file_order: list[int] = []
    stack = [(0, 0, False)]  # (joint, depth, closing: its children are written)
    while stack:
        j, depth, closing = stack.pop()
        tab = "\t" * min(depth, _MAX_INDENT)
        if closing:
            if j in skel.end_sites:
                lines.extend([f"{tab}\tEnd Site", f"{tab}\t{{",
                              f"{tab}\t\tOFFSET {' '.join(_fmt(x) for x in skel.end_sites[j])}", f"{tab}\t}}"])
            lines.append(tab + "}")
            continue
        file_order.append(j)
        lines.extend([f"{tab}{'ROOT' if j == 0 else 'JOINT'} {skel.names[j]}", tab + "{",
                      f"{tab}\tOFFSET {' '.join(_fmt(x) for x in skel.offsets[j])}"])
        if skel.channels[j]:
            lines.append(f"{tab}\tCHANNELS {len(skel.channels[j])} {' '.join(skel.channels[j])}")
        stack.append((j, depth, True))
        stack.extend((c, depth + 1, False) for c in reversed(skel.children[j]))
    return lines, file_order


def _channel_table(motion: Motion, file_order: list[int]) -> np.ndarray:
    """(T, channels) values of the frame lines: joints in ``file_order``, each joint's channels in its order.

    Position channels take `Motion.local_translations` (root positions on the moving root, translations or rest
    offsets elsewhere); rotation channels the joint's Euler angles, one vectorised conversion per rotation order.
    """
    skel = motion.skeleton
    T, J = motion.num_frames, len(skel)
    groups: dict[str, list[int]] = {}
    for j in range(J):
        if any(c in ROTATION_CHANNELS for c in skel.channels[j]):
            groups.setdefault(_rotation_order(skel.channels[j])[0], []).append(j)
    source = np.zeros((T, J, 6))  # per joint: X, Y, Z position, then the 3 angles in its rotation order
    source[..., :3] = motion.local_translations()
    for order, joints in groups.items():
        own = np.array([sum(c in ROTATION_CHANNELS for c in skel.channels[j]) for j in joints])
        source[:, joints, 3:] = _euler_angles(R.quat_normalize(motion.rotations[:, joints]), order, own)
    joint_of, slot_of = [], []
    for j in file_order:
        order = _rotation_order(skel.channels[j])[0]
        for c in skel.channels[j]:
            joint_of.append(j)
            slot_of.append("XYZ".index(c[0]) if c in POSITION_CHANNELS else 3 + order.index(c[0]))
    return source[:, joint_of, slot_of]


def _euler_angles(q: np.ndarray, order: str, own: np.ndarray) -> np.ndarray:
    """(T, k, 4) quaternions → (T, k, 3) angles in degrees about the axes of ``order``, for joints with ``own`` (k,)
    rotation channels: the first ``own`` axes of ``order`` (the rest are padded axes, not written).

    A joint with fewer than 3 rotation channels must get its padded angles zero: of the Euler solutions — the two of
    a Tait–Bryan order, ``(a, b, c)`` and ``(a + 180, 180 - b, c + 180)``, and at gimbal lock (``b = ±90``)
    ``(a ± c, b, 0)`` — it takes the one that, with the padded angles dropped, best reproduces the rotation (exactly
    the file's rotation when the motion was read from one).
    """
    e = R.quat_to_euler(q, order, degrees=True)
    partial = own < 3
    if not partial.any():
        return e
    a, b, c = (e[:, partial, i] for i in range(3))
    candidates = np.stack([np.stack(x, -1) for x in [(a, b, c), (a + 180, 180 - b, c + 180), (a + c, b, 0 * c),
                                                         (a - c, b, 0 * c)]])  # (4, T, k', 3)
    kept = np.arange(3) < own[partial][:, None]  # (k', 3)
    candidates = np.where(kept, (candidates + 180) % 360 - 180, 0.0)
    target = q[:, partial]
    fit = np.abs((R.euler_to_quat(candidates, order, degrees=True) * target).sum(-1))  # (4, T, k')
    e[:, partial] = np.take_along_axis(candidates, fit.argmax(0)[None, ..., None], axis=0)[0]
    return e


def _fmt(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s
