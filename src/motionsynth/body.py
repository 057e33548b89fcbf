"""The body map: which joint of a skeleton plays which part of a human body.

`body_map(skeleton)` gives every joint of a humanoid skeleton a semantic **role** — ``pelvis``, the ``spine`` chain
(pelvis → chest, 0–4+ joints), the ``neck`` chain (0–2 joints), ``head``, and per side (``left_`` / ``right_``):
``clavicle`` (optional), ``upper_arm``, ``forearm``, ``hand``, ``thigh``, ``shin``, ``foot``, ``toe`` (optional);
groups ``left_fingers`` / ``right_fingers``, ``twist`` and ``extra`` hold the joints without a single role.

Roles are found, in order:

1. from a YAML joint map the user gives (`load_joint_map`: role → joint name, or a list of names for chains);
2. from joint names, matched against one naming table (`_CONVENTIONS`: Bandai, CMU, Mixamo, Rokoko, SMPL,
   Unreal, Character Creator, Unity, LAFAN1 — the only place joint names appear). Names are compared after removing
   namespaces (``mixamorig1:``), the ``CC_Base_`` prefix, the side (`skeleton.joint_side`), case and separators;
3. from topology and rest geometry when names fail: the pelvis is where legs and spine branch, legs the two
   downward chains, arms the sideways chains off the upper spine, the head the upward continuation; sides from
   the rest pose.

The **reference pose** (`BodyMap.rest_rotations`, (J, 4) local quaternions x, y, z, w) is the skeleton's rest pose
(identity rotations) when that is a standing pose. Some exporters (Bandai Namco, Rokoko) write rest offsets along
each bone's own axis, so the identity pose is no pose at all; for those a T-pose is built in the project's frame
(+Y up, +Z forward, the character's left +X) from the roles. ``up``, ``forward``, ``height`` and ``leg_length`` are
measured on the reference pose, in the skeleton's units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import rotations as R
from .errors import MotionsynthError
from .kinematics import fk
from .skeleton import Skeleton, joint_side

SIDES = ("left", "right")
LIMB_ROLES = ("clavicle", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe")
ARM = ("clavicle", "upper_arm", "forearm", "hand")
LEG = ("thigh", "shin", "foot", "toe")
ROLES: tuple[str, ...] = ("pelvis", "head") + tuple(f"{s}_{r}" for s in SIDES for r in LIMB_ROLES)
"""Single-joint roles, required and optional, in a fixed order."""
CHAINS = ("spine", "neck")
"""Chain roles: ordered joint lists (root → tip), possibly empty."""
GROUPS = ("left_fingers", "right_fingers", "twist", "extra")
"""Group roles: joints without a single role."""
OPTIONAL = ("left_clavicle", "right_clavicle", "left_toe", "right_toe")
REQUIRED = tuple(r for r in ROLES if r not in OPTIONAL)

_ROLE_KEYS = ("pelvis", "spine", "neck", "head") + LIMB_ROLES

# ---- the naming table: the only place joint names appear -----------------------------------------------------------
# Per convention: role → candidate base names (normalised: lower case, no separators, side removed). Chains list
# their candidates root → tip. "marker": a regex on raw names that favours this convention on ties.
_CONVENTIONS: dict[str, dict[str, tuple[str, ...] | str]] = {
    "bandai": dict(pelvis=("hips",), spine=("spine", "chest"), neck=("neck",), head=("head",),
                   clavicle=("shoulder",), upper_arm=("upperarm",), forearm=("lowerarm",), hand=("hand",),
                   thigh=("upperleg",), shin=("lowerleg",), foot=("foot",), toe=("toes",), marker=r"^joint_Root$"),
    "unity": dict(pelvis=("hips",), spine=("spine", "chest", "upperchest"), neck=("neck",), head=("head",),
                  clavicle=("shoulder",), upper_arm=("upperarm",), forearm=("lowerarm",), hand=("hand",),
                  thigh=("upperleg",), shin=("lowerleg",), foot=("foot",), toe=("toes",), marker=r"UpperChest"),
    "cmu": dict(pelvis=("hips",), spine=("lowerback", "spine", "spine1"), neck=("neck", "neck1"), head=("head",),
                clavicle=("shoulder",), upper_arm=("arm",), forearm=("forearm",), hand=("hand",),
                thigh=("upleg",), shin=("leg",), foot=("foot",), toe=("toebase",), marker=r"^LHipJoint$"),
    "cmu31": dict(pelvis=("hips",), spine=("lowerback", "chest", "chest2"), neck=("lowerneck", "neck"),
                  head=("head",), clavicle=("collar",), upper_arm=("shoulder",), forearm=("elbow",),
                  hand=("wrist",), thigh=("hip",), shin=("knee",), foot=("ankle",), toe=("toe",), marker=r"Collar"),
    "mixamo": dict(pelvis=("hips",), spine=("spine", "spine1", "spine2", "spine3"), neck=("neck", "neck1"),
                   head=("head",), clavicle=("shoulder",), upper_arm=("arm",), forearm=("forearm",),
                   hand=("hand",), thigh=("upleg",), shin=("leg",), foot=("foot",), toe=("toebase", "toe"),
                   marker=r"(?i)^mixamorig"),
    "rokoko": dict(pelvis=("hips",), spine=("spine", "spine1", "spine2", "spine3", "spine4"), neck=("neck",),
                   head=("head",), clavicle=("shoulder",), upper_arm=("arm",), forearm=("forearm",),
                   hand=("hand",), thigh=("upleg",), shin=("leg",), foot=("foot",), toe=("toebase", "toe"),
                   marker=r"InHand"),
    "lafan1": dict(pelvis=("hips",), spine=("spine", "spine1", "spine2"), neck=("neck",), head=("head",),
                   clavicle=("shoulder",), upper_arm=("arm",), forearm=("forearm",), hand=("hand",),
                   thigh=("upleg",), shin=("leg",), foot=("foot",), toe=("toe",), marker=r"^LeftToe$"),
    "smpl": dict(pelvis=("pelvis",), spine=("spine1", "spine2", "spine3"), neck=("neck",), head=("head",),
                 clavicle=("collar",), upper_arm=("shoulder",), forearm=("elbow",), hand=("wrist",),
                 thigh=("hip",), shin=("knee",), foot=("ankle",), toe=("foot",), marker=r"^left_collar$"),
    "keypoints": dict(pelvis=("pelvis",), spine=("spine1", "spine2", "spine3"), neck=("neck",), head=("head",),
                      upper_arm=("shoulder",), forearm=("elbow",), hand=("wrist",), thigh=("hip",),
                      shin=("knee",), foot=("ankle",), toe=("foot",), marker=r"^(head_top|nose)$"),
    "unreal": dict(pelvis=("pelvis",), spine=("spine01", "spine02", "spine03", "spine04", "spine05"),
                   neck=("neck01", "neck02"), head=("head",), clavicle=("clavicle",), upper_arm=("upperarm",),
                   forearm=("lowerarm",), hand=("hand",), thigh=("thigh",), shin=("calf",), foot=("foot",),
                   toe=("ball",), marker=r"^spine_0\d$"),
    "character creator": dict(pelvis=("hip",), spine=("waist", "spine01", "spine02"),
                              neck=("necktwist01", "necktwist02"), head=("head",), clavicle=("clavicle",),
                              upper_arm=("upperarm",), forearm=("forearm",), hand=("hand",), thigh=("thigh",),
                              shin=("calf",), foot=("foot",), toe=("toebase",), marker=r"^CC_Base_"),
}
_PREFIX = re.compile(r"^(?:.*:)?(?:mixamorig\d*_?|CC_Base_)?", re.IGNORECASE)
"""Namespaces (``mixamorig1:``, ``rig:``), a bare Mixamo prefix and the Character Creator prefix."""
_FINGER_WORDS = {"thumb": "thumb", "index": "index", "middle": "middle", "ring": "ring", "pinky": "pinky",
                 "little": "pinky", "finger": "finger", "pinky0": "pinky"}
_TWIST_WORDS = ("twist", "share", "roll")
_END_WORDS = ("end", "site", "top", "nub", "tip", "nose", "eye", "jaw", "ear")
_METACARPAL_WORDS = ("inhand", "metacarpal", "carpal")


def _strip(name: str) -> str:
    return _PREFIX.sub("", name)


def _side_and_base(name: str) -> tuple[str | None, str]:
    """(side, base): the side from `joint_side`, the base name normalised (lower case, no side, no separators)."""
    raw = _strip(name)
    side = joint_side(raw)
    base = raw
    if side:
        base = re.sub(r"(?i)left|right", "", raw, count=1)
        if base == raw:
            base = re.sub(r"^[LlRr](?=[_.\- ]|[A-Z])|[_.\- ][LlRr]$|(?<=[a-z])[LR]$", "", raw, count=1)
    return side, re.sub(r"[_.\-\s]+", "", base).lower()


class NotHumanoidError(MotionsynthError):
    """A skeleton in which no humanoid body was found; the message names the roles it lacks."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.missing = missing

    def __reduce__(self):
        return (type(self), (str(self), self.missing))


@dataclass(eq=False)
class BodyMap:
    """A skeleton's joints by role (see the module docstring).

    Attributes:
        skeleton: the skeleton mapped.
        roles: role → joint indices (chains ordered root → tip; single roles a list of one; absent optional roles
            and empty chains are left out or empty).
        unmapped: joint index → why it has no single or chain role ("finger", "twist bone", "end joint"…).
        convention: the naming convention found ("bandai", "cmu", "mixamo", "smpl"…), "topology" or "joint map".
        up, forward: (3,) unit axes of the reference pose (snapped to a coordinate axis within 15°).
        height: reference-pose height (head top, else head joint, to the lowest foot point), skeleton units.
        leg_length: mean over sides of the thigh and shin bones (hip → knee → ankle), the root's scale unit.
        rest_rotations: (J, 4) local quaternions of the reference pose (identity unless ``synthesised_rest``).
        synthesised_rest: True when the identity pose is no standing pose and a T-pose was built instead.
    """

    skeleton: Skeleton
    roles: dict[str, list[int]]
    unmapped: dict[int, str]
    convention: str
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    forward: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    height: float = 0.0
    leg_length: float = 0.0
    rest_rotations: np.ndarray | None = None
    synthesised_rest: bool = False

    def joint(self, role: str) -> int | None:
        """The joint of a single role (the last joint of a chain role), None when absent."""
        joints = self.roles.get(role) or []
        return joints[-1] if joints else None

    def role_of(self, j: int) -> str | None:
        """The role of joint ``j`` (a group role for fingers, twist and extra joints), None when it has none."""
        for role, joints in self.roles.items():
            if j in joints:
                return role
        return None

    @property
    def left(self) -> np.ndarray:
        """(3,) the character's left in the reference pose: up × forward."""
        return np.cross(self.up, self.forward)

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions of the reference pose (root at its rest offset)."""
        return self._rest_fk()[1].copy()

    def rest_globals(self) -> np.ndarray:
        """(J, 4) world rotations of the reference pose."""
        return self._rest_fk()[0].copy()

    def _rest_fk(self) -> tuple[np.ndarray, np.ndarray]:
        """(world rotations, positions) of the reference pose, computed once per ``rest_rotations`` value."""
        rest = np.asarray(self.rest_rotations, dtype=np.float64)
        cached = self.__dict__.get("_rest_cache")
        if cached is None or cached[0].shape != rest.shape or not np.array_equal(cached[0], rest):
            g, p = fk(rest, self.skeleton.offsets, self.skeleton.parents)
            cached = self.__dict__["_rest_cache"] = (rest.copy(), g, p)
        return cached[1], cached[2]

    def next_joint(self, j: int) -> int | None:
        """The joint that follows ``j`` along its body chain (pelvis → spine → neck → head, clavicle → … → toe):
        the tip of ``j``'s bone; None at a chain's end."""
        return self._next.get(j)

    @property
    def _next(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for chain in self.body_chains():
            out.update(zip(chain[:-1], chain[1:]))
        return out

    def body_chains(self) -> list[list[int]]:
        """Joint chains root → tip: the centre (pelvis, spine, neck, head), then per side arm and leg."""
        centre = self.roles["pelvis"] + self.roles.get("spine", []) + self.roles.get("neck", []) + self.roles["head"]
        chains = [centre]
        for side in SIDES:
            for limb in (ARM, LEG):
                chains.append([j for r in limb for j in self.roles.get(f"{side}_{r}", [])])
        return chains

    def chest(self) -> int:
        """The joint the arms branch from: the spine's last joint, else the pelvis."""
        return (self.roles.get("spine") or self.roles["pelvis"])[-1]

    def describe(self) -> list[str]:
        """Lines for people: role → joint names, then the unmapped joints and why."""
        names = self.skeleton.names
        lines = [f"{role}: {', '.join(names[j] for j in self.roles[role]) or '-'}"
                 for role in ("pelvis", "spine", "neck", "head", *ROLES[2:], *GROUPS) if role in self.roles]
        lines += [f"unmapped {names[j]}: {why}" for j, why in sorted(self.unmapped.items())]
        return lines


# ---- finding roles from names --------------------------------------------------------------------------------------
def _match_convention(skeleton: Skeleton, table: dict) -> dict[str, list[int]]:
    """Roles found by one convention's table: role → joints (possibly partial)."""
    keys = [_side_and_base(n) for n in skeleton.names]
    roles: dict[str, list[int]] = {}
    for key in _ROLE_KEYS:
        cands = table.get(key, ())
        if key in LIMB_ROLES:
            for side in SIDES:
                hits = [j for c in cands for j, k in enumerate(keys) if k == (side, c)]
                if hits:
                    roles[f"{side}_{key}"] = hits[:1]
        else:
            hits = [j for c in cands for j, k in enumerate(keys) if k == (None, c)]
            if key in CHAINS:
                roles[key] = sorted(set(hits))
            elif hits:
                roles[key] = hits[:1]
    return roles


def _score(skeleton: Skeleton, name: str, roles: dict[str, list[int]]) -> float:
    marker = _CONVENTIONS[name].get("marker")
    found = sum(len(v) for v in roles.values())
    bonus = 0.5 if marker and any(re.search(str(marker), n) for n in skeleton.names) else 0.0
    return found + bonus


def _from_names(skeleton: Skeleton) -> tuple[str, dict[str, list[int]]]:
    """The best-matching convention and its roles."""
    best = max(_CONVENTIONS, key=lambda c: (_score(skeleton, c, _match_convention(skeleton, _CONVENTIONS[c])),
                                            -list(_CONVENTIONS).index(c)))
    return best, _match_convention(skeleton, _CONVENTIONS[best])


def _problems(skeleton: Skeleton, roles: dict[str, list[int]]) -> list[str]:
    """What is wrong with a role assignment: missing required roles, chains out of order."""
    missing = [r for r in REQUIRED if not roles.get(r)]
    if missing:
        return missing
    bad = []
    for chain in _chains_of(roles):
        for a, b in zip(chain[:-1], chain[1:]):
            if a not in skeleton.ancestors(b):
                bad.append(f"{skeleton.names[b]} is not below {skeleton.names[a]}")
    return bad


def _chains_of(roles: dict[str, list[int]]) -> list[list[int]]:
    centre = roles["pelvis"] + roles.get("spine", []) + roles.get("neck", []) + roles["head"]
    return [centre] + [[j for r in limb for j in roles.get(f"{s}_{r}", [])] for s in SIDES for limb in (ARM, LEG)]


# ---- finding roles from topology and rest geometry ----------------------------------------------------------------
def _from_topology(skeleton: Skeleton) -> dict[str, list[int]]:
    """Roles from the tree and the identity rest pose (see the module docstring); raises `NotHumanoidError`."""
    pos = fk(R.quat_identity((len(skeleton),)), skeleton.offsets, skeleton.parents)[1]
    pelvis = next((j for j in range(len(skeleton)) if len(skeleton.children[j]) >= 3), None)
    if pelvis is None:
        raise _not_humanoid(["pelvis", "left_thigh", "right_thigh", "left_upper_arm", "right_upper_arm"])
    subs = sorted(skeleton.children[pelvis], key=lambda c: -len(skeleton.subtree(c)))
    torso, legs = subs[0], sorted(subs[1:], key=lambda c: _lowest(skeleton, pos, c))[:2]
    up = _unit(pos[skeleton.subtree(torso)].mean(0) - pos[[_tip(skeleton, c) for c in legs]].mean(0))
    roles: dict[str, list[int]] = {"pelvis": [pelvis]}
    centre, arms = _centre_and_arms(skeleton, torso, pos, up)
    chest_at = max(i for i, j in enumerate(centre) if any(_tip(skeleton, a) and skeleton.parents[a] == j
                                                          for a in arms)) if arms else len(centre) - 1
    roles["spine"], rest = centre[:chest_at + 1], centre[chest_at + 1:]
    if rest and not skeleton.children[rest[-1]] and len(rest) >= 3 and rest[-1] not in skeleton.end_sites:
        rest = rest[:-1]
    roles["head"], roles["neck"] = rest[-1:], rest[:-1]
    forward = _forward_from_feet(skeleton, pos, legs, up)
    left_axis = np.cross(up, forward)
    for limbs, names in ((legs, LEG), (arms[:2], ARM)):
        for c in limbs:
            side = "left" if pos[skeleton.subtree(c)].mean(0) @ left_axis > pos[pelvis] @ left_axis else "right"
            _assign_limb(skeleton, pos, _chain_from(skeleton, c), names, side, roles)
    problems = _problems(skeleton, roles) if roles["head"] else ["head"]
    if problems:
        raise _not_humanoid(problems)
    return roles


def _centre_and_arms(skeleton: Skeleton, torso: int, pos: np.ndarray, up: np.ndarray) -> tuple[list[int], list[int]]:
    """The centre chain from ``torso`` upwards, and the roots of the side branches off it (arms, largest first)."""
    centre, arms = [torso], []
    while skeleton.children[centre[-1]]:
        kids = skeleton.children[centre[-1]]
        nxt = max(kids, key=lambda c: (pos[skeleton.subtree(c)] @ up).max() - 0.01 * len(skeleton.subtree(c)))
        if len(kids) >= 3:
            arms += sorted((k for k in kids if k != nxt), key=lambda c: -len(skeleton.subtree(c)))[:2]
        centre.append(nxt)
    return centre, arms


def _forward_from_feet(skeleton: Skeleton, pos: np.ndarray, legs: list[int], up: np.ndarray) -> np.ndarray:
    """The facing direction: the horizontal direction from the ankles to the toes."""
    v = sum((pos[_tip(skeleton, c)] - pos[skeleton.parents[_tip(skeleton, c)]] for c in legs), np.zeros(3))
    v = v - (v @ up) * up
    if np.linalg.norm(v) < 1e-9:
        raise NotHumanoidError("the legs end without feet pointing forward: cannot tell left from right; give a "
                               "joint map (--joint-map)", ("left_foot", "right_foot"))
    return _unit(v)


def _chain_from(skeleton: Skeleton, j: int) -> list[int]:
    chain = [j]
    while skeleton.children[chain[-1]]:
        chain.append(max(skeleton.children[chain[-1]], key=lambda c: len(skeleton.subtree(c))))
    return chain


def _assign_limb(skeleton: Skeleton, pos: np.ndarray, chain: list[int], names: tuple[str, ...], side: str,
                 roles: dict[str, list[int]]) -> None:
    """Arm (clavicle, upper arm, forearm, hand) or leg (thigh, shin, foot, toe) roles along a chain: the upper
    segment starts at the longest of the first bones; a clavicle is the joint before it."""
    lengths = [np.linalg.norm(pos[b] - pos[a]) for a, b in zip(chain[:-1], chain[1:])]
    if len(lengths) < 2:
        return
    first = int(np.argmax(lengths[:max(1, len(lengths) - 1)]))
    main = names[1:] if names[0] == "clavicle" else names
    if names[0] == "clavicle" and first > 0:
        roles[f"{side}_clavicle"] = [chain[first - 1]]
    for role, j in zip(main, chain[first:]):
        roles[f"{side}_{role}"] = [j]


def _lowest(skeleton: Skeleton, pos: np.ndarray, j: int) -> float:
    """How far below joint 0 the subtree of ``j`` reaches relative to its size (legs: low, long, unbranched)."""
    sub = skeleton.subtree(j)
    branching = sum(len(skeleton.children[k]) > 1 for k in sub)
    return branching * 1e9 - float(np.linalg.norm(pos[_tip(skeleton, j)] - pos[skeleton.parents[j]]))


def _tip(skeleton: Skeleton, j: int) -> int:
    return _chain_from(skeleton, j)[-1]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else v


def _not_humanoid(missing: list[str]) -> NotHumanoidError:
    return NotHumanoidError(f"not a humanoid skeleton: no {', '.join(missing)} found (from names or topology); "
                            f"give a joint map (--joint-map) if it is one", tuple(missing))


# ---- joint maps ---------------------------------------------------------------------------------------------------
def load_joint_map(path: str | Path) -> dict[str, str | list[str]]:
    """A YAML joint map: role → joint name, or a list of names for chains (``spine: [Spine, Chest]``).

    Raises `MotionsynthError` naming the file for a file that cannot be read, is no mapping, or names unknown roles.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise MotionsynthError(f"{path}: cannot read the joint map: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise MotionsynthError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict) or not all(isinstance(v, (str, list)) for v in data.values()):
        raise MotionsynthError(f"{path}: a joint map is a mapping of role → joint name (or list of names)")
    known = set(ROLES) | set(CHAINS) | set(GROUPS)
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise MotionsynthError(f"{path}: unknown roles {', '.join(unknown)}; roles are {', '.join(sorted(known))}")
    return {str(k): v for k, v in data.items()}


def _from_joint_map(skeleton: Skeleton, joint_map: dict, where: str) -> dict[str, list[int]]:
    missing = [n for v in joint_map.values() for n in ([v] if isinstance(v, str) else v) if n not in skeleton.names]
    if missing:
        raise MotionsynthError(f"{where}: no joints named {', '.join(map(str, missing))} in the skeleton "
                               f"({len(skeleton)} joints: {', '.join(skeleton.names[:8])}…)")
    return {role: [skeleton.index(n) for n in ([v] if isinstance(v, str) else v)] for role, v in joint_map.items()}


# ---- joints without a role ----------------------------------------------------------------------------------------
def _classify_rest(skeleton: Skeleton, roles: dict[str, list[int]]) -> dict[int, str]:
    """Why each joint without a role has none; fills the group roles (fingers, twist, extra) in ``roles``."""
    taken = {j for v in roles.values() for j in v}
    hands = {s: roles.get(f"{s}_hand", [None])[0] for s in SIDES}
    unmapped: dict[int, str] = {}
    for g in GROUPS:
        roles.setdefault(g, [])
    for j in range(len(skeleton)):
        if j in taken:
            continue
        _, base = _side_and_base(skeleton.names[j])
        hand_side = next((s for s in SIDES if hands[s] is not None and hands[s] in skeleton.ancestors(j)), None)
        if any(w in base for w in _TWIST_WORDS):
            roles["twist"].append(j)
            unmapped[j] = "twist bone"
        elif hand_side and (any(w in base for w in (*_FINGER_WORDS, *_METACARPAL_WORDS)) or skeleton.children[j]):
            roles[f"{hand_side}_fingers"].append(j)
            unmapped[j] = "finger"
        else:
            roles["extra"].append(j)
            unmapped[j] = _why_extra(skeleton, roles, j, base)
    return unmapped


def _why_extra(skeleton: Skeleton, roles: dict[str, list[int]], j: int, base: str) -> str:
    if j in skeleton.ancestors(roles["pelvis"][0]):
        return "above the pelvis"
    if not skeleton.children[j] or any(w in base for w in _END_WORDS):
        return "end joint"
    return "helper joint"


def finger_key(name: str) -> tuple[str | None, str, int] | None:
    """(side, finger, segment) of a finger joint name — ``LeftHandIndex2`` → ("left", "index", 2); metacarpals
    (``LeftInHandIndex``) are segment 0 — or None when the name names no finger."""
    side, base = _side_and_base(name)
    finger = next((f for w, f in _FINGER_WORDS.items() if w in base), None)
    if finger is None:
        return None
    digits = re.findall(r"\d+", base)
    segment = 0 if any(w in base for w in _METACARPAL_WORDS) else (int(digits[-1]) if digits else 1)
    return side, finger, segment


# ---- reference pose and its geometry -------------------------------------------------------------------------------
_SNAP_COS = np.cos(np.deg2rad(15.0))


def _snap(v: np.ndarray) -> np.ndarray:
    """A unit vector, snapped to the nearest coordinate axis when within 15° of it."""
    v = _unit(v)
    k = int(np.argmax(np.abs(v)))
    if abs(v[k]) >= _SNAP_COS:
        out = np.zeros(3)
        out[k] = np.sign(v[k])
        return out
    return v


def _frame(pos: np.ndarray, roles: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(up, forward) of a pose: up from the feet to the head, left from right to left limbs, forward = left × up."""
    feet = [roles[f"{s}_foot"][0] for s in SIDES]
    up = _snap(pos[roles["head"][0]] - pos[feet].mean(0))
    left = sum((pos[roles[f"left_{r}"][0]] - pos[roles[f"right_{r}"][0]] for r in ("upper_arm", "thigh")),
               np.zeros(3))
    left = left - (left @ up) * up
    forward = _snap(np.cross(left, up))
    forward = _unit(forward - (forward @ up) * up)
    return up, forward


def _is_standing(pos: np.ndarray, roles: dict[str, list[int]]) -> bool:
    """Whether a pose stands: both legs point away from the spine, and the arms and legs are on opposite sides."""
    spine = _unit(pos[roles["head"][0]] - pos[roles["pelvis"][0]])
    legs = [_unit(pos[roles[f"{s}_foot"][0]] - pos[roles[f"{s}_thigh"][0]]) for s in SIDES]
    across = _unit(pos[roles["left_thigh"][0]] - pos[roles["right_thigh"][0]])
    arms = _unit(pos[roles["left_upper_arm"][0]] - pos[roles["right_upper_arm"][0]])
    return all(leg @ spine < -0.7 for leg in legs) and across @ arms > 0.5 and abs(across @ spine) < 0.5


def _bone(skel: Skeleton, pos: np.ndarray, j: int, nxt: int | None) -> np.ndarray:
    """(3,) world vector of joint j's bone in a pose: to the next joint of its chain, else the mean of its
    children, else its end site (zero when it has none)."""
    if nxt is not None:
        return pos[nxt] - pos[j]
    if skel.children[j]:
        return pos[skel.children[j]].mean(0) - pos[j]
    return np.zeros(3)


_T_POSE = {"spine": (0, 1, 0), "neck": (0, 1, 0), "head": (0, 1, 0), "left_clavicle": (1, 0, 0),
           "left_upper_arm": (1, 0, 0), "left_forearm": (1, 0, 0), "left_hand": (1, 0, 0),
           "left_fingers": (1, 0, 0), "left_thigh": (0, -1, 0), "left_shin": (0, -1, 0),
           "left_foot": (0, -0.45, 1), "left_toe": (0, 0, 1)}
"""World bone directions of the synthesised T-pose (+Y up, +Z forward, left +X); right roles mirror X."""


def _t_pose_direction(role: str | None) -> np.ndarray | None:
    if role is None or role in ("pelvis", "twist", "extra"):
        return None
    key = role.replace("right_", "left_")
    if key not in _T_POSE:
        return None
    d = np.array(_T_POSE[key], dtype=float)
    if role.startswith("right_"):
        d[0] = -d[0]
    return _unit(d)


def _t_pose(bm: BodyMap, start: np.ndarray | None = None) -> np.ndarray:
    """(J, 4) local rotations putting the skeleton into a T-pose in the project frame (see `_T_POSE`); the pelvis
    and chest are turned so that their left-side children are at +X; joints without a role keep their local
    rotation. From ``start`` ((J, 4) local rotations; None: identity): each bone is turned from its ``start``
    direction by the smallest rotation, so the twist about it is the one it has in ``start`` — a natural pose of the
    rig (`natural_map`) gives a T-pose with natural twists."""
    skel = bm.skeleton
    J = len(skel)
    start = R.quat_identity((J,)) if start is None else R.quat_normalize(np.asarray(start, dtype=np.float64))
    g0, pos0 = fk(start, skel.offsets, skel.parents)
    local, glob = start.copy(), R.quat_identity((J,))
    for j in range(J):
        p = skel.parents[j]
        gp = glob[p] if p >= 0 else R.quat_identity()
        carried = R.quat_mul(gp, start[j])  # j's start pose under its new parent
        turn = R.quat_mul(carried, R.quat_inv(g0[j]))  # start world → carried world
        target = _target_rotation(bm, j, pos0, turn)
        glob[j] = R.quat_mul(target, carried) if target is not None else carried
        local[j] = R.quat_mul(R.quat_inv(gp), glob[j])
    return R.quat_normalize(local)


def _target_rotation(bm: BodyMap, j: int, pos0: np.ndarray, turn: np.ndarray) -> np.ndarray | None:
    """The world rotation turning joint j's bone (in the start pose ``pos0``, then by ``turn``) onto its T-pose
    direction — for the pelvis and chest, its bone and left side onto +Y and +X (None: no change)."""
    u = R.quat_apply(turn, _bone(bm.skeleton, pos0, j, bm.next_joint(j)))
    if j in (bm.roles["pelvis"][0], bm.chest()):
        side = R.quat_apply(turn, _side_vector(bm, j, pos0))
        return rotation_between_frames(u, side, np.array([0.0, 1, 0]), np.array([1.0, 0, 0]))
    d = _t_pose_direction(bm.role_of(j))
    if d is None or np.linalg.norm(u) < 1e-9:
        return None
    return rotation_between(u, d)


def _side_vector(bm: BodyMap, j: int, pos: np.ndarray) -> np.ndarray:
    """Left-minus-right vector at the pelvis (thighs) or chest (clavicles, else upper arms)."""
    if j == bm.roles["pelvis"][0] and j != bm.chest():
        pair = "thigh"
    else:
        pair = "clavicle" if bm.roles.get("left_clavicle") and bm.roles.get("right_clavicle") else "upper_arm"
    return pos[bm.roles[f"left_{pair}"][0]] - pos[bm.roles[f"right_{pair}"][0]]


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 4) the smallest rotation taking directions ``a`` onto ``b`` (..., 3); 180° turns about an axis
    perpendicular to ``a``; identity where either is zero."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    ok = (na[..., 0] > 1e-12) & (nb[..., 0] > 1e-12)
    a, b = a / np.where(na > 1e-12, na, 1), b / np.where(nb > 1e-12, nb, 1)
    q = np.concatenate([np.cross(a, b), 1 + (a * b).sum(-1, keepdims=True)], -1)
    flip = q[..., 3] < 1e-9
    if flip.any():
        perp = np.cross(a, np.eye(3)[np.argmin(np.abs(a), axis=-1)])
        q[flip] = np.concatenate([perp[flip], np.zeros_like(perp[flip][..., :1])], -1)
    q[~ok] = R.quat_identity()
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def rotation_between_frames(a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """(4,) the rotation taking direction ``a1`` exactly onto ``b1`` and ``a2`` as close as possible to ``b2``."""
    fa, fb = _basis(a1, a2), _basis(b1, b2)
    return R.matrix_to_quat(fb @ fa.T)


def _basis(v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal columns: v1, v2 made orthogonal to it, their cross product."""
    e1 = _unit(v1)
    e2 = v2 - (v2 @ e1) * e1
    if np.linalg.norm(e2) < 1e-9:
        e2 = np.cross(e1, np.eye(3)[int(np.argmin(np.abs(e1)))])
    e2 = _unit(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def _measure(bm: BodyMap) -> None:
    """Fill up, forward, height and leg_length from the reference pose."""
    pos = bm.rest_positions()
    glob = bm.rest_globals()
    bm.up, bm.forward = _frame(pos, bm.roles)
    skel = bm.skeleton
    feet = [j for s in SIDES for r in ("foot", "toe") for j in bm.roles.get(f"{s}_{r}", [])]
    points = list(pos[feet]) + [pos[j] + R.quat_apply(glob[j], skel.end_sites[j]) for j in feet
                                if j in skel.end_sites]
    floor = min(float(p @ bm.up) for p in points)
    head = bm.roles["head"][0]
    top = pos[head] + (R.quat_apply(glob[head], skel.end_sites[head]) if head in skel.end_sites else 0)
    bm.height = float(top @ bm.up - floor)
    legs = []
    for s in SIDES:
        thigh, shin, foot = (bm.roles[f"{s}_{r}"][0] for r in ("thigh", "shin", "foot"))
        # hip → knee → ankle only: the ankle's height above the floor needs a toe or heel, which a rig fitted to
        # keypoints may not have (it would scale such a rig's root ~6 % too high)
        legs.append(np.linalg.norm(pos[shin] - pos[thigh]) + np.linalg.norm(pos[foot] - pos[shin]))
    bm.leg_length = float(np.mean(legs))


def natural_map(skeleton: Skeleton, pose: np.ndarray) -> BodyMap:
    """The body map of ``skeleton`` (`body_map`) with a T-pose reference made from ``pose`` ((J, 4) local rotations
    of a natural pose of the rig, e.g. a model's mean pose): every bone turned into the T-pose by the smallest
    rotation, so each keeps the twist it has in real motion of this rig. Retargeting onto such a map gives local
    rotations like the rig's own data — what a model trained on it expects (a rig whose identity pose is no
    standing pose has no natural twist otherwise). Not cached: keep the result."""
    base = body_map(skeleton)
    bm = BodyMap(skeleton, base.roles, base.unmapped, base.convention, rest_rotations=_t_pose(base, pose),
                 synthesised_rest=True)
    _measure(bm)
    return bm


# ---- the entry point ----------------------------------------------------------------------------------------------
_CACHE = "_motionsynth_body_map"
"""Attribute of a `Skeleton` holding its body map found without a joint map (the skeleton's lifetime is the cache's)."""


def body_map(skeleton: Skeleton, joint_map: dict[str, str | list[str]] | None = None, *,
             where: str = "joint map") -> BodyMap:
    """The `BodyMap` of a skeleton: from ``joint_map`` (role → joint name or names) when given, else from names,
    else from topology. Raises `NotHumanoidError` naming the roles it lacks, `MotionsynthError` for a joint map
    naming joints the skeleton lacks or missing required roles (``where`` names it in messages).

    Without a joint map the result is computed once per skeleton object and shared by later calls (skeletons are
    not modified after construction): treat it as read-only."""
    if joint_map is None:
        cached = skeleton.__dict__.get(_CACHE)
        if isinstance(cached, BodyMap) and cached.skeleton is skeleton:
            return cached
    bm = _body_map(skeleton, joint_map, where)
    if joint_map is None:
        skeleton.__dict__[_CACHE] = bm
    return bm


def _body_map(skeleton: Skeleton, joint_map: dict[str, str | list[str]] | None, where: str) -> BodyMap:
    if joint_map is not None:
        roles, convention = _from_joint_map(skeleton, joint_map, where), "joint map"
        problems = _problems(skeleton, roles)
        if problems:
            raise NotHumanoidError(f"{where}: {'; '.join(problems)} — the map must name at least "
                                   f"{', '.join(REQUIRED)}", tuple(p for p in problems if p in REQUIRED))
    else:
        convention, roles = _from_names(skeleton)
        if _problems(skeleton, roles):
            roles, convention = _from_topology(skeleton), "topology"
    roles.setdefault("spine", [])
    roles.setdefault("neck", [])
    unmapped = _classify_rest(skeleton, roles)
    bm = BodyMap(skeleton, roles, unmapped, convention, rest_rotations=R.quat_identity((len(skeleton),)))
    if not _is_standing(bm.rest_positions(), roles):
        bm.rest_rotations, bm.synthesised_rest = _t_pose(bm), True
    _measure(bm)
    return bm
