"""3D keypoints from a pose estimator: the layouts of their points, and files of per-frame joint positions.

**Layouts** (`LAYOUTS`, by name): the points a file holds, in file order, and how `motionsynth.fit` builds a joint
tree from them —

- ``h36m`` (17): Human3.6M's Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head (top),
  LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist.
- ``coco`` (17): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right).
- ``smpl24`` (24): the SMPL joints in SMPL order (`io.amass.SMPL_BODY_NAMES` plus ``left_hand``, ``right_hand``).
- ``mediapipe`` (33): the BlazePose landmarks (nose, eyes inner/centre/outer, ears, mouth, shoulders … foot index).

A layout's tree (`JointSpec`) lists the joints of the fitted skeleton in topological order, SMPL-style names. Each
joint stands at the mean of its ``points`` (one point; two for a *virtual* joint such as coco's ``pelvis`` =
mid-hips, ``spine3`` and ``neck`` = mid-shoulders, ``head`` = mid-ears). A joint with children has an ``aim`` (the
points its bone points at) and optionally a ``twist``: a second direction (point set ``a`` minus point set ``b``: the
hips line for the pelvis, the shoulders line for the chest, the ears for the head, the foot for the shin, index −
pinky for the hand) that fixes its rotation about the bone; without one the twist is carried on from the parent.
The chest (``spine3``) reads its frame from the spine (``origin``: the spine point, or the mid-hips) and the
shoulders line, so that nodding does not swing the shoulders; a zero-length ``neck`` at the same place then aims at
the head (h36m: ``neck`` at Thorax → ``head`` at Neck/Nose → ``head_top`` at Head). Every point of the layout is
the joint standing on it alone (points the tree does not aim at — eyes, ears, finger tips — are leaf joints), so a
fitted motion gives the points back by forward kinematics. ``template`` (K, 3): the layout's points in a canonical T-pose (metres, Y up, facing
+Z, the subject's left on +X, as SMPL's rest pose), from which rest bone directions are taken.

**Files** (`read_keypoints` / `write_keypoints`, chosen by extension):

- ``.npy``: one (T, K, 3) float array.
- ``.npz``: a single array, or the array ``keypoints`` / ``joints3d`` / ``positions`` (optional ``fps`` scalar).
- ``.json``: a list of T frames of K ``[x, y, z]``, or ``{"fps": 30, "keypoints": [...]}`` (optional ``"layout"``,
  checked against the one asked for); ``null`` for a missing value.
- ``.csv``: one row per frame, 3K columns ``x, y, z`` point after point; an optional header row (names such as
  ``Hip_x``) is recognised by its first field not being a number; an empty field is a missing value.

Conventions: **metres** in files (``unit="cm"|"mm"`` for others) and out of the reader; **+Y up** (``up="z"`` for
Z-up data, ``up="-y"`` for camera-frame data with Y down); the writer writes the same units and axes it is asked
for. Writers are atomic (`io.atomic.atomic_path`) and check the output first (`io.atomic.check_output`): a folder
that cannot be written raises before anything is made, and nothing is ever left half-written.

**Missing values.** A NaN (``null`` in JSON, an empty CSV field) is a point the estimator lost. Runs of at most
``max_gap`` frames (default `MAX_GAP` = 5) of one point are filled by linear interpolation between the frames around
them (held from the nearest observed frame at the start or end of the take); longer runs, a point missing in every
frame, and infinite values are refused with `FormatError` naming the points and frames. ``max_gap=0`` refuses any
NaN.

**Size.** ``frames × points`` is checked against `limits.check_joint_frames` before any array is built (from the
``.npy`` header, the CSV's line count, the JSON's frame count; a JSON or CSV file of more than `_BYTES_PER_VALUE`
bytes per allowed joint-frame is refused before it is parsed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..errors import FormatError, MotionsynthError
from .amass import SMPL_BODY_NAMES, SMPL_BODY_PARENTS, SMPL_NEUTRAL_REST_JOINTS
from .atomic import atomic_path, check_output
from .npz import NPY_ERRORS, array_headers, check_array_bytes, npz_keys

__all__ = ["JointSpec", "Layout", "LAYOUTS", "get_layout", "Keypoints", "read_keypoints", "write_keypoints",
           "fill_missing", "to_y_up", "from_y_up", "KEYPOINT_SUFFIXES", "NPZ_KEYS", "MAX_GAP", "UP_AXES", "UNITS"]

KEYPOINT_SUFFIXES = (".npy", ".npz", ".json", ".csv")
NPZ_KEYS = ("keypoints", "joints3d", "positions")
"""Array names an ``.npz`` of several arrays is searched for, in this order."""
MAX_GAP = 5
"""Longest run of missing frames (per point) filled by interpolation by default."""
UP_AXES = ("y", "z", "-y")
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_BYTES_PER_VALUE = 64
"""Text files (JSON, CSV) larger than this many bytes per joint-frame of the limit are refused unread."""


# ---- layouts ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointSpec:
    """One joint of a layout's fitted skeleton.

    Attributes:
        name: SMPL-style joint name (``pelvis``, ``left_knee``, ``head_top`` …).
        parent: the parent joint's name, None for the root (the first joint).
        points: the layout points whose mean places the joint (one: the point itself; two: a virtual joint).
        aim: points whose mean the joint's bone points at (its primary direction); empty for a leaf.
        origin: where that direction starts (default: the joint itself) — the chest's frame runs from the spine
            point to the thorax, so that the head's nodding does not swing the shoulders.
        twist: ``(a, b)``: the direction mean(a) − mean(b) fixes the rotation about the bone; None: carried on.
    """

    name: str
    parent: str | None
    points: tuple[str, ...]
    aim: tuple[str, ...] = ()
    twist: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    origin: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Layout:
    """A keypoint layout: ``points`` (K names in file order), ``joints`` (the fitted tree, topological order) and
    ``template`` (K, 3): the points in a canonical T-pose (metres, +Y up, facing +Z, left on +X)."""

    name: str
    points: tuple[str, ...]
    joints: tuple[JointSpec, ...]
    template: np.ndarray = field(repr=False)
    description: str = ""

    def __post_init__(self):
        _check_layout(self)

    @property
    def num_points(self) -> int:
        return len(self.points)

    def index(self, point: str) -> int:
        return self.points.index(point)

    def indices(self, points: tuple[str, ...]) -> list[int]:
        """Point names → indices into the K points."""
        return [self.points.index(p) for p in points]

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def parents(self) -> list[int]:
        names = self.joint_names
        return [-1 if j.parent is None else names.index(j.parent) for j in self.joints]

    @property
    def point_joints(self) -> list[int]:
        """(K,) for each point, the index of the (first) joint standing on it alone."""
        single: dict[str, int] = {}
        for i, j in enumerate(self.joints):
            if len(j.points) == 1:
                single.setdefault(j.points[0], i)
        return [single[p] for p in self.points]


def _check_layout(layout: Layout) -> None:
    """Programming errors in a layout table: unknown names, order, a point without its joint, shapes."""
    names = [j.name for j in layout.joints]
    if layout.template.shape != (len(layout.points), 3):
        raise ValueError(f"layout {layout.name}: template {layout.template.shape} for {len(layout.points)} points")
    for i, j in enumerate(layout.joints):
        if (j.parent is None) != (i == 0) or (j.parent is not None and j.parent not in names[:i]):
            raise ValueError(f"layout {layout.name}: joint {j.name} must follow its parent {j.parent}")
        used = j.points + j.aim + j.origin + (j.twist[0] + j.twist[1] if j.twist else ())
        if unknown := [p for p in used if p not in layout.points]:
            raise ValueError(f"layout {layout.name}: joint {j.name} uses unknown points {unknown}")
        if any(c.parent == j.name for c in layout.joints) and not j.aim:
            raise ValueError(f"layout {layout.name}: joint {j.name} has children but no aim")
    single = [j.points[0] for j in layout.joints if len(j.points) == 1]
    if set(single) != set(layout.points):
        raise ValueError(f"layout {layout.name}: every point must be a joint")


def _mirror(name: str) -> str:
    """left ↔ right in a name (``left_hip``, ``LHip``, ``mouth_left``)."""
    for a, b in (("left", "right"), ("right", "left"), ("L", "R"), ("R", "L")):
        if name.startswith(a):
            return b + name[len(a):]
        if name.endswith("_" + a):
            return name[: -len(a)] + b
    return name


def _both(*specs: JointSpec) -> list[JointSpec]:
    """The given left-side joints, then the same joints mirrored to the right."""
    def mirror(s: JointSpec) -> JointSpec:
        m = lambda ps: tuple(_mirror(p) for p in ps)
        twist = None if s.twist is None else (m(s.twist[0]), m(s.twist[1]))
        return JointSpec(_mirror(s.name), s.parent and _mirror(s.parent), m(s.points), m(s.aim), twist, m(s.origin))
    return list(specs) + [mirror(s) for s in specs]


def _spec(name: str, parent: str | None, points: str | tuple[str, ...], aim: str | tuple[str, ...] = (),
          twist: tuple[str | tuple[str, ...], str | tuple[str, ...]] | None = None,
          origin: str | tuple[str, ...] = ()) -> JointSpec:
    tup = lambda x: (x,) if isinstance(x, str) else tuple(x)
    return JointSpec(name, parent, tup(points), tup(aim), None if twist is None else (tup(twist[0]), tup(twist[1])),
                     tup(origin))


_BODY_LEFT = {  # canonical T-pose, metres: +Y up, facing +Z, the subject's left on +X (right = x mirrored)
    "left_hip": (0.09, 0.90, 0.0), "left_knee": (0.09, 0.50, 0.01), "left_ankle": (0.09, 0.08, -0.02),
    "left_heel": (0.09, 0.02, -0.07), "left_foot_index": (0.10, 0.02, 0.14),
    "left_shoulder": (0.18, 1.42, -0.01), "left_elbow": (0.45, 1.42, -0.02), "left_wrist": (0.70, 1.42, -0.02),
    "left_pinky": (0.78, 1.41, -0.05), "left_index": (0.79, 1.41, 0.02), "left_thumb": (0.74, 1.40, 0.05),
    "left_eye_inner": (0.015, 1.655, 0.085), "left_eye": (0.032, 1.655, 0.08), "left_eye_outer": (0.048, 1.655, 0.072),
    "left_ear": (0.075, 1.63, 0.0), "mouth_left": (0.025, 1.585, 0.085),
}
_BODY = {
    "pelvis": (0.0, 0.95, 0.0), "spine": (0.0, 1.18, 0.0), "thorax": (0.0, 1.42, -0.01),
    "neck_nose": (0.0, 1.55, 0.05), "head_top": (0.0, 1.75, 0.0), "nose": (0.0, 1.62, 0.10),
    **_BODY_LEFT, **{_mirror(k): (-x, y, z) for k, (x, y, z) in _BODY_LEFT.items()},
}


def _template(points: tuple[str, ...], body_name=lambda p: p) -> np.ndarray:
    return np.array([_BODY[body_name(p)] for p in points], dtype=np.float64)


def _symmetric(template: np.ndarray, points: tuple[str, ...]) -> np.ndarray:
    """(K, 3) → the mean of the template and its mirror image (left ↔ right, x → −x): rest directions of a
    symmetric rig (the fitted skeleton is symmetrised; its rest bones must stay along the template's)."""
    mirror = [points.index(_mirror(p)) for p in points]
    return (template + template[mirror] * [-1.0, 1.0, 1.0]) / 2


HIPS, SHOULDERS = ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")


def _h36m() -> Layout:
    points = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
              "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")
    body = {"Hip": "pelvis", "Spine": "spine", "Thorax": "thorax", "Neck/Nose": "neck_nose", "Head": "head_top"}
    part = {"Hip": "hip", "Knee": "knee", "Foot": "ankle", "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist"}
    for side, word in (("L", "left"), ("R", "right")):
        body.update({side + k: f"{word}_{v}" for k, v in part.items()})
    joints = [_spec("pelvis", None, "Hip", "Spine", ("LHip", "RHip")),
              *_both(_spec("left_hip", "pelvis", "LHip", "LKnee"), _spec("left_knee", "left_hip", "LKnee", "LFoot"),
                     _spec("left_ankle", "left_knee", "LFoot")),
              _spec("spine1", "pelvis", "Spine", "Thorax"),
              _spec("spine3", "spine1", "Thorax", "Thorax", ("LShoulder", "RShoulder"), origin="Spine"),
              _spec("neck", "spine3", "Thorax", "Neck/Nose"), _spec("head", "neck", "Neck/Nose", "Head"),
              _spec("head_top", "head", "Head"),
              *_both(_spec("left_shoulder", "spine3", "LShoulder", "LElbow"),
                     _spec("left_elbow", "left_shoulder", "LElbow", "LWrist"),
                     _spec("left_wrist", "left_elbow", "LWrist"))]
    return Layout("h36m", points, tuple(joints), _template(points, body.__getitem__),
                  "Human3.6M 17 joints (Hip at the pelvis; Neck/Nose; Head = top of the head)")


def _coco() -> Layout:
    sides = [f"{s}_{p}" for p in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
             for s in ("left", "right")]
    points = ("nose", *sides)
    joints = [_spec("pelvis", None, ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
                    ("left_hip", "right_hip")),
              *_both(_spec("left_hip", "pelvis", "left_hip", "left_knee"),
                     _spec("left_knee", "left_hip", "left_knee", "left_ankle"),
                     _spec("left_ankle", "left_knee", "left_ankle")),
              _spec("spine3", "pelvis", SHOULDERS, SHOULDERS, SHOULDERS, origin=HIPS),
              _spec("neck", "spine3", SHOULDERS, ("left_ear", "right_ear")),
              _spec("head", "neck", ("left_ear", "right_ear"), "nose", ("left_ear", "right_ear")),
              _spec("nose", "head", "nose"),
              *_both(_spec("left_eye", "head", "left_eye"), _spec("left_ear", "head", "left_ear")),
              *_both(_spec("left_shoulder", "spine3", "left_shoulder", "left_elbow"),
                     _spec("left_elbow", "left_shoulder", "left_elbow", "left_wrist"),
                     _spec("left_wrist", "left_elbow", "left_wrist"))]
    return Layout("coco", points, tuple(joints), _template(points),
                  "COCO 17 keypoints (virtual joints: pelvis = mid-hips, neck = mid-shoulders, head = mid-ears)")


_MEDIAPIPE_POINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index")


def _mediapipe() -> Layout:
    face = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
            "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right")
    joints = [_spec("pelvis", None, ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
                    ("left_hip", "right_hip")),
              *_both(_spec("left_hip", "pelvis", "left_hip", "left_knee"),
                     _spec("left_knee", "left_hip", "left_knee", "left_ankle", ("left_foot_index", "left_heel")),
                     _spec("left_ankle", "left_knee", "left_ankle", "left_foot_index", ("left_heel", "left_ankle")),
                     _spec("left_foot", "left_ankle", "left_foot_index"),
                     _spec("left_heel", "left_ankle", "left_heel")),
              _spec("spine3", "pelvis", SHOULDERS, SHOULDERS, SHOULDERS, origin=HIPS),
              _spec("neck", "spine3", SHOULDERS, ("left_ear", "right_ear")),
              _spec("head", "neck", ("left_ear", "right_ear"), "nose", ("left_ear", "right_ear")),
              *[_spec(p, "head", p) for p in face],
              *_both(_spec("left_shoulder", "spine3", "left_shoulder", "left_elbow"),
                     _spec("left_elbow", "left_shoulder", "left_elbow", "left_wrist"),
                     _spec("left_wrist", "left_elbow", "left_wrist", ("left_index", "left_pinky"),
                           ("left_index", "left_pinky")),
                     *[_spec(f"left_{p}", "left_wrist", f"left_{p}") for p in ("pinky", "index", "thumb")])]
    return Layout("mediapipe", _MEDIAPIPE_POINTS, tuple(joints), _template(_MEDIAPIPE_POINTS),
                  "MediaPipe BlazePose 33 landmarks (virtual joints: pelvis = mid-hips, neck = mid-shoulders, "
                  "head = mid-ears)")


def _smpl24() -> Layout:
    points = (*SMPL_BODY_NAMES, "left_hand", "right_hand")
    parents = [*SMPL_BODY_PARENTS, SMPL_BODY_NAMES.index("left_wrist"), SMPL_BODY_NAMES.index("right_wrist")]
    template = np.concatenate([SMPL_NEUTRAL_REST_JOINTS, SMPL_NEUTRAL_REST_JOINTS[20:22] + [[0.085, -0.01, -0.01],
                                                                                         [-0.085, -0.01, -0.01]]])
    template = _symmetric(template, points)
    children = {p: [c for c, q in enumerate(parents) if q == i] for i, p in enumerate(points)}
    twists = {"pelvis": (("left_hip",), ("right_hip",)), "spine3": (("left_collar",), ("right_collar",)),
              "left_knee": (("left_foot",), ("left_ankle",)), "right_knee": (("right_foot",), ("right_ankle",))}
    aims = {"pelvis": "spine1", "spine3": "neck"}
    joints = []
    for i, p in enumerate(points):
        kids = children[p]
        aim = aims.get(p, points[kids[0]] if kids else ())
        joints.append(_spec(p, None if parents[i] < 0 else points[parents[i]], p, aim, twists.get(p)))
    return Layout("smpl24", points, tuple(joints), template, "the 24 SMPL joints in SMPL order")


LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (_h36m(), _coco(), _smpl24(), _mediapipe())}
"""Every layout by name."""


def get_layout(layout: str | Layout) -> Layout:
    """A layout by name (`MotionsynthError` naming the known ones), or the layout given."""
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise MotionsynthError(f"unknown keypoint layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


# ---- axes and units ---------------------------------------------------------------------------------------------
def to_y_up(x: np.ndarray, up: str = "y") -> np.ndarray:
    """(..., 3) positions with ``up`` (one of `UP_AXES`) as the up axis → +Y up, by a proper rotation: ``"z"``:
    (x, y, z) → (x, z, −y) (Rx(−90°), as AMASS); ``"-y"`` (camera frames, Y down): (x, y, z) → (x, −y, −z)."""
    x = np.asarray(x, dtype=np.float64)
    if up == "y":
        return x.copy()
    if up == "z":
        return np.stack([x[..., 0], x[..., 2], -x[..., 1]], -1)
    if up == "-y":
        return np.stack([x[..., 0], -x[..., 1], -x[..., 2]], -1)
    raise MotionsynthError(f"unknown up axis {up!r}; expected one of {', '.join(UP_AXES)}")


def from_y_up(x: np.ndarray, up: str = "y") -> np.ndarray:
    """The inverse of `to_y_up`: +Y-up positions (..., 3) → the ``up`` convention."""
    x = np.asarray(x, dtype=np.float64)
    if up == "z":
        return np.stack([x[..., 0], -x[..., 2], x[..., 1]], -1)
    return to_y_up(x, up)  # identity and the half turn about X are their own inverses


def _unit_scale(unit: str) -> float:
    if unit not in UNITS:
        raise MotionsynthError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    return UNITS[unit]


# ---- checks and missing values ----------------------------------------------------------------------------------
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(T,) bool → [(start, stop)] of its True runs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _frames_text(frames: np.ndarray) -> str:
    shown = ", ".join(str(int(f)) for f in frames[:5])
    return f"frame {shown}" if len(frames) == 1 else f"{len(frames)} frames ({shown}{', …' if len(frames) > 5 else ''})"


def fill_missing(x: np.ndarray, names: tuple[str, ...], max_gap: int = MAX_GAP, where: str | None = None) -> np.ndarray:
    """(T, K, 3) positions with NaN where a point is missing → a filled copy (see the module docstring).

    A point is missing in a frame when any of its three values is NaN. Runs of ≤ ``max_gap`` missing frames are
    linearly interpolated (held at the ends); infinite values, a point missing in every frame, and longer runs raise
    `FormatError` (naming ``where``, the points and the frames).
    """
    x = np.array(x, dtype=np.float64)
    if np.isinf(x).any():
        bad_t, bad_k = np.nonzero(np.isinf(x).any(-1))
        raise FormatError(f"infinite values at {_frames_text(np.unique(bad_t))}, points "
                          f"{sorted({names[i] for i in bad_k})}", where)
    missing = np.isnan(x).any(-1)
    if not missing.any():
        return x
    if gone := [names[k] for k in np.flatnonzero(missing.all(0))]:
        raise FormatError(f"points missing (NaN) in every frame: {gone}", where)
    too_long = [(names[k], a, b) for k in np.flatnonzero(missing.any(0)) for a, b in _runs(missing[:, k])
                if b - a > max_gap]
    if too_long:
        shown = "; ".join(f"{n} frames {a}-{b - 1}" for n, a, b in too_long[:5])
        raise FormatError(f"missing values (NaN) in {len(too_long)} run(s) longer than {max_gap} frames, "
                          f"which are not filled: {shown}{' …' if len(too_long) > 5 else ''}", where)
    frames = np.arange(len(x))
    for k in np.flatnonzero(missing.any(0)):
        ok = ~missing[:, k]
        x[:, k] = np.stack([np.interp(frames, frames[ok], x[ok, k, c]) for c in range(3)], -1)
    return x


def _check_shape(shape: tuple[int, ...], layout: Layout, where: str) -> None:
    """Rank and point count (from an array or a header): `FormatError` naming what was found."""
    if len(shape) != 3 or shape[-1] != 3:
        raise FormatError(f"keypoints must be (frames, points, 3), got shape {tuple(shape)}", where)
    if shape[1] != layout.num_points:
        same = [n for n, lay in LAYOUTS.items() if lay.num_points == shape[1]]
        hint = f" (layouts of {shape[1]} points: {', '.join(same)})" if same else ""
        raise FormatError(f"{shape[1]} points per frame, but layout {layout.name!r} has {layout.num_points}"
                          f"{hint}", where)


# ---- reading ----------------------------------------------------------------------------------------------------
@dataclass
class Keypoints:
    """What `read_keypoints` returns: ``positions`` (T, K, 3) metres, +Y up, finite; the layout's name; the frame
    rate the file states (None when it states none)."""

    positions: np.ndarray
    layout: str
    fps: float | None = None


def read_keypoints(path: str | os.PathLike, layout: str | Layout, *, up: str = "y", unit: str = "m",
                   max_gap: int = MAX_GAP) -> Keypoints:
    """Read a keypoint file (``.npy``, ``.npz``, ``.json``, ``.csv``) of ``layout`` → `Keypoints` in metres, +Y up.

    Raises `FormatError` for a file that cannot be read or does not fit the layout (rank, point count, missing or
    infinite values — see `fill_missing`), `limits.LimitError` for one too large.
    """
    lay, where, scale = get_layout(layout), str(path), _unit_scale(unit)
    to_y_up(np.zeros(3), up)  # an unknown axis is refused before the file is read
    suffix = Path(path).suffix.lower()
    if suffix not in KEYPOINT_SUFFIXES:
        raise FormatError(f"unknown keypoint file type {Path(path).suffix or '(no extension)'!r}; expected one of "
                          f"{', '.join(KEYPOINT_SUFFIXES)}", where)
    if not Path(path).is_file():
        raise FormatError("no such file" if not Path(path).exists() else "not a file", where)
    reader = {".npy": _read_npy, ".npz": _read_npz, ".json": _read_json, ".csv": _read_csv}[suffix]
    x, fps = reader(Path(path), lay)
    _check_shape(x.shape, lay, where)
    if len(x) == 0:
        raise FormatError("no frames", where)
    x = fill_missing(x, lay.points, max_gap, where)
    return Keypoints(to_y_up(x * scale, up), lay.name, fps)


def _as_float(x: np.ndarray, where: str, what: str = "keypoints") -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise FormatError(f"{what} must be numbers, got an array of {x.dtype}", where)
    return np.asarray(x, dtype=np.float64)


def _check_size(shape: tuple[int, ...], lay: Layout, where: str) -> None:
    """Rank and point count from a header, then the joint-frame limit — before the array is read."""
    _check_shape(shape, lay, where)
    limits.check_joint_frames(shape[0], shape[1], where)


def _read_npy(path: Path, lay: Layout) -> tuple[np.ndarray, float | None]:
    where = str(path)
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
        _check_size(mm.shape, lay, where)
        return _as_float(np.array(mm), where), None
    except (FormatError, limits.LimitError):
        raise
    except NPY_ERRORS as e:
        raise FormatError(f"not a valid .npy file ({type(e).__name__}: {e})", where) from None


def _read_npz(path: Path, lay: Layout) -> tuple[np.ndarray, float | None]:
    where = str(path)
    keys = npz_keys(path)
    key = next((k for k in NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
    if key is None:
        raise FormatError(f"no keypoint array: expected a single array or one named {', '.join(NPZ_KEYS)}; "
                          f"found {', '.join(sorted(keys)[:8]) or 'none'}", where)
    headers = array_headers(path, (key, "fps"))
    _check_size(headers[key].shape, lay, where)
    check_array_bytes(headers, where)
    try:
        with np.load(path, allow_pickle=False) as z:
            x = _as_float(z[key], where)
            fps = _fps(z["fps"].item() if "fps" in headers and z["fps"].size == 1 else None, where)
    except NPY_ERRORS as e:
        raise FormatError(f"'{key}' is damaged ({type(e).__name__}: {e})", where) from None
    return x, fps


def _fps(value, where: str) -> float | None:
    if value is None:
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"fps must be a number, got {value!r}", where) from None
    if not (np.isfinite(fps) and fps > 0):
        raise FormatError(f"fps must be finite and positive, got {value!r}", where)
    return fps


def _check_text_bytes(path: Path, lay: Layout) -> None:
    size, budget = path.stat().st_size, _BYTES_PER_VALUE * limits.max_joint_frames()
    if size > budget:
        raise limits.LimitError(f"{path}: {size:,} bytes, more than a keypoint file of the joint-frame limit "
                                f"({limits.max_joint_frames():,} x {_BYTES_PER_VALUE} bytes); raise the limit "
                                f"({limits.ENV_VAR}=N, or motionsynth --max-joint-frames N …)")


def _read_json(path: Path, lay: Layout) -> tuple[np.ndarray, float | None]:
    where = str(path)
    _check_text_bytes(path, lay)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"not valid JSON ({e})", where) from None
    fps = None
    if isinstance(data, dict):
        if "keypoints" not in data:
            raise FormatError(f"a JSON object needs a 'keypoints' list; found keys {sorted(data)[:8]}", where)
        if data.get("layout", lay.name) != lay.name:
            raise FormatError(f"the file's layout is {data['layout']!r}, not {lay.name!r}", where)
        fps, data = _fps(data.get("fps"), where), data["keypoints"]
    if not isinstance(data, list):
        raise FormatError(f"keypoints must be a list of frames, got {type(data).__name__}", where)
    limits.check_joint_frames(len(data), lay.num_points, where)
    try:
        x = np.array([[[np.nan if v is None else v for v in p] for p in f] for f in data], dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError("keypoints must be frames of points of three numbers ([x, y, z]; null when "
                          "missing), all frames alike", where) from None
    return (x.reshape(0, lay.num_points, 3) if len(data) == 0 else x), fps


def _read_csv(path: Path, lay: Layout) -> tuple[np.ndarray, float | None]:
    where = str(path)
    _check_text_bytes(path, lay)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError as e:
        raise FormatError(f"not a text file ({e})", where) from None
    if lines and not _is_number(lines[0].split(",")[0]):
        lines = lines[1:]  # the header
    limits.check_joint_frames(len(lines), lay.num_points, where)
    rows = [ln.split(",") for ln in lines]
    bad = next((i for i, r in enumerate(rows) if len(r) != 3 * lay.num_points), None)
    if bad is not None:
        raise FormatError(f"{len(rows[bad])} columns in a row, but layout {lay.name!r} needs {3 * lay.num_points} "
                          f"(x, y, z of {lay.num_points} points; {len(rows[bad]) / 3:g} points found)", where)
    try:
        x = np.array([[float(v) if v.strip() else np.nan for v in r] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise FormatError(f"a value is not a number ({e})", where) from None
    return x.reshape(len(rows), lay.num_points, 3), None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip() == ""
    return True


# ---- writing ----------------------------------------------------------------------------------------------------
def write_keypoints(path: str | os.PathLike, positions: np.ndarray, layout: str | Layout, *, fps: float | None = None,
                    up: str = "y", unit: str = "m", header: bool = True) -> None:
    """Write ``positions`` (T, K, 3) metres, +Y up, of ``layout`` to ``path`` (format by extension), converted to
    ``unit`` and the ``up`` convention, atomically. ``fps`` goes into ``.json`` and ``.npz`` files; ``header``: the
    CSV's header row (``Hip_x, Hip_y, …``).

    The output is checked first (`io.atomic.check_output`: `MotionsynthError` when its folder cannot be written);
    ``positions`` of the wrong shape or with non-finite values raise ``ValueError``; nothing is written then.
    """
    lay, suffix = get_layout(layout), Path(path).suffix.lower()
    if suffix not in KEYPOINT_SUFFIXES:
        raise MotionsynthError(f"{path}: unknown keypoint file type {Path(path).suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(KEYPOINT_SUFFIXES)}")
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (lay.num_points, 3):
        raise ValueError(f"positions must be (T, {lay.num_points}, 3) for layout {lay.name!r}, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("positions hold NaN or infinite values")
    x = from_y_up(x, up) / _unit_scale(unit)
    path = check_output(path)
    with atomic_path(path) as tmp:
        {".npy": _write_npy, ".npz": _write_npz, ".json": _write_json, ".csv": _write_csv}[suffix](
            tmp, x, lay, fps, header)


def _write_npy(tmp: Path, x: np.ndarray, lay: Layout, fps: float | None, header: bool) -> None:
    with open(tmp, "wb") as f:
        np.save(f, x)


def _write_npz(tmp: Path, x: np.ndarray, lay: Layout, fps: float | None, header: bool) -> None:
    arrays: dict[str, Any] = {"keypoints": x, "layout": np.array(lay.name)}
    if fps is not None:
        arrays["fps"] = np.array(float(fps))
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _write_json(tmp: Path, x: np.ndarray, lay: Layout, fps: float | None, header: bool) -> None:
    data = {"layout": lay.name, "points": list(lay.points), "fps": fps, "keypoints": x.tolist()}
    tmp.write_text(json.dumps(data if fps is not None else {k: v for k, v in data.items() if k != "fps"}),
                   encoding="utf-8")


def _write_csv(tmp: Path, x: np.ndarray, lay: Layout, fps: float | None, header: bool) -> None:
    with open(tmp, "w", encoding="utf-8") as f:
        if header:
            f.write(",".join(f"{p}_{c}" for p in lay.points for c in "xyz") + "\n")
        np.savetxt(f, x.reshape(len(x), -1), delimiter=",", fmt="%.9g")
