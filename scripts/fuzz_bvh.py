"""Fuzz the BVH reader: every mutated input must give `FormatError`, or a finite motion that round-trips.

    .venv/bin/python scripts/fuzz_bvh.py --n 100000 [--seed 0] [--timeout 5] [--json out.json] [--save DIR]
    .venv/bin/python scripts/fuzz_bvh.py --show 1234 [--seed 0]     # print input 1234 (repr) and its outcome
    .venv/bin/python scripts/fuzz_bvh.py --scale 40000              # parse / write times of 40,000-joint files

Input ``i`` is one of a few small valid BVH texts (`seed_texts`: 4–7 joints with end sites, 3- and 6-channel joints,
partial channel sets, different rotation orders, CRLF / tabs / scientific notation; or a generated chain up to
3,000 joints deep) mutated one to three times by `mutate` — truncation, bit flips and random bytes, token and line
edits (delete, duplicate, swap, insert keywords), odd numbers (huge, tiny, NaN, inf, Unicode digits, 5,000-digit
strings), odd header counts and frame times, control characters and non-UTF-8 bytes in names, deep or unclosed
nesting, line-end changes. Input ``i`` depends only on ``--seed`` and ``i``, so any input can be regenerated.

Outcomes, counted: ``ok`` (parsed; `check_motion` holds: finite values, consistent shapes, unit quaternions; written
and read back with forward-kinematics positions within 1e-3, relative 1e-6 beyond 1,000 units), ``format_error``,
``other`` (any other exception, or the property failing: its type is counted and the first inputs of each type are
saved under ``--save``) and ``hang`` (one parse + check over ``--timeout`` seconds, stopped by SIGALRM; saved too).
The slowest input is reported twice: parse + check, and `parse_bvh` alone. Prints a progress line every 10 s and a
summary (also written as JSON with ``--json``); exits 1 unless ``other`` and ``hang`` are 0. The test suite runs the
same generators (tests/test_fuzz_bvh.py imports this file).

``--scale N``: best-of-3 wall times of `parse_bvh` and `format_bvh` on an ``N``-joint wide tree (`wide_tree`: chains
of 10 joints under the root, 2 frames) and an ``N``-joint chain (`deep_chain`), after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

# ---- seed texts -----------------------------------------------------------------------------------------------------
_ORDERS = ["ZXY", "ZYX", "XYZ", "YXZ", "YZX", "XZY"]


def _channels(order: str, positions: bool = False) -> str:
    names = (["Xposition", "Yposition", "Zposition"] if positions else []) + [f"{a}rotation" for a in order]
    return f"CHANNELS {len(names)} {' '.join(names)}"


def _frame_lines(rng: np.random.Generator, n_frames: int, layout: list[tuple[int, int]], fmt: str = "%.4f",
                 sep: str = " ") -> list[str]:
    """Random frame lines; ``layout``: per joint (position channels, rotation channels)."""
    lines = []
    for _ in range(n_frames):
        vals = []
        for n_pos, n_rot in layout:
            vals += list(rng.uniform(-80, 80, n_pos)) + list(rng.uniform(-170, 170, n_rot))
        lines.append(sep.join(fmt % v for v in vals))
    return lines


def _humanoid(rng: np.random.Generator, orders: list[str], six: set[int], n_frames: int) -> list[str]:
    """7 joints (hips, spine, head, two arms, two legs), end sites on the leaves; ``six``: joints with 6 channels."""
    tree = [("Hips", -1), ("Spine", 0), ("Head", 1), ("LeftArm", 1), ("RightArm", 1), ("LeftLeg", 0),
            ("RightLeg", 0)]
    children = {j: [k for k, (_, p) in enumerate(tree) if p == j] for j in range(len(tree))}
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        tab = "  " * depth
        offset = " ".join(f"{x:.3f}" for x in rng.uniform(-20, 20, 3))
        lines.extend([f"{tab}{'ROOT' if j == 0 else 'JOINT'} {tree[j][0]}", f"{tab}{{", f"{tab}  OFFSET {offset}",
                      f"{tab}  {_channels(orders[j % len(orders)], j in six or j == 0)}"])
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.extend([f"{tab}  End Site", f"{tab}  {{", f"{tab}    OFFSET 0 {rng.uniform(1, 9):.2f} 0",
                          f"{tab}  }}"])
        lines.append(f"{tab}}}")

    emit(0, 0)
    layout = [(3 if (j in six or j == 0) else 0, 3) for j in range(len(tree))]
    return lines + ["MOTION", f"Frames: {n_frames}", "Frame Time: 0.0333333"] + _frame_lines(rng, n_frames, layout)


def seed_texts() -> list[bytes]:
    """A few small valid BVH files (bytes), the starting points of every mutation."""
    rng = np.random.default_rng(2024)
    texts = ["\n".join(_humanoid(rng, ["ZYX"], set(), 3)) + "\n",  # CMU-like: positions on the root only
             "\r\n".join(_humanoid(rng, _ORDERS, {2, 5}, 4)) + "\r\n",  # every order, 6 channels on two joints
             "\n".join(_humanoid(rng, ["ZXY"], set(range(7)), 2)).replace("  ", "\t") + "\n"]  # 6 everywhere, tabs
    partial = ["HIERARCHY", "ROOT root", "{", " OFFSET 0 0 0", " CHANNELS 4 Xposition Zposition Yrotation Xrotation",
               " JOINT hinge", " {", "  OFFSET 0 1.5 0", "  CHANNELS 1 Zrotation", "  JOINT fixed", "  {",
               "   OFFSET 0 1 0", "   CHANNELS 0", "   End Site", "   {", "    OFFSET 0 1 0", "   }", "  }", " }",
               " JOINT arm", " {", "  OFFSET 2e0 0 -1.5E-1", "  CHANNELS 2 Yposition Xrotation", "  End Site",
               "  {", "   OFFSET 1 0 0", "  }", " }", "}", "MOTION", "Frames: 3", "Frame Time: 0.008333"]
    partial += _frame_lines(rng, 3, [(2, 2), (0, 1), (1, 1)], fmt="%.6e", sep="\t")
    texts.append("\n".join(partial) + "\n")
    return [t.encode() for t in texts]


def deep_chain(depth: int, n_frames: int = 2, order: str = "ZXY") -> bytes:
    """A valid BVH of one chain ``depth`` joints deep (no indentation)."""
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", _channels(order, True)]
    for j in range(1, depth):
        lines += [f"JOINT j{j}", "{", "OFFSET 0 1 0", _channels(order)]
    lines += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * depth
    lines += ["MOTION", f"Frames: {n_frames}", "Frame Time: 0.04"]
    lines += [" ".join(["1.5"] * (3 + 3 * depth))] * n_frames
    return ("\n".join(lines) + "\n").encode()


def wide_tree(n_joints: int, n_frames: int = 2, chain: int = 10) -> bytes:
    """A valid BVH of ``n_joints`` joints: a 6-channel root with chains of ``chain`` 3-channel joints, each chain
    ending in an End Site."""
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", _channels("ZXY", True)]
    j = 1
    while j < n_joints:
        n = min(chain, n_joints - j)
        for i in range(n):
            lines += [f"JOINT j{j + i}", "{", f"OFFSET 0 {i % 3 + 1} 0", _channels("ZXY")]
        lines += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * n
        j += n
    lines += ["}", "MOTION", f"Frames: {n_frames}", "Frame Time: 0.0333333"]
    rng = np.random.default_rng(n_joints)
    lines += [" ".join(f"{v:.4f}" for v in rng.uniform(-90, 90, 3 + 3 * n_joints)) for _ in range(n_frames)]
    return ("\n".join(lines) + "\n").encode()


def scale(n_joints: int) -> dict:
    """Best-of-3 seconds to parse and to write an ``n_joints`` wide tree and chain (see the module docstring)."""
    from motionsynth.io.bvh import format_bvh, parse_bvh

    format_bvh(parse_bvh(seed_texts()[0]))  # warm up (imports)
    out = {}
    for shape, data in (("wide", wide_tree(n_joints)), ("chain", deep_chain(n_joints))):
        times = {"parse": [], "write": []}
        for _ in range(3):
            t0 = time.perf_counter()
            motion = parse_bvh(data)
            t1 = time.perf_counter()
            format_bvh(motion)
            times["parse"].append(t1 - t0)
            times["write"].append(time.perf_counter() - t1)
        out[shape] = {"joints": len(motion.skeleton), "mb": round(len(data) / 1e6, 2),
                      "parse_s": round(min(times["parse"]), 3), "write_s": round(min(times["write"]), 3)}
    return out


# ---- mutations ------------------------------------------------------------------------------------------------------
ODD_NUMBERS = [b"1e400", b"-1e400", b"1e-400", b"nan", b"NaN", b"-inf", b"inf", b"Infinity", b"1e308", b"-1.7e308",
               b"4.9e-324", b"0", b"-0", b"0.0", b"1e9", b"-1000000001", b"1e10", "\u00b3".encode(),
               "\u0663".encode(), "\uff11\uff12".encode(), b"1_000", b"0x1A", b"1e", b"e5", b".", b"-", b"+",
               b"1.2.3", b"1,5", b"9" * 5000, b"0" * 5000 + b"3", b"1" * 40, b"\xb3", b"3\xa0", b"12\x00", b"1e-7",
               b"123456789012345678901234567890", b"-.5", b"+.5e+3", b"1E5", "\u2028".encode()]
ODD_COUNTS = [b"0", b"1", b"2", b"5", b"6", b"7", b"-1", b"+3", b"99", b"100000001", b"4294967296",
              b"18446744073709551617", b"9" * 5000, b"0" * 5000, b"0" * 4999 + b"3", "\u00b3".encode(), b"\xb3",
              "\u0663".encode(), "\uff13".encode(), b"3.0", b"1e3", b"", b"three", b"3\x00"]
ODD_FRAME_TIMES = [b"0", b"-0.01", b"1e-320", b"5e-324", b"1e-7", b"1e-6", b"1000", b"1001", b"1e300", b"inf", b"nan",
                   b"0x1p-3", b"1e-400", "\u0660.\u0660\u0663".encode(), b"0.0333333" * 20, b"1" + b"0" * 5000,
                   b"0." + b"0" * 5000 + b"1", b"\xb3"]
KEYWORDS = [b"HIERARCHY", b"ROOT", b"JOINT", b"End", b"Site", b"{", b"}", b"OFFSET", b"CHANNELS", b"MOTION", b"Frames:",
            b"Frame", b"Time:", b"Xposition", b"Zrotation", b"xROTATION", b"Wrotation", b"3", b"6", b"0"]
NAME_BYTES = [b"\x00", b"\x01", b"\x07", b"\x1b", b"\x7f", b"\xc2\x85", b"\x0b", b"\x0c", b"\xc2\xa0", b"\xe9",
              b"\xff\xfe", b"\xed\xa0\x80", b"\xe2\x80\x8b", b" ", b"  ", b"{", b"}", b"\t", b"\r"]
_TOKEN = re.compile(rb"\S+")
_NUMBER = re.compile(rb"(?<!\S)[-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?(?!\S)")


def _tokens(data: bytes) -> list[tuple[int, int]]:
    return [m.span() for m in _TOKEN.finditer(data)]


def _replace_span(data: bytes, span: tuple[int, int], new: bytes) -> bytes:
    return data[:span[0]] + new + data[span[1]:]


def _pick_span(data: bytes, rng: random.Random, pattern: re.Pattern) -> tuple[int, int] | None:
    spans = [m.span() for m in pattern.finditer(data)]
    return rng.choice(spans) if spans else None


def m_truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def m_flip_bit(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def m_random_bytes(data: bytes, rng: random.Random) -> bytes:
    """Replace or insert 1–8 random bytes (often non-UTF-8) somewhere."""
    i = rng.randrange(len(data) + 1)
    new = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return data[:i] + new + data[i + rng.choice([0, len(new)]):]


def m_token_edit(data: bytes, rng: random.Random) -> bytes:
    """Delete, duplicate or swap tokens, or insert a keyword before one."""
    spans = _tokens(data)
    if not spans:
        return data
    a = rng.choice(spans)
    kind = rng.randrange(4)
    if kind == 0:
        return _replace_span(data, a, b"")
    if kind == 1:
        return _replace_span(data, a, data[a[0]:a[1]] + b" " + data[a[0]:a[1]])
    if kind == 2:
        return _replace_span(data, (a[0], a[0]), rng.choice(KEYWORDS) + b" ")
    b = rng.choice(spans)
    (a, b) = sorted([a, b])
    if a == b or a[1] > b[0]:
        return data
    return data[:a[0]] + data[b[0]:b[1]] + data[a[1]:b[0]] + data[a[0]:a[1]] + data[b[1]:]


def m_line_edit(data: bytes, rng: random.Random) -> bytes:
    """Delete, duplicate, swap or move lines."""
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    kind = rng.randrange(4)
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(i, lines[i])
    elif kind == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(j, lines.pop(i))
    return b"\n".join(lines)


def m_odd_number(data: bytes, rng: random.Random) -> bytes:
    span = _pick_span(data, rng, _NUMBER)
    return data if span is None else _replace_span(data, span, rng.choice(ODD_NUMBERS))


def m_odd_count(data: bytes, rng: random.Random) -> bytes:
    """Replace the count of a CHANNELS line or of Frames: with an odd count."""
    spans = [m.span(1) for m in re.finditer(rb"(?:CHANNELS|Frames:)[ \t]*(\S*)", data)]
    return data if not spans else _replace_span(data, rng.choice(spans), rng.choice(ODD_COUNTS))


def m_odd_frame_time(data: bytes, rng: random.Random) -> bytes:
    m = re.search(rb"Frame Time:[ \t]*(\S*)", data)
    return data if m is None else _replace_span(data, m.span(1), rng.choice(ODD_FRAME_TIMES))


def m_odd_name(data: bytes, rng: random.Random) -> bytes:
    """Put a control character, odd whitespace, a brace or non-UTF-8 bytes into a joint name."""
    spans = [m.span(1) for m in re.finditer(rb"(?:ROOT|JOINT)[ \t]+(\S+)", data)]
    if not spans:
        return data
    a, b = rng.choice(spans)
    i = rng.randint(a, b)
    return data[:i] + rng.choice(NAME_BYTES) + data[i:]


def m_nesting(data: bytes, rng: random.Random) -> bytes:
    """Open many blocks: K nested JOINTs (closed or not), or K bare '{' / '}'."""
    k = rng.choice([2, 10, 100, 1000, 5000])
    spans = _tokens(data)
    at = rng.choice(spans)[0] if spans else 0
    kind = rng.randrange(3)
    if kind == 0:
        block = b"".join(b"JOINT n%d\n{\nOFFSET 0 1 0\n" % i for i in range(k))
        block += b"}\n" * (k if rng.random() < 0.5 else rng.randrange(k))
    else:
        block = (b"{\n" if kind == 1 else b"}\n") * k
    return data[:at] + block + data[at:]


def m_line_ends(data: bytes, rng: random.Random) -> bytes:
    return rng.choice([data.replace(b"\r\n", b"\n").replace(b"\n", b"\r"), data.replace(b"\n", b"\r\n"),
                       b"\xef\xbb\xbf" + data, data.replace(b" ", b"\t"), data.replace(b"\n", b"\n\n")])


MUTATIONS = [m_truncate, m_flip_bit, m_random_bytes, m_token_edit, m_line_edit, m_odd_number, m_odd_count,
             m_odd_frame_time, m_odd_name, m_nesting, m_line_ends]


def mutate(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
    """``data`` after ``n`` (default 1–3) random mutations."""
    for _ in range(rng.randint(1, 3) if n is None else n):
        data = rng.choice(MUTATIONS)(data, rng)
    return data


_SEEDS: list[bytes] | None = None


def make_input(seed: int, i: int) -> bytes:
    """Input ``i`` of the run with ``seed``: a seed text (or, one time in 20, a chain 2–3,000 deep), mutated."""
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = seed_texts()
    rng = random.Random(seed * 1_000_003 + i)
    base = deep_chain(rng.choice([2, 50, 1000, 3000])) if rng.random() < 0.05 else rng.choice(_SEEDS)
    return mutate(base, rng)


# ---- the property ---------------------------------------------------------------------------------------------------
def check_motion(motion) -> None:
    """Raise AssertionError unless ``motion`` (as read) is finite and consistent and round-trips through the writer.

    Round trip: `format_bvh` → `parse_bvh` gives the same joints, channels and fps, and forward-kinematics positions
    within 1e-3 units (relative 1e-6 beyond 1,000 units: the file keeps 6 decimals of each angle in degrees).
    """
    from motionsynth.io.bvh import format_bvh, parse_bvh

    T, J = motion.num_frames, len(motion.skeleton)
    assert T >= 1 and J >= 1
    assert motion.rotations.shape == (T, J, 4) and motion.root_positions.shape == (T, 3)
    assert motion.translations is None or motion.translations.shape == (T, J, 3)
    assert np.isfinite(motion.fps) and motion.fps > 0
    for a in (motion.rotations, motion.root_positions, motion.translations, motion.skeleton.offsets):
        assert a is None or np.isfinite(a).all(), "non-finite values"
    assert np.abs(np.linalg.norm(motion.rotations, axis=-1) - 1).max() < 1e-9, "not unit quaternions"
    back = parse_bvh(format_bvh(motion))
    assert back.skeleton.names == motion.skeleton.names
    assert back.skeleton.channels == motion.skeleton.channels
    assert back.fps == motion.fps, (back.fps, motion.fps)
    a, b = motion.global_positions(), back.global_positions()
    assert np.isfinite(a).all() and np.isfinite(b).all(), "non-finite joint positions"
    scale = np.abs(motion.local_translations()).max(0).sum()  # bounds every joint's distance from the origin
    err = np.abs(a - b).max()
    assert err <= 1e-3 * max(1.0, scale / 1e3), f"round trip: FK positions differ by {err} (scale {scale})"


def outcome(data: bytes, times: dict | None = None) -> str:
    """'ok' or 'format_error'; any other exception (or a failed `check_motion`) propagates. ``times["parse"]``
    gets the seconds `parse_bvh` took (without the check)."""
    from motionsynth.errors import FormatError
    from motionsynth.io.bvh import parse_bvh

    t0 = time.perf_counter()
    try:
        motion = parse_bvh(data, "fuzz.bvh")
    except FormatError:
        return "format_error"
    finally:
        if times is not None:
            times["parse"] = time.perf_counter() - t0
    check_motion(motion)
    return "ok"


# ---- the long run ---------------------------------------------------------------------------------------------------
class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run(n: int, seed: int, timeout: float, save: Path | None, start: int = 0) -> dict:
    """Fuzz inputs ``start .. start + n - 1``; returns the summary (see the module docstring)."""

    outcome(seed_texts()[0])  # warm up (imports: roma on the first write) before timing
    counts: Counter = Counter()
    others: Counter = Counter()
    samples: dict[str, list[int]] = {}
    slowest = (0.0, -1, 0)  # (seconds of parse + check, input, bytes)
    slowest_parse = (0.0, -1, 0)  # (seconds of parse_bvh alone, input, bytes)
    max_bytes = 0
    signal.signal(signal.SIGALRM, _alarm)
    t_start = last = time.perf_counter()
    for i in range(start, start + n):
        data = make_input(seed, i)
        max_bytes = max(max_bytes, len(data))
        t0 = time.perf_counter()
        times = {"parse": 0.0}
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            kind = outcome(data, times)
        except Hang:
            kind, key = "hang", "hang"
        except Exception as e:  # counting every escape is the point
            kind, key = "other", f"{type(e).__name__}: {str(e)[:80]}" if isinstance(e, AssertionError) \
                else type(e).__name__
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - t0
        slowest = max(slowest, (dt, i, len(data)))
        slowest_parse = max(slowest_parse, (times["parse"], i, len(data)))
        counts[kind] += 1
        if kind in ("other", "hang"):
            others[key] += 1
            samples.setdefault(key, [])
            if len(samples[key]) < 5:
                samples[key].append(i)
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"{re.sub(r'[^A-Za-z0-9]+', '_', key)[:40]}_{i}.bvh").write_bytes(data)
        now = time.perf_counter()
        if now - last >= 10:
            last = now
            done = i - start + 1
            print(f"[{done}/{n}] {done / (now - t_start):.0f}/s {dict(counts)} slowest {slowest[0]:.2f}s "
                  f"(parse {slowest_parse[0]:.2f}s)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    return {"n": n, "seed": seed, "start": start, "timeout_s": timeout, "wall_s": round(wall, 1),
            "rate_per_s": round(n / wall, 1), "counts": dict(counts), "other_types": dict(others),
            "samples": samples, "slowest_s": round(slowest[0], 3), "slowest_input": slowest[1],
            "slowest_bytes": slowest[2], "slowest_parse_s": round(slowest_parse[0], 3),
            "slowest_parse_input": slowest_parse[1], "slowest_parse_bytes": slowest_parse[2],
            "largest_input_bytes": max_bytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="number of inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first input index")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument("--save", type=Path, default=None, help="folder for the inputs of 'other' and 'hang' outcomes")
    ap.add_argument("--show", type=int, default=None, help="print input SHOW and its outcome, then exit")
    ap.add_argument("--scale", type=int, default=None, help="time parse / write of SCALE-joint files, then exit")
    args = ap.parse_args()
    if args.scale is not None:
        print(json.dumps(scale(args.scale), indent=1))
        return
    if args.show is not None:
        data = make_input(args.seed, args.show)
        print(repr(data[:2000]), f"({len(data)} bytes)")
        print(outcome(data))
        return
    summary = run(args.n, args.seed, args.timeout, args.save, args.start)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    sys.exit(0 if not summary["counts"].get("other") and not summary["counts"].get("hang") else 1)


if __name__ == "__main__":
    main()
