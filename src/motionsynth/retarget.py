"""Retargeting: a motion of one humanoid skeleton onto another (`Retargeter`, `retarget`).

Method — world-space deltas with rest alignment, which makes the direction of every mapped bone exact:

- ``C``: the rotation taking the source's body frame (left, up, forward of its reference pose, `body.BodyMap`) onto
  the target's; it also converts Z-up to Y-up.
- For a target joint t fed by a source joint s, the source's world-rotation delta from its reference pose is
  ``D(t) = G_src(t) · G_src_ref⁻¹`` and the target's world rotation ``G_tgt(t) = (C D(t) C⁻¹) · A · G_tgt_ref``, where
  ``A`` is the smallest rotation taking the target's reference bone direction onto ``C`` × the source's (bone
  direction: towards the next joint of the body chain; at the pelvis and chest a full frame with the left-minus-right
  vector of the hips / shoulders, so the hips and shoulders line up too). Then world → local via the target parents.
  Going back (target → source) inverts this exactly for every directly mapped joint: the pelvis, chest, clavicles,
  limbs and head come back with their own world rotations.
- Spine and neck chains of different lengths map by fraction along the chain (D interpolated by slerp; the chest and
  head ends exactly). The intermediate joints of such a target chain are then turned together (the smallest
  rotation, about the chain's first intermediate joint) so that the chain's end-to-end direction — from its first
  intermediate joint to its end, the chest or head — is ``C`` × the source chain's (from its first intermediate
  joint, or its start when it has none, to its end). The same rule going back restores the source chain's
  end-to-end direction, so a round trip moves the chest and head only by the change of the chain's end-to-end
  length (its bending), not of its direction.
- A target clavicle without a source one follows the source chest; a target toe without a source one the source
  foot; fingers map by finger name (side, finger, segment) when both rigs have them.
- Twist bones of the target (``twist`` role: Unreal ``upperarm_twist_01_l``, Character Creator ``…Twist…``) whose
  parent is mapped take a share of their parent's twist about its bone axis (the twist of the parent's local
  rotation relative to its reference one): the share is how far along the parent's bone the middle of the twist
  bone sits (0 at the joint, 1 at the next one; 0.5 when it sits on the joint with no bone of its own), so twist
  spreads along the limb — half the forearm's twist for a twist bone halfway down the forearm.
- Other target joints without a counterpart (helpers, unmatched fingers) keep their reference local rotation.
- Root: the target pelvis's world position is ``k · C · p_src(t)`` with ``k = leg_length_tgt / leg_length_src``, a
  similarity about the world origin, so a floor at height 0 stays at 0 and the feet stay on it.

Speed: everything skeleton-dependent is computed once per `Retargeter` (and body maps once per skeleton object,
`body.body_map`); a call is a few numpy operations on whole (joints, 4, frames) arrays — forward kinematics over the
source joints it needs, one batched 4 × 4 product for ``C · D · A · G_ref``, one for world → local — about 2 ms per
1,000 frames and 0.6 ms per 65-frame window on the 2-core development machine, for 22- to 60-joint rigs; building
a `Retargeter` for a pair of body maps seen recently is a dictionary look-up (`docs/BENCHMARKS.md`, "Retargeting").

Shapes: motions (T, J, 4) local quaternions (x, y, z, w); everything is vectorised over frames.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import rotations as R
from .body import BodyMap, body_map, finger_key, rotation_between, rotation_between_frames
from .motion import Motion
from .skeleton import Skeleton

_PLANS: OrderedDict[tuple[int, int], dict] = OrderedDict()
"""The last `_MAX_PLANS` retargeters' precomputed state, by (source, target) body map: building one again for the
same pair of maps (`retarget`, per-call construction) costs a dictionary look-up. Shared, read-only."""
_MAX_PLANS = 16


@dataclass
class _Pair:
    """Target joint ``t`` fed by source joints ``s0`` / ``s1`` mixed by ``w`` (slerp of their deltas)."""

    t: int
    s0: int
    s1: int
    w: float = 0.0


@dataclass
class _Chain:
    """A target spine or neck chain mapped by fraction (see the module docstring)."""

    slots: np.ndarray
    """Pair slots of the target chain's intermediate joints."""
    bones: np.ndarray
    """(n, 3, 1) their reference bone vectors (to the next chain joint) in their own frames."""
    src_path: list[int]
    """Source joints below the source chain's start point down to its end: their translations make its vector."""


class Retargeter:
    """Motion on ``source`` → motion on ``target``; everything skeleton-dependent is computed once here.

    Attributes:
        source, target: the two `BodyMap`.
        pairs: per mapped target joint, the source joints feeding it (``t``, ``s0``, ``s1``, slerp weight ``w``).
        mapped: (J_target,) bool, the target joints that receive motion from a source counterpart.
        exact: (J_target,) bool, the mapped joints whose bone direction is ``C`` × a source bone's exactly (direct
            pairs outside the chains mapped by fraction).
        twists: (twist joint, followed joint, share) of the target's driven twist bones (see the module docstring).
        driven: (J_target,) bool, the joints whose rotation the retargeting sets: ``mapped`` and the driven twist
            bones; the others keep their reference local rotation.
        scale: root-translation scale, target leg length / source leg length.
        C: (4,) quaternion taking the source body frame onto the target's.
    """

    def __init__(self, source: Skeleton | BodyMap, target: Skeleton | BodyMap):
        self.source = source if isinstance(source, BodyMap) else body_map(source)
        self.target = target if isinstance(target, BodyMap) else body_map(target)
        key = (id(self.source), id(self.target))
        hit = _PLANS.get(key)
        if hit is not None and hit["source"] is self.source and hit["target"] is self.target:
            _PLANS.move_to_end(key)
            self.__dict__.update(hit)
            return
        self.C = _frame_rotation(self.source, self.target)
        self.scale = self.target.leg_length / self.source.leg_length
        self.pairs = _pairs(self.source, self.target)
        self.mapped = np.zeros(len(self.target.skeleton), dtype=bool)
        self.mapped[[p.t for p in self.pairs]] = True
        self._prepare()
        _PLANS[key] = dict(self.__dict__)
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)

    # ---- precomputation ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        src, tgt, pairs = self.source, self.target, self.pairs
        s_skel, t_skel = src.skeleton, tgt.skeleton
        src_g_ref, tgt_g_ref, tgt_p_ref = src.rest_globals(), tgt.rest_globals(), tgt.rest_positions()
        self._tgt_ref_local = np.asarray(tgt.rest_rotations, dtype=np.float64)
        self._t = np.array([p.t for p in pairs])
        slot = {p.t: i for i, p in enumerate(pairs)}
        chains = self._target_chains(tgt_g_ref, tgt_p_ref, slot)
        self.exact = self.mapped.copy()
        for p in pairs:
            self.exact[p.t] &= p.w == 0
        for chain in chains:
            self.exact[self._t[chain.slots]] = False
        self._chains = chains

        # source forward kinematics over the joints needed (pairs, pelvis path, chain paths) and their ancestors
        need = {src.roles["pelvis"][0], *(p.s0 for p in pairs), *(p.s1 for p in pairs)}
        need |= {j for c in chains for j in c.src_path}
        need |= {a for j in list(need) for a in s_skel.ancestors(j)}
        self._src_joints = np.array(sorted(need))
        sslot = {j: i for i, j in enumerate(self._src_joints)}
        depth = {0: 0}
        for j in self._src_joints[1:]:
            depth[int(j)] = depth[int(s_skel.parents[j])] + 1
        self._levels = []
        for d in range(1, max(depth.values()) + 1):
            js = [j for j in self._src_joints if depth[int(j)] == d]
            self._levels.append((np.array([sslot[j] for j in js]), np.array([sslot[int(s_skel.parents[j])]
                                                                             for j in js])))
        self._sslot = sslot
        pelvis = src.roles["pelvis"][0]
        self._pelvis_path = [*s_skel.ancestors(pelvis)[::-1], pelvis]

        # C · D · C⁻¹ · A · G_ref as one 4 × 4 matrix per pair, acting on G_src(s0) (or on the slerped delta D)
        A = _alignments(src, tgt, pairs, self.C)
        right = R.quat_mul(R.quat_inv(self.C)[None], R.quat_mul(A, tgt_g_ref[self._t]))
        src_ref_inv = R.quat_inv(src_g_ref)
        w = np.array([p.w for p in pairs])
        self._mix = np.flatnonzero(w > 0)
        self._x_slot = np.array([sslot[p.s0] for p in pairs])
        s0 = [p.s0 for p in pairs]
        acting = np.where((w > 0)[:, None], right, R.quat_mul(src_ref_inv[s0], right))
        self._M = _lmat(self.C)[None] @ _rmat(acting)
        if len(self._mix):
            m = self._mix
            self._mix_w = w[m][:, None, None]
            self._mix_s = (np.array([sslot[pairs[i].s0] for i in m]), np.array([sslot[pairs[i].s1] for i in m]))
            self._mix_ref = (_rmat(src_ref_inv[[pairs[i].s0 for i in m]]),
                             _rmat(src_ref_inv[[pairs[i].s1 for i in m]]))

        # world → local: local(t) = S⁻¹ · G(a)⁻¹ · G(t), a the nearest mapped ancestor, S the reference locals between
        anc, S = [], []
        for p in pairs:
            ups = t_skel.ancestors(p.t)
            a = next((k for k in ups if k in slot), None)
            between = ups[:ups.index(a)] if a is not None else ups
            q = R.quat_identity()
            for k in between[::-1]:
                q = R.quat_mul(q, self._tgt_ref_local[k])
            anc.append(slot[a] if a is not None else len(pairs))
            S.append(q)
        self._anc = np.array(anc)
        self._S_inv = _lmat(R.quat_inv(np.array(S)))
        self._twist_plan(tgt_g_ref, tgt_p_ref, slot)
        self.driven = self.mapped.copy()
        self.driven[[x for x, _, _ in self.twists]] = True
        self._root_plan()

    def _target_chains(self, g_ref: np.ndarray, p_ref: np.ndarray, slot: dict[int, int]) -> list[_Chain]:
        src, tgt = self.source, self.target
        out = []
        for s_chain, t_chain in _chains(src, tgt):
            n, m = len(t_chain) - 1, len(s_chain) - 1
            a = 1 if m >= 2 else 0
            start, end = s_chain[a], s_chain[m]
            if n < 2 or m < 1 or n == m or start not in src.skeleton.ancestors(end):
                continue
            inner = t_chain[1:n]
            bones = np.array([R.quat_apply(R.quat_inv(g_ref[q]), p_ref[nxt] - p_ref[q])
                              for q, nxt in zip(inner, t_chain[2:])])
            path = [end, *src.skeleton.ancestors(end)]
            out.append(_Chain(np.array([slot[q] for q in inner]), bones[..., None], path[:path.index(start)][::-1]))
        return out

    def _twist_plan(self, g_ref: np.ndarray, p_ref: np.ndarray, slot: dict[int, int]) -> None:
        """Driven twist bones: (joint, parent's pair slot, parent's bone axis in its frame, share)."""
        tgt = self.target
        skel = tgt.skeleton
        mapped_below = {a for p in self.pairs for a in skel.ancestors(p.t)}
        self.twists: list[tuple[int, int, float]] = []
        rows = []
        for x in tgt.roles.get("twist", []):
            p = int(skel.parents[x])
            nxt = tgt.next_joint(p) if p in slot else None
            if nxt is None or x in mapped_below:
                continue
            bone = p_ref[nxt] - p_ref[p]
            length2 = float(bone @ bone)
            if length2 < 1e-18:
                continue
            point = p_ref[x] + 0.5 * _own_bone(skel, g_ref, p_ref, x) - p_ref[p]  # the twist bone's middle
            along = float(point @ bone) / length2
            share = float(np.clip(along, 0.0, 1.0)) if point @ point > 1e-12 * length2 else 0.5
            bone = R.quat_apply(R.quat_inv(g_ref[p]), bone)
            self.twists.append((x, p, share))
            rows.append((x, slot[p], bone / np.sqrt(length2), share))
        if rows:
            xs, ps, axes, shares = zip(*rows)
            ref = self._tgt_ref_local
            self._tw = (np.array(xs), np.array(ps), np.array(axes)[..., None], np.array(shares)[:, None],
                        _lmat(R.quat_inv(ref[[self.pairs[i].t for i in ps]])), _rmat(ref[list(xs)]))

    def _root_plan(self) -> None:
        """The target root's translation is ``G_parent⁻¹ (pelvis_world − w0)``: both constant (static joints)."""
        skel, ref = self.target.skeleton, self._tgt_ref_local
        root, pelvis = skel.root, self.target.roles["pelvis"][0]
        path = [j for j in [pelvis, *skel.ancestors(pelvis)] if j == root or root in skel.ancestors(j)][::-1]
        g_parent, parent_pos = R.quat_identity(), np.zeros(3)
        for j in skel.ancestors(root)[::-1]:
            parent_pos = parent_pos + R.quat_apply(g_parent, skel.offsets[j])
            g_parent = R.quat_mul(g_parent, ref[j])
        pos, rot = np.zeros(3), R.quat_identity()
        for j in path:  # FK from the root (at its offset, parent at the origin) down to the pelvis
            pos = pos + R.quat_apply(rot, skel.offsets[j] if j != root else np.zeros(3))
            rot = R.quat_mul(rot, ref[j]) if j != root else R.quat_mul(g_parent, ref[j])
        self._root_w0 = parent_pos + pos
        self._root_inv = R.quat_to_matrix(R.quat_inv(g_parent))
        self._C_mat = R.quat_to_matrix(self.C)

    # ---- the call --------------------------------------------------------------------------------------------
    def __call__(self, motion: Motion) -> Motion:
        """``motion`` (on the source skeleton) → the same motion on the target: same fps, frames, labels, name."""
        if motion.skeleton is not self.source.skeleton:
            self.source.skeleton.check_compatible(motion.skeleton, what="motion to retarget")
        T = motion.num_frames
        g = _fk(np.ascontiguousarray(motion.rotations[:, self._src_joints].transpose(1, 2, 0)), self._levels)
        X = g[self._x_slot]
        if len(self._mix):
            (a, b), (ra, rb) = self._mix_s, self._mix_ref
            X[self._mix] = _slerp(ra @ g[a], rb @ g[b], self._mix_w)
        G = self._M @ X  # (P, 4, T) target world rotations
        for chain in self._chains:
            self._bend(chain, G, g, motion)
        G_anc = np.concatenate([G, np.broadcast_to(_IDENTITY, (1, 4, T))])[self._anc]
        local = _normalize(self._S_inv @ _mul(_conj(G_anc), G))
        out = np.empty((T, len(self.target.skeleton), 4))
        out[:] = self._tgt_ref_local
        out[:, self._t] = local.transpose(2, 0, 1)
        if self.twists:
            out[:, self._tw[0]] = self._twist(local).transpose(2, 0, 1)
        pelvis_world = self.scale * (self._C_mat @ self._source_position(g, motion, self._pelvis_path))
        root_pos = (self._root_inv @ (pelvis_world - self._root_w0[:, None])).T
        return Motion(self.target.skeleton, out, root_pos, motion.fps, labels=dict(motion.labels), name=motion.name)

    def _translation(self, motion: Motion, j: int) -> np.ndarray:
        """(3, T) or (3, 1): joint j's translation in its parent's frame."""
        if j == motion.skeleton.root:
            return motion.root_positions.T
        if motion.translations is not None:
            return motion.translations[:, j].T
        return motion.skeleton.offsets[j][:, None]

    def _source_position(self, g: np.ndarray, motion: Motion, path: list[int]) -> np.ndarray:
        """(3, T) position of ``path[-1]`` relative to ``path[0]``'s parent (the world for joint 0)."""
        parents = motion.skeleton.parents
        pos = self._translation(motion, path[0])
        for j in path[1:]:
            pos = pos + _rotate(g[self._sslot[int(parents[j])]], self._translation(motion, j))
        return np.broadcast_to(pos, (3, motion.num_frames))

    def _bend(self, chain: _Chain, G: np.ndarray, g: np.ndarray, motion: Motion) -> None:
        """Turn a chain's intermediate joints (in place) so its end-to-end direction is C × the source's."""
        parents = motion.skeleton.parents
        u = sum(_rotate(g[self._sslot[int(parents[j])]], self._translation(motion, j)) for j in chain.src_path)
        e = _rotate(G[chain.slots], chain.bones).sum(0)
        fix = _between(e, self._C_mat @ u)
        G[chain.slots] = _mul(fix[None], G[chain.slots])

    def _twist(self, local: np.ndarray) -> np.ndarray:
        """(X, 4, T) local rotations of the driven twist bones from their parents' local rotations."""
        _, ps, axes, shares, parent_ref_inv, own_ref = self._tw
        delta = parent_ref_inv @ local[ps]
        angle = 2 * np.arctan2((delta[:, :3] * axes).sum(1), delta[:, 3])
        angle = -(1 - shares) * np.arctan2(np.sin(angle), np.cos(angle))
        half = angle[:, None] / 2
        q = np.concatenate([np.sin(half) * axes, np.cos(half)], 1)
        return own_ref @ q


def retarget(motion: Motion, target: Skeleton, *, source_map: BodyMap | None = None,
             target_map: BodyMap | None = None) -> Motion:
    """``motion`` retargeted onto ``target`` (one call; build a `Retargeter` to retarget many motions)."""
    return Retargeter(source_map or motion.skeleton, target_map or target)(motion)


def bone_direction_errors(rt: Retargeter, source: Motion, target: Motion) -> np.ndarray:
    """Angles (degrees, flat) between ``C`` × the source bone and the target bone, over frames and the pairs whose
    direction is exact by construction (`Retargeter.exact`, bones with a next joint on both sides): a check of a
    retargeting, ~0 up to rounding."""
    ps, pt = source.global_positions(), target.global_positions()
    out = [np.zeros(0)]
    for p in rt.pairs:
        ns, nt = rt.source.next_joint(p.s0), rt.target.next_joint(p.t)
        if not rt.exact[p.t] or ns is None or nt is None:
            continue
        a, b = R.quat_apply(rt.C, ps[:, ns] - ps[:, p.s0]), pt[:, nt] - pt[:, p.t]
        na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
        ok = (na > 1e-9) & (nb > 1e-9)
        cos = (a * b).sum(-1)[ok] / na[ok] / nb[ok]
        out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.concatenate(out)


# ---- pairs and alignments ------------------------------------------------------------------------------------------
def _frame_rotation(src: BodyMap, tgt: BodyMap) -> np.ndarray:
    """(4,) the rotation taking the source's (up, left) onto the target's."""
    return rotation_between_frames(src.up, src.left, tgt.up, tgt.left)


def _chains(src: BodyMap, tgt: BodyMap) -> list[tuple[list[int], list[int]]]:
    """(source chain, target chain) of the spine (pelvis → chest) and the neck (chest → head)."""
    return [(src.roles["pelvis"] + src.roles["spine"], tgt.roles["pelvis"] + tgt.roles["spine"]),
            ([src.chest(), *src.roles["neck"], *src.roles["head"]],
             [tgt.chest(), *tgt.roles["neck"], *tgt.roles["head"]])]


def _pairs(src: BodyMap, tgt: BodyMap) -> list[_Pair]:
    """Which source joints feed each target joint (see the module docstring)."""
    pairs = [_Pair(tgt.roles["pelvis"][0], src.roles["pelvis"][0], src.roles["pelvis"][0])]
    for s_chain, t_chain in _chains(src, tgt):
        pairs += _chain_pairs(s_chain, t_chain)[1:]
    for side in ("left", "right"):
        for role in ("clavicle", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe"):
            t, s = tgt.joint(f"{side}_{role}"), src.joint(f"{side}_{role}")
            if s is None and role == "clavicle":  # a target clavicle follows the source chest
                s = src.chest()
            elif s is None and role == "toe":  # a target toe follows the source foot
                s = src.joint(f"{side}_foot")
            if t is not None and s is not None:
                pairs.append(_Pair(t, s, s))
        pairs += _finger_pairs(src, tgt, side)
    return sorted(pairs, key=lambda p: p.t)


def _chain_pairs(src: list[int], tgt: list[int]) -> list[_Pair]:
    """Pairs along two chains with shared ends: target joint i of n at source position i·m/n (of m)."""
    n, m = len(tgt) - 1, len(src) - 1
    out = []
    for i, t in enumerate(tgt):
        x = i * m / n if n else 0.0
        k = int(np.floor(x + 1e-9))
        w = x - k
        out.append(_Pair(t, src[k], src[min(k + 1, m)], w if w > 1e-9 else 0.0))
    return out


def _finger_pairs(src: BodyMap, tgt: BodyMap, side: str) -> list[_Pair]:
    keys = {finger_key(src.skeleton.names[j]): j for j in src.roles.get(f"{side}_fingers", [])}
    out = []
    for t in tgt.roles.get(f"{side}_fingers", []):
        s = keys.get(finger_key(tgt.skeleton.names[t]))
        if s is not None and finger_key(tgt.skeleton.names[t]) is not None:
            out.append(_Pair(t, s, s))
    return out


def _directions(bm: BodyMap, joints: list[int]) -> np.ndarray:
    """(len(joints), 3) world bone vectors of the reference pose (zero where a joint has no bone)."""
    from .body import _bone

    pos, nxt = bm.rest_positions(), bm._next
    return np.array([_bone(bm.skeleton, pos, j, nxt.get(j)) for j in joints]).reshape(-1, 3)


def _alignments(src: BodyMap, tgt: BodyMap, pairs: list[_Pair], C: np.ndarray) -> np.ndarray:
    """(P, 4) per pair, the rotation A aligning the target's reference bone with C × the source's."""
    d_t = _directions(tgt, [p.t for p in pairs])
    d_s0, d_s1 = _directions(src, [p.s0 for p in pairs]), _directions(src, [p.s1 for p in pairs])
    w = np.array([p.w for p in pairs])[:, None]
    d_s = R.quat_apply(C, _unit_rows(d_s0) * (1 - w) + _unit_rows(d_s1) * w)
    A = rotation_between(d_t, d_s)
    framed = {tgt.roles["pelvis"][0]: src.roles["pelvis"][0], tgt.chest(): src.chest()}
    for i, p in enumerate(pairs):
        if p.t in framed and framed[p.t] == p.s0 and p.w == 0:
            A[i] = rotation_between_frames(d_t[i], _side(tgt, p.t), d_s[i], R.quat_apply(C, _side(src, p.s0)))
    return _inherit_missing(tgt, pairs, A, np.linalg.norm(d_t, axis=-1) * np.linalg.norm(d_s, axis=-1) > 1e-12)


def _inherit_missing(tgt: BodyMap, pairs: list[_Pair], A: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pairs without a bone direction on either side (a hand or head with no end site) take the alignment of
    their nearest mapped ancestor."""
    slot = {p.t: i for i, p in enumerate(pairs)}
    for i, p in enumerate(pairs):  # pairs are in target index order: ancestors are done first
        if not ok[i]:
            up = next((slot[a] for a in tgt.skeleton.ancestors(p.t) if a in slot), None)
            A[i] = A[up] if up is not None else R.quat_identity()
    return A


def _own_bone(skel: Skeleton, g_ref: np.ndarray, p_ref: np.ndarray, j: int) -> np.ndarray:
    """(3,) world vector of joint j's own bone in the reference pose: to the mean of its children, else its end
    site, else zero."""
    if skel.children[j]:
        return p_ref[skel.children[j]].mean(0) - p_ref[j]
    if j in skel.end_sites:
        return R.quat_apply(g_ref[j], skel.end_sites[j])
    return np.zeros(3)


def _side(bm: BodyMap, j: int) -> np.ndarray:
    from .body import _side_vector

    return _side_vector(bm, j, bm.rest_positions())


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


# ---- quaternions on (..., 4, T) arrays: components on axis -2, frames last (contiguous) -------------------------
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])[:, None]


def _lmat(q: np.ndarray) -> np.ndarray:
    """(..., 4) → (..., 4, 4): ``_lmat(q) @ x`` is ``q · x``."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack([np.stack([w, -z, y, x], -1), np.stack([z, w, -x, y], -1), np.stack([-y, x, w, z], -1),
                     np.stack([-x, -y, -z, w], -1)], -2)


def _rmat(q: np.ndarray) -> np.ndarray:
    """(..., 4) → (..., 4, 4): ``_rmat(q) @ x`` is ``x · q``."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack([np.stack([w, z, -y, x], -1), np.stack([-z, w, x, y], -1), np.stack([y, -x, w, z], -1),
                     np.stack([-x, -y, -z, w], -1)], -2)


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a · b`` of (..., 4, T) arrays (broadcasting)."""
    ax, ay, az, aw = a[..., 0, :], a[..., 1, :], a[..., 2, :], a[..., 3, :]
    bx, by, bz, bw = b[..., 0, :], b[..., 1, :], b[..., 2, :], b[..., 3, :]
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], -2)


def _conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])[:, None]


def _normalize(q: np.ndarray) -> np.ndarray:
    return q / np.sqrt((q * q).sum(-2, keepdims=True))


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 4, T) rotations applied to (..., 3, T or 1) vectors → (..., 3, T)."""
    qx, qy, qz, qw = q[..., 0, :], q[..., 1, :], q[..., 2, :], q[..., 3, :]
    vx, vy, vz = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    tx, ty, tz = 2 * (qy * vz - qz * vy), 2 * (qz * vx - qx * vz), 2 * (qx * vy - qy * vx)
    return np.stack([vx + qw * tx + qy * tz - qz * ty, vy + qw * ty + qz * tx - qx * tz,
                     vz + qw * tz + qx * ty - qy * tx], -2)


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, T) directions → (4, T) smallest rotations taking ``a`` onto ``b`` (identity where either is zero)."""
    na, nb = np.sqrt((a * a).sum(0)), np.sqrt((b * b).sum(0))
    q = np.concatenate([np.cross(a, b, axis=0), (na * nb + (a * b).sum(0))[None]])
    n = np.sqrt((q * q).sum(0))
    bad = n <= 1e-12 * np.maximum(na * nb, 1e-300)
    if bad.any():  # zero vectors: identity; opposite ones: a half turn about an axis perpendicular to a
        q[:, bad] = rotation_between(a[:, bad].T, b[:, bad].T).T
        n[bad] = 1.0
    return q / n


def _slerp(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Shortest-arc slerp of (M, 4, T) rotations, weights (M, 1, 1)."""
    dot = (a * b).sum(-2, keepdims=True)
    b = np.where(dot < 0, -b, b)
    theta = np.arccos(np.clip(np.abs(dot), 0.0, 1.0))
    s = np.sin(theta)
    small = s < 1e-9
    s = np.where(small, 1.0, s)
    wa = np.where(small, 1 - w, np.sin((1 - w) * theta) / s)
    wb = np.where(small, w, np.sin(w * theta) / s)
    return _normalize(wa * a + wb * b)


def _fk(local: np.ndarray, levels: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(N, 4, T) local rotations of a joint subset closed under parents (slot 0: joint 0) → world rotations,
    one product per tree level."""
    g = np.empty_like(local)
    g[0] = local[0]
    for js, ps in levels:
        g[js] = _mul(g[ps], local[js])
    return g
