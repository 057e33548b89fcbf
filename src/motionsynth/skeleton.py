"""`Skeleton`: the joint tree a motion is defined on.

Joints are stored in **topological order** (every parent index is smaller than its child's; ``parents[0] == -1``),
which is the order of a BVH file. ``offsets[j]`` is joint j's rest translation in its parent's frame.

``root`` is the *moving root*: the joint that carries the character's trajectory. It is not always joint 0 — the
Bandai Namco files put a static ``joint_Root`` above ``Hips`` — so readers set it to the first joint whose translation
changes over time.

Symmetry (left/right) and body-part groups are derived from joint names and topology, and can be overridden by
passing ``symmetry=`` / ``groups=``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import SkeletonMismatchError

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")

GROUP_NAMES = ("torso", "head", "left_arm", "right_arm", "left_leg", "right_leg", "upper", "lower")
GROUP_TITLES = {"upper": "upper body", "lower": "lower body", "left_arm": "left arm", "right_arm": "right arm",
                "left_leg": "left leg", "right_leg": "right leg", "torso": "torso", "head": "head"}
"""Body-part groups by the names people use (the editor shows these; `Skeleton.joints` reads them and the keys)."""


def _part_key(text: str) -> str:
    """A body-part name as typed → its comparison form: case, spaces, hyphens and underscores alike."""
    return re.sub(r"[\s_\-]+", "_", text.strip().lower())


_PART_KEYS = {**{_part_key(g): g for g in GROUP_NAMES}, **{_part_key(t): g for g, t in GROUP_TITLES.items()}}

# (pattern, left replacement, right replacement): a name matching the left form has the right form as its mirror.
_SIDE_PATTERNS = [
    (r"^(.*[_.\- ])L$", r"\1L", r"\1R"),  # Hand_L, hand.L
    (r"^(.*[_.\- ])l$", r"\1l", r"\1r"),  # hand_l
    (r"^L([_.\- ].*)$", r"L\1", r"R\1"),  # L_Hand
    (r"^l([_.\- ].*)$", r"l\1", r"r\1"),  # l_hand
    (r"^(.*)Left(.*)$", r"\1Left\2", r"\1Right\2"),  # LeftArm, mixamorig:LeftHand
    (r"^(.*)left(.*)$", r"\1left\2", r"\1right\2"),  # left_hip (SMPL)
    (r"^(.*)LEFT(.*)$", r"\1LEFT\2", r"\1RIGHT\2"),
    (r"^L([A-Z].*)$", r"L\1", r"R\1"),  # LHipJoint (CMU)
    (r"^(.*[a-z])L$", r"\1L", r"\1R"),  # HandL
]


def joint_side(name: str) -> str | None:
    """'left', 'right' or None, from a joint name (``Hand_L``, ``LeftArm``, ``l_hip``, ``LHipJoint``…)."""
    for pattern, _, _ in _SIDE_PATTERNS:
        if re.match(pattern, name):
            return "left"
        if re.match(_right_form(pattern), name):
            return "right"
    return None


def _right_form(pattern: str) -> str:
    """The regex matching the right-hand form of a left-hand pattern in `_SIDE_PATTERNS`."""
    return pattern.replace("Left", "Right").replace("left", "right").replace("LEFT", "RIGHT") \
        .replace("L$", "R$").replace("l$", "r$").replace("^L", "^R").replace("^l", "^r")


def _mirror_name(name: str) -> str | None:
    for pattern, left, right in _SIDE_PATTERNS:
        if re.match(pattern, name):
            return re.sub(pattern, right, name)
        if re.match(_right_form(pattern), name):
            return re.sub(_right_form(pattern), left, name)
    return None


@dataclass(eq=False)
class Skeleton:
    """A joint tree.

    Attributes:
        names: (J,) joint names, unique.
        parents: (J,) int parent indices, -1 for joint 0; ``parents[j] < j``.
        offsets: (J, 3) rest translations in the parent's frame (file units, cm for the project's data).
        channels: per joint, the BVH channel names in file order (``()`` for none). Readers of other formats use
            ``("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")`` on the root and
            rotation channels elsewhere.
        end_sites: joint index → (3,) offset of its BVH ``End Site``.
        root: index of the moving root (carries the trajectory).
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[tuple[str, ...]] = None  # type: ignore[assignment]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)
    root: int = 0
    symmetry_override: list[int] | None = None
    groups_override: dict[str, list[int]] | None = None

    def __post_init__(self):
        self.names = list(self.names)
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        J = len(self.names)
        if self.channels is None:
            self.channels = [POSITION_CHANNELS + ("Zrotation", "Yrotation", "Xrotation") if j == self.root
                             else ("Zrotation", "Yrotation", "Xrotation") for j in range(J)]
        self.channels = [tuple(c) for c in self.channels]
        self.end_sites = {int(k): np.asarray(v, dtype=np.float64).reshape(3) for k, v in self.end_sites.items()}
        if not (len(self.parents) == len(self.offsets) == len(self.channels) == J):
            raise ValueError(f"skeleton: {J} names, {len(self.parents)} parents, {len(self.offsets)} offsets, "
                             f"{len(self.channels)} channel lists — they must agree")
        if len(set(self.names)) != J:
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"skeleton: duplicate joint names {dup}")
        if J == 0 or self.parents[0] != -1 or any(not (0 <= p < j) for j, p in enumerate(self.parents) if j > 0):
            raise ValueError("skeleton: joints must be in topological order with parents[0] == -1")
        if not 0 <= self.root < J:
            raise ValueError(f"skeleton: root index {self.root} out of range")

    # ---- basic structure ---------------------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a joint by name (KeyError naming the known joints when absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r}; joints are {self.names}") from None

    @cached_property
    def children(self) -> list[list[int]]:
        """children[j]: indices of j's child joints."""
        out: list[list[int]] = [[] for _ in self.names]
        for j, p in enumerate(self.parents):
            if p >= 0:
                out[p].append(j)
        return out

    @cached_property
    def depth(self) -> np.ndarray:
        """(J,) number of edges from joint 0."""
        d = np.zeros(len(self), dtype=np.int64)
        for j in range(1, len(self)):
            d[j] = d[self.parents[j]] + 1
        return d

    @cached_property
    def chains(self) -> list[list[int]]:
        """Kinematic chains: maximal unbranched paths, each starting at joint 0 or at a branching joint's child.

        Every joint appears in exactly one chain, e.g. [[0, 1, 2, 3], [4, 5, 6], …].
        """
        chains, stack = [], [[0]]
        while stack:
            chain = stack.pop(0)
            while len(self.children[chain[-1]]) == 1:
                chain.append(self.children[chain[-1]][0])
            chains.append(chain)
            stack.extend([[c] for c in self.children[chain[-1]]])
        return chains

    def subtree(self, j: int) -> list[int]:
        """Joint j and all its descendants, in index order."""
        inside = np.zeros(len(self), dtype=bool)
        inside[j] = True
        for k in range(j + 1, len(self)):
            inside[k] = inside[self.parents[k]]
        return [int(k) for k in np.flatnonzero(inside)]

    def ancestors(self, j: int) -> list[int]:
        """Joints from j's parent up to joint 0."""
        out = []
        while self.parents[j] >= 0:
            j = int(self.parents[j])
            out.append(j)
        return out

    # ---- symmetry and body parts -------------------------------------------------------------------------------
    @cached_property
    def sides(self) -> list[str | None]:
        """Per joint 'left', 'right' or None (centre), from names."""
        return [joint_side(n) if _mirror_name(n) in self.names else None for n in self.names]

    @cached_property
    def symmetry(self) -> np.ndarray:
        """(J,) index of each joint's mirror image (itself for centre joints)."""
        if self.symmetry_override is not None:
            return np.asarray(self.symmetry_override, dtype=np.int64)
        out = np.arange(len(self))
        for j, n in enumerate(self.names):
            m = _mirror_name(n)
            if m is not None and m in self.names:
                out[j] = self.names.index(m)
        return out

    @cached_property
    def groups(self) -> dict[str, list[int]]:
        """Body-part groups: torso, head, left/right arm, left/right leg, upper, lower (lists of joint indices).

        Found from topology and sides: legs are the one-sided subtrees hanging from the moving root; arms the
        one-sided subtrees of the spine; the head is the centre chain above the arm branch. The moving root and its
        static ancestors are torso *and* lower body; "upper" is everything above the root except the legs.
        """
        if self.groups_override is not None:
            return {k: list(v) for k, v in self.groups_override.items()}
        g: dict[str, list[int]] = {k: [] for k in GROUP_NAMES}
        root = self.root
        base = sorted(self.ancestors(root) + [root])
        g["torso"] += base
        spine_roots = []
        for c in self.children[root]:
            side = self._subtree_side(c)
            if side:
                g[f"{side}_leg"] += self.subtree(c)
            else:
                spine_roots.append(c)
        for s in spine_roots:
            self._split_spine(s, g)
        g["lower"] = sorted(base + g["left_leg"] + g["right_leg"])
        g["upper"] = sorted(set(range(len(self))) - set(g["lower"]))
        return {k: sorted(set(v)) for k, v in g.items()}

    def _subtree_side(self, j: int) -> str | None:
        sides = {self.sides[k] for k in self.subtree(j)}
        return sides.pop() if len(sides) == 1 and None not in sides else None

    def _split_spine(self, j: int, g: dict[str, list[int]]) -> None:
        """Walk up the centre chain from j: one-sided side branches are arms; above the last arm branch is head."""
        chain = [j]
        while True:
            centre = [c for c in self.children[chain[-1]] if self._subtree_side(c) is None]
            if len(centre) != 1:
                break
            chain.append(centre[0])
        branch_at = max((i for i, k in enumerate(chain) if any(self._subtree_side(c) for c in self.children[k])),
                        default=None)
        for i, k in enumerate(chain):
            for c in self.children[k]:
                side = self._subtree_side(c)
                if side:
                    g[f"{side}_arm"] += self.subtree(c)
            if branch_at is None or i <= branch_at:
                g["torso"].append(k)
            else:
                g["head"] += self.subtree(k) if i == branch_at + 1 else []
        for k in self.children[chain[-1]]:  # centre branches beyond the chain's end (unusual) join the torso
            if not self._subtree_side(k) and k not in g["head"]:
                g["torso"] += self.subtree(k)

    def joints(self, spec: str | int | list[str | int]) -> list[int]:
        """Joint indices (sorted, once each) from body parts, joint names and indices: a body part by the name the
        editor shows or its group key — ``upper body``, ``upper``, ``left arm``, ``left-arm``, ``left_arm`` (any case;
        spaces, hyphens and underscores alike; `GROUP_TITLES`) —, a joint name, an index, or a list of these. A string
        may list several, comma-separated (or space-separated where it is not one name as a whole: ``upper head``).
        A `KeyError` listing the valid body parts and joints for anything else."""
        items = [spec] if isinstance(spec, (str, int, np.integer)) else list(spec)
        out: list[int] = []
        for item in items:
            if isinstance(item, (int, np.integer)):
                out.append(int(item))
                continue
            for piece in str(item).split(","):
                if piece.strip():
                    out += self._part(piece.strip())
        return sorted(set(out))

    def part_names(self) -> list[str]:
        """The body parts of this skeleton (its non-empty groups) by the names people use (`GROUP_TITLES`)."""
        order = [*GROUP_TITLES, *(g for g in self.groups if g not in GROUP_TITLES)]
        return [GROUP_TITLES.get(g, g.replace("_", " ")) for g in order if self.groups.get(g)]

    def _part(self, text: str) -> list[int]:
        """One body part or joint (`joints`): a group key as written, a joint name as written, then a body part by
        any of its names."""
        if text.replace("-", "_") in self.groups and self.groups[text.replace("-", "_")]:
            return self.groups[text.replace("-", "_")]
        if text in self.names:
            return [self.names.index(text)]
        group = _PART_KEYS.get(_part_key(text), _part_key(text))
        if self.groups.get(group):
            return self.groups[group]
        words = text.split()
        if len(words) > 1:
            try:
                return [j for w in words for j in self._part(w)]
            except KeyError:
                pass
        raise KeyError(f"no body part or joint named {text!r}; body parts: {', '.join(self.part_names())} (spaces, "
                       f"hyphens or underscores alike: left arm, left-arm, left_arm); joints: {', '.join(self.names)}")

    # ---- comparison and serialisation --------------------------------------------------------------------------
    def check_compatible(self, other: Skeleton, atol: float = 1e-2, what: str = "motion") -> None:
        """Raise `SkeletonMismatchError` unless ``other`` has the same joints, tree and (non-root) bone offsets."""
        if self.names != other.names or not np.array_equal(self.parents, other.parents):
            missing = [n for n in self.names if n not in other.names]
            extra = [n for n in other.names if n not in self.names]
            raise SkeletonMismatchError(
                f"the {what} uses a different skeleton ({len(other)} joints vs {len(self)}; "
                f"missing {missing[:5]}, unexpected {extra[:5]})")
        moving = [j for j in range(len(self)) if j != self.root and j != other.root]
        diff = np.abs(self.offsets[moving] - other.offsets[moving]).max(initial=0.0)
        if diff > atol * max(1.0, np.abs(self.offsets).max()):
            raise SkeletonMismatchError(f"the {what} has the same joints but different bone lengths "
                                        f"(largest offset difference {diff:.3g})")

    def to_dict(self) -> dict:
        return {
            "names": self.names, "parents": self.parents.tolist(), "offsets": self.offsets.tolist(),
            "channels": [list(c) for c in self.channels],
            "end_sites": {str(k): v.tolist() for k, v in self.end_sites.items()}, "root": int(self.root),
            "symmetry_override": self.symmetry_override, "groups_override": self.groups_override,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Skeleton:
        return cls(names=d["names"], parents=d["parents"], offsets=d["offsets"],
                   channels=[tuple(c) for c in d["channels"]],
                   end_sites={int(k): v for k, v in d.get("end_sites", {}).items()}, root=int(d.get("root", 0)),
                   symmetry_override=d.get("symmetry_override"), groups_override=d.get("groups_override"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Skeleton:
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return f"Skeleton({len(self)} joints, root={self.names[self.root]!r})"
