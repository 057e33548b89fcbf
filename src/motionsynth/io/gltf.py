"""glTF 2.0: a motion as a binary glTF (``.glb``) skinned character, and such a file read back as a `Motion`.

Writing (`write_glb`, `glb_bytes`) — what any glTF viewer (three.js, Blender, Babylon, the Khronos sample viewer)
plays as an animated stick character:

- **Joints** are nodes 0 … J−1 in the skeleton's (topological) order, parented as ``skeleton.parents``; each node's
  ``translation`` is the joint's rest offset, its rotation the identity (the project's rest pose). A BVH ``End Site``
  becomes a child node ``NAME_end`` (not a joint) so that it reads back.
- **Mesh**: one octahedral "bone" per parent → child segment of the rest pose (and per end site), each vertex
  rigidly weighted (``WEIGHTS_0 = (1, 0, 0, 0)``) to the parent joint, so the mesh follows the skeleton; a small
  octahedron at joint 0 when the skeleton has no bone of non-zero length. ``inverseBindMatrices`` are the inverses
  of the rest pose's global joint transforms (translations, as the rest rotations are identities). A few KB.
- **Animation** ``motion.name``: per joint a ``rotation`` channel (the local quaternions, (x, y, z, w) as the
  project's, made sign-continuous over time so that slerp between frames takes the short way); a ``translation``
  channel on the moving root (``root_positions``) and, when the motion has per-joint ``translations``, on every
  joint. LINEAR interpolation; key times ``frame / fps`` seconds (float32, one shared input accessor).
- **Units**: glTF is in metres with +Y up, the project is +Y up and in the motion's file units — centimetres for
  every dataset here (BVH datasets; AMASS is converted to cm) — so lengths are divided by 100 by default
  (``units=`` of `write_glb` says what the motion's lengths are: ``"cm"``, ``"mm"`` or ``"m"``).
- ``animations[0].extras.motionsynth`` keeps what glTF has no place for: ``fps`` (exact), ``name``, ``labels``,
  the moving root's joint name and the motion's units, so that the project's own files read back as written.
- Written atomically (`atomic.atomic_open`). Refused with `MotionsynthError`: more than 100,000,000 joint-frames,
  a file over glTF's 4 GiB, frame times that float32 cannot keep apart (a frame rate far beyond any capture).

Reading (`read_glb`, `parse_glb`) takes ``.glb`` or JSON ``.gltf`` (buffers embedded, in the ``.glb``'s binary
chunk, as ``data:`` URIs, or files beside a ``.gltf``) with a skin and, usually, an animation — what `write_glb`
writes and the common layout of other exporters:

- The **skeleton** is the skin's joints (``skins[0]``, or the skin whose joints the animation moves most), in the
  skin's order when every joint comes after its parent (as `write_glb` writes them), else in depth-first order of
  the node tree (so always topological: ``parents[j] < j``); a joint's parent is its nearest ancestor node that is
  a joint. Several top joints get their lowest common ancestor node as an extra, static joint 0.
  Nodes between joints, and the nodes above the top joint (an exporter's "Armature" with its rotation and scale), are
  static: their rest transforms are folded into the offsets and local rotations below them. Node scales must be
  uniform (they become part of the lengths); a joint's rest rotation (common outside this project) is kept in its
  local rotations, so world positions and rotations are those of the file.
- **Animation** (``animations[0]`` unless ``animation=`` names one by index or name): the ``rotation`` and
  ``translation`` channels of joint nodes; LINEAR (slerp for rotations), STEP and CUBICSPLINE samplers are
  resampled onto one frame grid from the first to the last key time at the file's frame rate — ``extras`` ``fps``
  when the file is ours, else estimated from the key times (the densest channel; snapped to a whole number when
  within 0.1 %). Channels on other nodes, ``scale`` and ``weights`` channels are ignored. No animation: one frame
  of the rest pose at 30 fps.
- ``skeleton.root`` (the moving root) is the ``extras`` root when the file is ours, else the first joint whose
  translation changes over time, else the first with a translation channel, else joint 0; ``translations`` are
  kept when another joint's animated translation differs from its rest offset.
- Lengths are converted from metres to ``units`` (default ``"cm"``, the project's).

Every problem with the file raises `FormatError(message, path)` naming what is wrong: not glTF (magic), a version
other than 2, truncated chunks, JSON that is not glTF (with the JSON path of the bad value), no skin, indices and
accessors out of range (an accessor's elements must fit in its buffer view, the view in its buffer, so no count in the
file can make the reader allocate more than the file holds), non-finite numbers, non-uniform or negative scales,
cycles in the node tree. The frame count (time span × fps) × joints is checked against `limits.max_joint_frames()`
(or ``max_joint_frames=``) before any frame is built (`limits.LimitError`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import struct
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from .. import rotations as R
from ..errors import FormatError, MotionsynthError
from ..motion import Motion
from ..skeleton import POSITION_CHANNELS, Skeleton
from .atomic import atomic_open

__all__ = ["write_glb", "glb_bytes", "read_glb", "parse_glb", "UNITS"]

UNITS = {"m": 1.0, "cm": 100.0, "mm": 1000.0}
"""Length units a motion may be in → how many of them make a metre (glTF's unit)."""

_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_COMPONENTS: dict[int, np.dtype] = {5120: np.dtype("<i1"), 5121: np.dtype("<u1"), 5122: np.dtype("<i2"), 5123: np.dtype("<u2"),
               5125: np.dtype("<u4"), 5126: np.dtype("<f4")}
_NORMALIZED_DIVISOR = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_WRITE_MAX_JOINT_FRAMES = 100_000_000  # as the BVH writer
_MAX_GLB_BYTES = 2**32 - 1
_EXTRAS_KEY = "motionsynth"
_DEFAULT_FPS = 30.0  # a file without animation: one frame at this rate
_STATIC = 1e-5  # metres: a translation moving less than this is static (float32 keeps ~1e-7 m at 10 m)
_SCALE_TOLERANCE = 1e-3  # relative spread of a node's three scale factors still taken as uniform
_FPS_SNAP = 1e-3  # relative distance to a whole frame rate that snaps to it
_BONE_RING, _BONE_RADIUS, _EPS_LENGTH = 0.2, 0.1, 1e-6  # the octahedral bone: ring position and radius × length
_LONE_JOINT_SIZE = 0.05  # metres: the octahedron of a skeleton without bones

# A similarity transform x ↦ t + s · rotate(q, x): (t (…, 3), q (…, 4), s scalar); composes and stays one.
_Similarity = tuple[np.ndarray, np.ndarray, float]
_IDENTITY: _Similarity = (np.zeros(3), R.quat_identity(), 1.0)


def _compose(a: _Similarity, b: _Similarity) -> _Similarity:
    """a ∘ b (apply b first)."""
    ta, qa, sa = a
    tb, qb, sb = b
    return ta + sa * _rotate(qa, tb), _multiply(qa, qb), sa * sb


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (x, y, z, w) quaternions (…, 4), broadcast (numpy: no torch round trip per joint)."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], -1)


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectors (…, 3) rotated by unit quaternions (…, 4), broadcast."""
    u, w = q[..., :3], q[..., 3:]
    c = 2 * np.cross(u, v)
    return v + w * c + np.cross(u, c)


def _units_per_metre(units: str) -> float:
    if units not in UNITS:
        raise MotionsynthError(f"unknown length unit {units!r}; units are {', '.join(UNITS)}")
    return UNITS[units]


# =================================================================================================================
# writing
# =================================================================================================================
def write_glb(motion: Motion, path: str | os.PathLike, *, units: str = "cm") -> None:
    """Write ``motion`` as a binary glTF 2.0 skinned, animated character (see the module docstring), atomically.

    Args:
        motion: any motion; its lengths are in ``units`` (the project's motions: cm).
        path: the ``.glb`` to write (no half-written file on failure).
        units: ``"cm"``, ``"mm"`` or ``"m"`` — the motion's length unit; the file is in metres.
    """
    data = glb_bytes(motion, units=units)
    with atomic_open(path, "wb") as f:
        f.write(data)


def glb_bytes(motion: Motion, *, units: str = "cm") -> bytes:
    """The ``.glb`` bytes of ``motion`` (see `write_glb`)."""
    scale = 1.0 / _units_per_metre(units)
    skel = motion.skeleton
    J, T = len(skel), motion.num_frames
    if T < 1:
        raise MotionsynthError("cannot write glTF: the motion has no frames")
    if T * J > _WRITE_MAX_JOINT_FRAMES:
        raise MotionsynthError(f"cannot write glTF: {T:,} frames x {J} joints is more than "
                               f"{_WRITE_MAX_JOINT_FRAMES:,} joint-frames")
    times = (np.arange(T, dtype=np.float64) / motion.fps).astype(np.float32)
    if T > 1 and not np.all(np.diff(times) > 0):
        raise MotionsynthError(f"cannot write glTF: at {motion.fps:g} fps, {T:,} frames have key times that float32 "
                               f"seconds cannot tell apart (glTF's key times are float32)")
    offsets = skel.offsets * scale
    rest = np.zeros((J, 3))  # the rest pose's global positions (identity rotations)
    for j in range(1, J):
        rest[j] = rest[skel.parents[j]] + offsets[j]

    out = _BinaryBuilder()
    nodes: list[dict[str, Any]] = []
    for j, name in enumerate(skel.names):
        node: dict[str, Any] = {"name": name}
        if offsets[j].any():
            node["translation"] = [float(x) for x in offsets[j]]
        children = [int(c) for c in skel.children[j]]
        if children:
            node["children"] = children
        nodes.append(node)
    taken = set(skel.names)
    for j, site in sorted(skel.end_sites.items()):
        name = f"{skel.names[j]}_end"
        while name in taken:
            name += "_"
        taken.add(name)
        nodes[j].setdefault("children", []).append(len(nodes))
        nodes.append({"name": name, "translation": [float(x) for x in site * scale]})
    mesh_node = len(nodes)
    nodes.append({"name": f"{motion.name or 'motion'}_mesh", "mesh": 0, "skin": 0})

    # the mesh and its skin
    positions, vertex_joints, indices = _bone_mesh(skel, rest, {j: s * scale for j, s in skel.end_sites.items()})
    joints4 = np.zeros((len(positions), 4), dtype=np.uint8 if J <= 256 else np.uint16)
    joints4[:, 0] = vertex_joints
    weights4 = np.zeros((len(positions), 4), dtype=np.float32)
    weights4[:, 0] = 1.0
    index_type = np.uint16 if len(positions) < 65535 else np.uint32
    attributes = {
        "POSITION": out.accessor(positions.astype(np.float32), "VEC3", target=_ARRAY_BUFFER, bounds=True),
        "JOINTS_0": out.accessor(joints4, "VEC4", target=_ARRAY_BUFFER),
        "WEIGHTS_0": out.accessor(weights4, "VEC4", target=_ARRAY_BUFFER),
    }
    index_accessor = out.accessor(indices.astype(index_type), "SCALAR", target=_ELEMENT_ARRAY_BUFFER)
    ibm = np.tile(np.eye(4, dtype=np.float32).ravel(), (J, 1))
    ibm[:, 12:15] = -rest  # column-major: the translation is elements 12–14
    ibm_accessor = out.accessor(ibm, "MAT4")

    # the animation: one input, per joint a rotation, translations on the root (or every joint)
    input_accessor = out.accessor(times, "SCALAR", bounds=True)
    quats = R.quat_continuous(R.quat_normalize(motion.rotations), dim=0)
    rotation_accessors = out.accessors(np.ascontiguousarray(quats.transpose(1, 0, 2), dtype=np.float32), "VEC4")
    if motion.translations is None:
        moved = [skel.root]
        trans = (motion.root_positions * scale)[None]
    else:
        moved = list(range(J))
        trans = motion.local_translations().transpose(1, 0, 2) * scale
    translation_accessors = out.accessors(np.ascontiguousarray(trans, dtype=np.float32), "VEC3")
    samplers: list[dict[str, Any]] = []
    channels: list[dict[str, Any]] = []
    for path, joints_, accessors in (("rotation", range(J), rotation_accessors),
                                     ("translation", moved, translation_accessors)):
        for j, acc in zip(joints_, accessors):
            channels.append({"sampler": len(samplers), "target": {"node": int(j), "path": path}})
            samplers.append({"input": input_accessor, "output": acc, "interpolation": "LINEAR"})
    extras = {"fps": motion.fps, "name": motion.name, "root": skel.names[skel.root], "units": units,
              "labels": json.loads(json.dumps(motion.labels, default=_json_default))}

    doc = {
        "asset": {"version": "2.0", "generator": "motionsynth"},
        "scene": 0,
        "scenes": [{"nodes": [0, mesh_node]}],
        "nodes": nodes,
        "meshes": [{"name": f"{motion.name or 'motion'}_bones",
                    "primitives": [{"attributes": attributes, "indices": index_accessor, "mode": 4}]}],
        "skins": [{"name": "skeleton", "joints": list(range(J)), "skeleton": 0, "inverseBindMatrices": ibm_accessor}],
        "animations": [{"name": motion.name or "motion", "channels": channels, "samplers": samplers,
                        "extras": {_EXTRAS_KEY: extras}}],
        "accessors": out.accessor_list,
        "bufferViews": out.view_list,
        "buffers": [{"byteLength": out.size}],
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary = out.bytes()
    total = 12 + 8 + len(text) + 8 + len(binary)
    if total > _MAX_GLB_BYTES:
        raise MotionsynthError(f"cannot write glTF: the file would be {total:,} bytes, more than a .glb can hold "
                               f"(4 GiB); cut the motion")
    return b"".join([_MAGIC, struct.pack("<II", 2, total), struct.pack("<II", len(text), _CHUNK_JSON), text,
                     struct.pack("<II", len(binary), _CHUNK_BIN), binary])


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


class _BinaryBuilder:
    """The binary chunk of a .glb, its buffer views and accessors, built up in order (each view 4-byte aligned)."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0
        self.view_list: list[dict[str, Any]] = []
        self.accessor_list: list[dict[str, Any]] = []

    def view(self, data: np.ndarray, target: int | None = None) -> int:
        raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.size, "byteLength": len(raw)}
        if target is not None:
            view["target"] = target
        self.parts.append(raw + b"\0" * (-len(raw) % 4))
        self.size += len(self.parts[-1])
        self.view_list.append(view)
        return len(self.view_list) - 1

    def accessor(self, data: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """One accessor over ``data`` (count, n) (or (count,) for SCALAR) in a view of its own."""
        return self._accessor(self.view(data, target), 0, data.reshape(len(data), -1), kind, bounds)

    def accessors(self, data: np.ndarray, kind: str) -> list[int]:
        """One accessor per ``data[i]`` (K, count, n), all in one view."""
        view = self.view(data)
        return [self._accessor(view, i * data[0].nbytes, data[i], kind, False) for i in range(len(data))]

    def _accessor(self, view: int, offset: int, data: np.ndarray, kind: str, bounds: bool) -> int:
        component = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint8): _UBYTE, np.dtype(np.uint16): _USHORT,
                     np.dtype(np.uint32): _UINT}[data.dtype]
        acc: dict[str, Any] = {"bufferView": view, "componentType": component, "count": len(data), "type": kind}
        if offset:
            acc["byteOffset"] = offset
        if bounds:
            flat = data.reshape(len(data), -1)
            acc["min"] = [float(x) for x in flat.min(0)]
            acc["max"] = [float(x) for x in flat.max(0)]
        self.accessor_list.append(acc)
        return len(self.accessor_list) - 1

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _bone_mesh(skel: Skeleton, rest: np.ndarray, end_sites: dict[int, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Octahedral bones of the rest pose → (positions (V, 3) metres, joint of each vertex (V,), triangle indices
    (3F,)). A bone from a to b: its tip at a, a square ring of radius 0.1·|b−a| at 0.2 of the way, its end at b;
    triangles wound counter-clockwise seen from outside (glTF's front faces)."""
    segments = [(rest[p], rest[j], int(p)) for j, p in enumerate(skel.parents) if p >= 0]
    segments += [(rest[j], rest[j] + site, j) for j, site in end_sites.items()]
    segments = [(a, b, j) for a, b, j in segments if np.linalg.norm(b - a) > _EPS_LENGTH]
    if not segments:
        half = np.array([0.0, _LONE_JOINT_SIZE / 2, 0.0])
        segments = [(rest[0] - half, rest[0] + half, 0)]
    positions, owners, faces = [], [], []
    for k, (a, b, j) in enumerate(segments):
        d = b - a
        length = float(np.linalg.norm(d))
        u = d / length
        helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
        v = np.cross(u, helper)
        v /= np.linalg.norm(v)
        w = np.cross(u, v)  # v × w = u: a right-handed frame
        centre, r = a + _BONE_RING * d, _BONE_RADIUS * length
        positions.append(np.stack([a, centre + r * v, centre + r * w, centre - r * v, centre - r * w, b]))
        owners.append(np.full(6, j))
        base = 6 * k
        for i in range(4):
            r0, r1 = base + 1 + i, base + 1 + (i + 1) % 4
            faces += [(base, r1, r0), (base + 5, r0, r1)]
    return np.concatenate(positions), np.concatenate(owners), np.asarray(faces, dtype=np.int64).ravel()


# =================================================================================================================
# reading
# =================================================================================================================
def read_glb(path: str | os.PathLike, *, units: str = "cm", animation: int | str | None = None,
             max_joint_frames: int | None = None) -> Motion:
    """Read a ``.glb`` (or JSON ``.gltf``) with a skin and an animation as a `Motion` (see the module docstring).

    Args:
        path: the file; a ``.gltf``'s external buffers are read from beside it.
        units: the motion's length unit (``"cm"``, the project's, by default; the file is in metres).
        animation: which animation, by index or name (default: the first).
        max_joint_frames: the limit on frames × joints (default `limits.max_joint_frames()`).
    Returns:
        The motion: ``name`` from the file's extras (ours) or the file stem; rotations (T, J, 4); lengths in
        ``units``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FormatError(f"cannot read: {e.strerror or e}", str(path)) from None
    return parse_glb(data, path=str(path), units=units, animation=animation, max_joint_frames=max_joint_frames,
                     base_dir=path.parent)


def parse_glb(data: bytes, path: str = "<glb>", *, units: str = "cm", animation: int | str | None = None,
              max_joint_frames: int | None = None, base_dir: str | os.PathLike | None = None) -> Motion:
    """`read_glb` from the bytes of a file (``path`` names it in messages; its stem becomes the motion's name).
    ``base_dir``: where a ``.gltf``'s external buffers lie (None: external buffers are refused)."""
    scale = _units_per_metre(units)
    doc, binary = _container(data, path)
    reader = _Reader(doc, binary, path, None if base_dir is None else Path(base_dir))
    return reader.motion(scale, animation, max_joint_frames, Path(path).stem)


def _container(data: bytes, where: str) -> tuple[dict, bytes | None]:
    """(the glTF JSON, the binary chunk or None) of a .glb, or of a JSON .gltf."""
    if data[:4] == _MAGIC:
        if len(data) < 12:
            raise FormatError(f"truncated: {len(data)} bytes, less than the 12-byte .glb header", where)
        version, length = struct.unpack_from("<II", data, 4)
        if version != 2:
            raise FormatError(f"glTF version {version}; only glTF 2.0 can be read", where)
        if length != len(data):
            raise FormatError(f"truncated: the header says {length:,} bytes, the file has {len(data):,}"
                              if length > len(data) else
                              f"{len(data) - length:,} bytes after the {length:,} the header declares", where)
        chunks, at = [], 12
        while at < length:
            if at + 8 > length:
                raise FormatError(f"truncated: a chunk header at byte {at:,} runs past the end", where)
            size, kind = struct.unpack_from("<II", data, at)
            if at + 8 + size > length:
                raise FormatError(f"truncated: a chunk of {size:,} bytes at byte {at:,} runs past the end of the "
                                  f"file ({length:,} bytes)", where)
            chunks.append((kind, data[at + 8:at + 8 + size]))
            at += 8 + size + (-size % 4 if at + 8 + size + (-size % 4) <= length else 0)
        if not chunks or chunks[0][0] != _CHUNK_JSON:
            raise FormatError("the first chunk of a .glb must be its JSON", where)
        binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == _CHUNK_BIN else None
        text = chunks[0][1]
    elif data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        text, binary = data, None
    else:
        raise FormatError("not a glTF file: it starts neither with the .glb magic 'glTF' nor with a JSON object",
                          where)
    try:
        doc = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"the glTF JSON cannot be parsed: {str(e)[:200]}", where) from None
    if not isinstance(doc, dict):
        raise FormatError("the glTF JSON is not an object", where)
    version = doc.get("asset", {}).get("version") if isinstance(doc.get("asset"), dict) else None
    if not isinstance(version, str) or not version.startswith("2."):
        raise FormatError(f"asset.version is {version!r}; only glTF 2.0 can be read", where)
    return doc, binary


class _Reader:
    """Checked access to a parsed glTF document: every value read is checked and refused with its JSON path."""

    def __init__(self, doc: dict, binary: bytes | None, where: str, base_dir: Path | None):
        self.doc, self.binary, self.where, self.base_dir = doc, binary, where, base_dir
        self.buffers: dict[int, bytes] = {}

    def fail(self, message: str) -> FormatError:
        return FormatError(message, self.where)

    # -- the JSON
    def items(self, key: str) -> list:
        value = self.doc.get(key, [])
        if not isinstance(value, list):
            raise self.fail(f"{key} is not a list")
        return value

    def item(self, key: str, index: Any, what: str) -> dict:
        items = self.items(key)
        if not _is_int(index) or not 0 <= index < len(items):
            raise self.fail(f"{what}: {key} index {index!r} out of range (the file has {len(items)})")
        value = items[index]
        if not isinstance(value, dict):
            raise self.fail(f"{key}[{index}] is not an object")
        return value

    def integer(self, obj: dict, key: str, what: str, default: int | None = None, minimum: int = 0) -> int:
        value: Any = obj.get(key, default)
        if not _is_int(value) or value < minimum:
            raise self.fail(f"{what}.{key}: {value!r} is not an integer >= {minimum}")
        return int(value)

    def numbers(self, obj: dict, key: str, n: int, what: str, default: list[float]) -> np.ndarray:
        value = obj.get(key, default)
        if not (isinstance(value, list) and len(value) == n and all(_is_number(x) for x in value)):
            raise self.fail(f"{what}.{key}: expected {n} numbers, got {str(value)[:80]}")
        out = np.asarray(value, dtype=np.float64)
        if not np.isfinite(out).all():
            raise self.fail(f"{what}.{key}: {value} is not finite")
        return out

    # -- binary data
    def buffer(self, index: int, what: str) -> bytes:
        if index in self.buffers:
            return self.buffers[index]
        buf = self.item("buffers", index, what)
        where = f"buffers[{index}]"
        length = self.integer(buf, "byteLength", where, minimum=1)
        uri = buf.get("uri")
        if uri is None:
            if index != 0 or self.binary is None:
                raise self.fail(f"{where} has no uri and the file no binary chunk for it")
            data = self.binary
        elif not isinstance(uri, str):
            raise self.fail(f"{where}.uri is not text")
        elif uri.startswith("data:"):
            head, _, payload = uri.partition(",")
            if not head.endswith(";base64"):
                raise self.fail(f"{where}: only base64 data: URIs can be read")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(f"{where}: its data: URI is not valid base64") from None
        else:
            data = self._external(uri, where)
        if len(data) < length:
            raise self.fail(f"truncated: {where} declares {length:,} bytes, the file holds {len(data):,}")
        self.buffers[index] = data
        return data

    def _external(self, uri: str, where: str) -> bytes:
        parts = urllib.parse.urlsplit(uri)
        name = urllib.parse.unquote(parts.path)
        if parts.scheme or parts.netloc or name.startswith(("/", "\\")) or not name:
            raise self.fail(f"{where}: the buffer {uri[:80]!r} is not a file beside the glTF")
        if self.base_dir is None:
            raise self.fail(f"{where}: the buffer {uri[:80]!r} is an external file; only a .glb or a .gltf with "
                            f"embedded buffers can be read here")
        try:
            return (self.base_dir / name).read_bytes()
        except OSError as e:
            raise self.fail(f"{where}: its file {name!r} cannot be read: {e.strerror or e}") from None

    def accessor(self, index: Any, what: str, kinds: tuple[str, ...]) -> np.ndarray:
        """Accessor ``index`` as float64 (count, n) (normalized integers → floats), checked to lie in its view."""
        acc = self.item("accessors", index, what)
        where = f"accessors[{index}]"
        kind = acc.get("type")
        if kind not in kinds:
            raise self.fail(f"{where} ({what}): type {kind!r}, expected {' or '.join(kinds)}")
        component = acc.get("componentType")
        if component not in _COMPONENTS:
            raise self.fail(f"{where}.componentType: {component!r} is not a glTF component type")
        count = self.integer(acc, "count", where, minimum=1)
        if "sparse" in acc:
            raise self.fail(f"{where} ({what}) is sparse; sparse accessors are not supported")
        n, dtype = _TYPE_SIZES[kind], _COMPONENTS[component]
        element = n * dtype.itemsize
        if "bufferView" not in acc:  # all zeros, by the spec: sized from the count alone, so checked first
            limits.check_joint_frames(count, n, f"{self.where}: {where} ({count:,} elements)")
            values = np.zeros((count, n))
        else:
            view_index = acc["bufferView"]
            view = self.item("bufferViews", view_index, where)
            vwhere = f"bufferViews[{view_index}]"
            buf = self.buffer(self.integer(view, "buffer", vwhere), vwhere)
            view_offset = self.integer(view, "byteOffset", vwhere, default=0)
            view_length = self.integer(view, "byteLength", vwhere, minimum=1)
            if view_offset + view_length > len(buf):
                raise self.fail(f"{vwhere}: bytes {view_offset:,}–{view_offset + view_length:,} lie outside its "
                                f"buffer ({len(buf):,} bytes)")
            stride = self.integer(view, "byteStride", vwhere, default=element, minimum=1)
            offset = self.integer(acc, "byteOffset", where, default=0)
            if offset % dtype.itemsize or stride % dtype.itemsize or (view_offset + offset) % dtype.itemsize:
                raise self.fail(f"{where}: its data is not aligned to its {dtype.itemsize}-byte components")
            need = offset + stride * (count - 1) + element
            if stride < element or need > view_length:
                raise self.fail(f"{where} ({what}): {count:,} elements of {element} bytes (stride {stride}) from "
                                f"byte {offset:,} need {need:,} bytes; its buffer view holds {view_length:,} — "
                                f"accessor out of range")
            raw = np.ndarray((count, n), dtype=dtype, buffer=buf, offset=view_offset + offset,
                             strides=(stride, dtype.itemsize))
            values = raw.astype(np.float64)
            if acc.get("normalized") and component in _NORMALIZED_DIVISOR:
                values = np.maximum(values / _NORMALIZED_DIVISOR[component], -1.0)
        if not np.isfinite(values).all():
            raise self.fail(f"{where} ({what}) holds NaN or infinite values")
        return values

    # -- the node tree
    def node_tree(self) -> tuple[list[dict], np.ndarray]:
        """(nodes, parent node of each node or -1), refusing bad child indices, shared children and cycles."""
        nodes = self.items("nodes")
        parent = np.full(len(nodes), -1, dtype=np.int64)
        for i, node in enumerate(nodes):
            if not isinstance(node, dict):
                raise self.fail(f"nodes[{i}] is not an object")
            children = node.get("children", [])
            if not isinstance(children, list):
                raise self.fail(f"nodes[{i}].children is not a list")
            for c in children:
                if not _is_int(c) or not 0 <= c < len(nodes):
                    raise self.fail(f"nodes[{i}].children: node index {c!r} out of range (the file has "
                                    f"{len(nodes)})")
                if parent[c] >= 0 or c == i:
                    raise self.fail(f"nodes[{c}] has two parents (nodes {parent[c]} and {i}); a node tree is needed")
                parent[c] = i
        state = np.zeros(len(nodes), dtype=np.int8)  # 0 unseen, 1 on the current path, 2 reaches a root
        for i in range(len(nodes)):
            path, k = [], i
            while k >= 0 and state[k] == 0:
                state[k] = 1
                path.append(k)
                k = int(parent[k])
            if k >= 0 and state[k] == 1:
                raise self.fail(f"the node tree has a cycle through nodes[{k}]")
            state[path] = 2
        return nodes, parent

    def trs(self, node: dict, index: int) -> _Similarity:
        """A node's rest transform (TRS or matrix) as a similarity; non-uniform or non-positive scales refused."""
        where = f"nodes[{index}]"
        if "matrix" in node:
            m = self.numbers(node, "matrix", 16, where, []).reshape(4, 4, order="F")
            if not np.allclose(m[3], [0, 0, 0, 1]):
                raise self.fail(f"{where}.matrix is not an affine transform")
            scales = np.linalg.norm(m[:3, :3], axis=0)
            if np.linalg.det(m[:3, :3]) <= 0:
                raise self.fail(f"{where}.matrix mirrors or collapses space (negative or zero scale); not supported")
            self._uniform(scales, where + ".matrix")
            return m[:3, 3].copy(), R.matrix_to_quat(m[:3, :3] / scales), float(scales.mean())
        t = self.numbers(node, "translation", 3, where, [0.0, 0.0, 0.0])
        q = self.numbers(node, "rotation", 4, where, [0.0, 0.0, 0.0, 1.0])
        norm = float(np.linalg.norm(q))
        if norm < 1e-6:
            raise self.fail(f"{where}.rotation {q.tolist()} is not a rotation (zero norm)")
        s = self.numbers(node, "scale", 3, where, [1.0, 1.0, 1.0])
        if (s <= 0).any():
            raise self.fail(f"{where}.scale {s.tolist()}: zero or negative scales are not supported")
        self._uniform(s, where + ".scale")
        return t, q / norm, float(s.mean())

    def _uniform(self, s: np.ndarray, where: str) -> None:
        if s.max() - s.min() > _SCALE_TOLERANCE * s.max():
            raise self.fail(f"{where}: non-uniform scale {[round(float(x), 6) for x in s]} is not supported (a "
                            f"skeleton's lengths cannot stretch one way only)")

    # -- the motion
    def motion(self, scale: float, which: int | str | None, max_joint_frames: int | None, stem: str) -> Motion:
        nodes, node_parent = self.node_tree()
        anim, anim_index = self._animation(which)
        skin = self._skin(anim)
        joint_nodes = self._joint_nodes(skin, nodes, node_parent)
        joint_nodes, parents = self._order(joint_nodes, nodes, node_parent)
        J = len(joint_nodes)
        index_of = {n: j for j, n in enumerate(joint_nodes)}
        rest: dict[int, _Similarity] = {}  # read only for the nodes on the joints' paths (others may be anything)
        for n in joint_nodes:
            for k in [n, *self._ancestors(n, node_parent)]:
                if k not in rest:
                    rest[k] = self.trs(nodes[k], k)

        def world_scale(n: int) -> float:
            return float(np.prod([rest[k][2] for k in [n, *self._ancestors(n, node_parent)]]))
        # per joint: the static transform from its joint parent's frame to its own node's parent frame
        prefix: list[_Similarity] = []
        parent_scale = np.ones(J)
        for j, n in enumerate(joint_nodes):
            between = []
            k = int(node_parent[n])
            while k >= 0 and k not in index_of:
                between.append(k)
                k = int(node_parent[k])
            m = _IDENTITY
            for b in reversed(between):
                m = _compose(m, rest[b])
            prefix.append(m)
            parent_scale[j] = world_scale(k) if k >= 0 else 1.0

        names = _joint_names([nodes[n].get("name") for n in joint_nodes])
        extras = self._extras(anim)
        tracks = self._tracks(anim, anim_index, index_of) if anim is not None else {}
        fps, frames, start = self._grid(tracks, extras, J, max_joint_frames, anim_index)
        grid = start + np.arange(frames) / fps

        rotations = np.empty((frames, J, 4))
        translations = np.empty((frames, J, 3))
        offsets = np.empty((J, 3))
        for j, n in enumerate(joint_nodes):
            t_m, q_m, s_m = prefix[j]
            t_rest, q_rest, _ = rest[n]
            q_local = self._sample(tracks.get((j, "rotation")), grid, q_rest, rotation=True)
            t_local = self._sample(tracks.get((j, "translation")), grid, t_rest, rotation=False)
            q = _multiply(q_m, q_local)
            rotations[:, j] = q / np.linalg.norm(q, axis=-1, keepdims=True)
            translations[:, j] = parent_scale[j] * (t_m + s_m * _rotate(q_m, t_local))
            offsets[j] = parent_scale[j] * (t_m + s_m * _rotate(q_m, t_rest))
        translations *= scale
        offsets *= scale
        end_sites = self._end_sites(joint_nodes, index_of, nodes, world_scale, scale)

        animated = {j for (j, path) in tracks if path == "translation"}
        tolerance = _STATIC * scale
        root = next((j for j in range(J) if np.ptp(translations[:, j], axis=0).max() > tolerance), None)
        if isinstance(extras.get("root"), str) and extras["root"] in names:
            root = names.index(extras["root"])
        if root is None:
            root = min(animated) if animated else 0
        keep = any(j != root and np.abs(translations[:, j] - offsets[j]).max() > tolerance for j in animated)
        layout: dict[str, Any] = {}
        if keep:  # as a BVH with position channels everywhere
            layout["channels"] = [POSITION_CHANNELS + ("Zrotation", "Yrotation", "Xrotation")] * J
        skeleton = Skeleton(names, np.asarray(parents), offsets, end_sites=end_sites, root=root, **layout)
        name: str = extras["name"] if isinstance(extras.get("name"), str) and extras["name"] else stem
        labels: dict = extras["labels"] if isinstance(extras.get("labels"), dict) else {}
        try:
            return Motion(skeleton, rotations, translations[:, root].copy(), fps,
                          translations=translations if keep else None, labels=dict(labels), name=name)
        except ValueError as e:  # InvalidMotionError: values no motion may hold
            raise self.fail(str(e)) from None

    def _animation(self, which: int | str | None) -> tuple[dict | None, int]:
        animations = self.items("animations")
        if which is None:
            if not animations:
                return None, -1
            which = 0
        if isinstance(which, str) and not _is_int(which):
            named = [i for i, a in enumerate(animations) if isinstance(a, dict) and a.get("name") == which]
            if not named:
                known = [a.get("name") for a in animations if isinstance(a, dict)]
                raise self.fail(f"no animation named {which!r}; animations are {known}")
            which = named[0]
        return self.item("animations", which, "animation"), int(which)

    def _skin(self, anim: dict | None) -> dict:
        skins = self.items("skins")
        if not skins:
            raise self.fail("no skin: the file has no skinned joints (skins is empty); only a rigged character's "
                            "skeleton can be read as a motion")
        moved = set()
        if anim is not None:
            for ch in anim.get("channels", []) if isinstance(anim.get("channels", []), list) else []:
                target = ch.get("target") if isinstance(ch, dict) else None
                if isinstance(target, dict) and _is_int(target.get("node")):
                    moved.add(target["node"])
        best, best_moved = 0, -1
        for i in range(len(skins)):
            skin = self.item("skins", i, "skin")
            joints = skin.get("joints")
            count = len(moved.intersection(j for j in joints if _is_int(j))) if isinstance(joints, list) else -1
            if count > best_moved:
                best, best_moved = i, count
        return self.item("skins", best, "skin") | {"_index": best}

    def _joint_nodes(self, skin: dict, nodes: list, node_parent: np.ndarray) -> list[int]:
        where = f"skins[{skin['_index']}].joints"
        joints = skin.get("joints")
        if not isinstance(joints, list) or not joints:
            raise self.fail(f"{where}: no joints (a skin needs at least one)")
        for j in joints:
            if not _is_int(j) or not 0 <= j < len(nodes):
                raise self.fail(f"{where}: node index {j!r} out of range (the file has {len(nodes)})")
        if len(set(joints)) != len(joints):
            raise self.fail(f"{where}: a node is listed twice")
        members = set(joints)
        tops = [j for j in joints if not self._joint_ancestor(j, members, node_parent) >= 0]
        if len(tops) > 1:  # several trees: their lowest common ancestor node joins them as joint 0
            chains = [self._ancestors(t, node_parent) for t in tops]
            common = [n for n in chains[0] if all(n in c for c in chains[1:])]
            if not common:
                raise self.fail(f"{where}: the joints form {len(tops)} separate trees with no common parent node")
            return [common[0], *joints]
        return list(joints)

    @staticmethod
    def _joint_ancestor(n: int, members: set, node_parent: np.ndarray) -> int:
        k = int(node_parent[n])
        while k >= 0 and k not in members:
            k = int(node_parent[k])
        return k

    @staticmethod
    def _ancestors(n: int, node_parent: np.ndarray) -> list[int]:
        out, k = [], int(node_parent[n])
        while k >= 0:
            out.append(k)
            k = int(node_parent[k])
        return out

    @staticmethod
    def _preorder(nodes: list, node_parent: np.ndarray) -> list[int]:
        """Every node, parents before children (depth first, children in file order)."""
        order: list[int] = []
        stack = [i for i in range(len(nodes))[::-1] if node_parent[i] < 0]
        while stack:
            n = stack.pop()
            order.append(n)
            stack.extend(reversed(nodes[n].get("children", [])))
        return order

    def _order(self, joint_nodes: list[int], nodes: list, node_parent: np.ndarray) -> tuple[list[int], list[int]]:
        """The joints in the skin's order when that is topological (every parent before its children: what
        `write_glb` writes), else depth first; and each one's parent joint index (-1 for the top)."""
        members = set(joint_nodes)
        order = list(joint_nodes)
        ancestor = {n: self._joint_ancestor(n, members, node_parent) for n in order}
        seen: set[int] = set()
        for n in order:
            if ancestor[n] >= 0 and ancestor[n] not in seen:
                order = [n for n in self._preorder(nodes, node_parent) if n in members]
                break
            seen.add(n)
        index_of = {n: j for j, n in enumerate(order)}
        parents = [index_of.get(ancestor[n], -1) for n in order]
        return order, parents

    def _extras(self, anim: dict | None) -> dict:
        extras = anim.get("extras") if anim is not None else None
        ours = extras.get(_EXTRAS_KEY) if isinstance(extras, dict) else None
        return ours if isinstance(ours, dict) else {}

    def _tracks(self, anim: dict, index: int, index_of: dict[int, int]) -> dict[tuple[int, str], tuple]:
        """(joint, "rotation" | "translation") → (key times (K,), values (K, n) or (K, 3, n), interpolation)."""
        where = f"animations[{index}]"
        channels, samplers = anim.get("channels", []), anim.get("samplers", [])
        if not isinstance(channels, list) or not isinstance(samplers, list):
            raise self.fail(f"{where}: channels and samplers must be lists")
        tracks: dict[tuple[int, str], tuple] = {}
        for c, ch in enumerate(channels):
            cwhere = f"{where}.channels[{c}]"
            target = ch.get("target") if isinstance(ch, dict) else None
            if not isinstance(target, dict):
                raise self.fail(f"{cwhere}: no target")
            path, node = target.get("path"), target.get("node")
            if path not in ("rotation", "translation") or node not in index_of:
                continue
            s = ch.get("sampler")
            if not _is_int(s) or not 0 <= s < len(samplers) or not isinstance(samplers[s], dict):
                raise self.fail(f"{cwhere}.sampler: {s!r} out of range (the animation has {len(samplers)})")
            sampler, swhere = samplers[s], f"{where}.samplers[{s}]"
            interpolation = sampler.get("interpolation", "LINEAR")
            if interpolation not in ("LINEAR", "STEP", "CUBICSPLINE"):
                raise self.fail(f"{swhere}.interpolation: {interpolation!r} is not LINEAR, STEP or CUBICSPLINE")
            times = self.accessor(sampler.get("input"), f"{swhere} input", ("SCALAR",))[:, 0]
            if len(times) > 1 and not np.all(np.diff(times) >= 0):
                raise self.fail(f"{swhere}: its key times decrease")
            n = 4 if path == "rotation" else 3
            values = self.accessor(sampler.get("output"), f"{swhere} output", (f"VEC{n}",))
            per_key = 3 if interpolation == "CUBICSPLINE" else 1
            if len(values) != per_key * len(times):
                raise self.fail(f"{swhere}: {len(values):,} output values for {len(times):,} key times "
                                f"(expected {per_key * len(times):,})")
            if per_key == 3:
                values = values.reshape(len(times), 3, n)
            if path == "rotation":
                norm = np.linalg.norm(values if per_key == 1 else values[:, 1], axis=-1)
                if (norm < 1e-6).any():
                    raise self.fail(f"{swhere}: zero-norm rotation at key {int(np.argmax(norm < 1e-6))}")
            tracks[(index_of[node], path)] = (times, values, interpolation)
        return tracks

    def _grid(self, tracks: dict, extras: dict, joints: int, max_joint_frames: int | None, index: int
              ) -> tuple[float, int, float]:
        """(fps, frames, start time) of the frame grid that covers every key (checked against the limit)."""
        inputs = [t for t, _, _ in tracks.values()]
        fps: Any = extras.get("fps")
        if not (_is_number(fps) and math.isfinite(fps) and 1e-3 <= fps <= 1e6):
            fps = _estimate_fps(inputs)
        if not inputs:
            return float(fps), 1, 0.0
        start = min(float(t[0]) for t in inputs)
        span = max(float(t[-1]) for t in inputs) - start
        count = span * fps + 1.5
        what = f"{self.where}: animations[{index}] ({span:g} s at {fps:g} fps)"
        limits.check_joint_frames(int(min(count, 1e15)), joints, what, max_joint_frames)
        return float(fps), int(count), start

    @staticmethod
    def _sample(track: tuple | None, grid: np.ndarray, rest: np.ndarray, rotation: bool) -> np.ndarray:
        """A track's values at the grid's times (T, n); the rest value throughout when there is no track."""
        if track is None:
            return np.broadcast_to(rest, (len(grid), len(rest))).copy()
        times, values, interpolation = track
        if interpolation == "CUBICSPLINE":
            keys = values[:, 1]
        else:
            keys = values
        if rotation:
            keys = keys / np.linalg.norm(keys, axis=-1, keepdims=True)
        step = grid[1] - grid[0] if len(grid) > 1 else 1.0
        if len(times) == len(grid) and np.abs(times - grid).max(initial=0) <= 0.01 * step:
            return keys.copy()  # baked on the grid: the keys themselves
        i0 = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(times) - 1)
        i1 = np.minimum(i0 + 1, len(times) - 1)
        dt = times[i1] - times[i0]
        w = np.where(dt > 0, (grid - times[i0]) / np.where(dt > 0, dt, 1), 0.0).clip(0, 1)
        if interpolation == "STEP":
            return keys[np.where(w >= 1, i1, i0)].copy()
        if interpolation == "LINEAR":
            if rotation:
                return R.quat_normalize(R.slerp(keys[i0], keys[i1], w))
            return keys[i0] + (keys[i1] - keys[i0]) * w[:, None]
        s, s2, s3 = w[:, None], w[:, None] ** 2, w[:, None] ** 3
        out = ((2 * s3 - 3 * s2 + 1) * values[i0, 1] + dt[:, None] * (s3 - 2 * s2 + s) * values[i0, 2]
               + (-2 * s3 + 3 * s2) * values[i1, 1] + dt[:, None] * (s3 - s2) * values[i1, 0])
        if rotation:
            norm = np.linalg.norm(out, axis=-1, keepdims=True)
            out = np.where(norm > 1e-9, out / np.maximum(norm, 1e-12), keys[i0])
        return out

    def _end_sites(self, joint_nodes: list[int], index_of: dict, nodes: list, world_scale: Callable[[int], float],
                   scale: float) -> dict[int, np.ndarray]:
        """Leaf joints with one plain child node (no children, mesh or camera): that node is their end site."""
        out = {}
        for j, n in enumerate(joint_nodes):
            children = nodes[n].get("children", [])
            if len(children) == 1 and children[0] not in index_of:
                c = nodes[children[0]]
                if not (c.get("children") or "mesh" in c or "camera" in c or "skin" in c):
                    try:
                        out[j] = world_scale(n) * self.trs(c, children[0])[0] * scale
                    except FormatError:  # not a plain end node after all
                        continue
        return out


def _estimate_fps(inputs: list[np.ndarray]) -> float:
    """The frame rate of key times: the densest channel's keys per second (its span over its intervals when evenly
    spaced, else its median interval), snapped to a whole number within 0.1 %, else to 6 significant digits."""
    best = 0.0
    for times in inputs:
        steps = np.diff(times)
        steps = steps[steps > 0]
        if not len(steps):
            continue
        median = float(np.median(steps))
        even = (times[-1] - times[0]) / len(steps)
        rate = 1.0 / (even if abs(even - median) <= 0.01 * median else median)
        best = max(best, rate)
    if best <= 0 or not math.isfinite(best):
        return _DEFAULT_FPS
    best = min(best, 1e6)
    if abs(best - round(best)) <= _FPS_SNAP * best and round(best) >= 1:
        return float(round(best))
    return float(f"{best:.6g}")


def _joint_names(raw: list[Any]) -> list[str]:
    """Unique, printable joint names without spaces or braces (what BVH can carry): a node's name, else joint_N."""
    out: list[str] = []
    taken: set[str] = set()
    for j, name in enumerate(raw):
        text = name if isinstance(name, str) and name.strip() else f"joint_{j}"
        text = "".join("_" if (c.isspace() or not c.isprintable() or c in "{}") else c for c in text.strip())[:200]
        unique, k = text, 1
        while unique in taken:
            unique, k = f"{text}_{k}", k + 1
        taken.add(unique)
        out.append(unique)
    return out


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)

