"""Data augmentations (MEVA): left/right mirroring, speed change, random root rotation. Pure functions Motion → Motion.

Mirroring in general
--------------------
The mirrored motion reflects every world position across the world YZ plane (``M = diag(-1, 1, 1)``, x → -x) and
swaps left and right joints (``skeleton.symmetry``): ``p'_j = M p_σ(j)``. Its global joint rotations are
``G'_j = M G_σ(j) M_j`` where ``M_j`` is a reflection *in joint j's own frame* that maps the skeleton onto itself
(``M_j o_c = o_σ(c)`` for j's children c; ``M_σ(j) = M_jᵀ``). When the rest pose is symmetric in every joint's
frame (SMPL, most BVH) ``M_j = M`` and this is the familiar ``(x, y, z, w) → (x, -y, -z, w)`` on local quaternions; but rigs such as Bandai
Namco's use per-joint frames where right-side joints have flipped axes and the spine's lateral axis is Z, so ``M_j``
differs per joint (e.g. ``diag(1, -1, 1)`` at the hips, ``-I`` along the limbs).

`mirror_frames` finds the ``M_j``: among the improper signed permutation matrices (axis-aligned reflections, the form
joint-orient conventions take) it keeps those mapping j's child offsets onto the mirrored children's, and picks the
one best matching ``G_σ(j)ᵀ S_t G_j`` summed over the motion's frames, where ``S_t`` reflects across the character's
own sagittal plane at frame t (from the left-minus-right joint positions). Positions are then exact for any choice
satisfying the offset constraint; the data term only fixes the twist convention. Static ancestors of the moving root
keep their rotations (``M_a = G_aᵀ M G_a``). Mirroring twice gives back the motion. Rest offsets of mirrored pairs
are assumed symmetric; animated per-joint translations are mirrored with the joints.

Labels
------
A mirrored take's labels are mirrored too (``wave-left-hand`` → ``wave-right-hand``) with a label map of
`motionsynth.data.labels` (``mirror(motion, label_map=…)``; `Augment` carries the map, `Augment.with_labels`
derives it from a vocabulary, and `data.windows.WindowDataset` does that for every augmented training set).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from .. import rotations as R
from ..errors import MotionsynthError
from ..kinematics import fk
from ..motion import Motion
from .labels import mirror_label_map, mirror_labels

__all__ = ["MIRROR", "mirror_frames", "mirror", "change_speed", "rotate_root", "Augment"]

MIRROR = np.diag([-1.0, 1.0, 1.0])
"""The world reflection of `mirror`: x → -x (across the YZ plane)."""


def _improper_signed_permutations() -> np.ndarray:
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            P = np.zeros((3, 3))
            P[range(3), perm] = signs
            if np.linalg.det(P) < 0:
                out.append(P)
    return np.array(out)  # (24, 3, 3)


_CANDIDATES = _improper_signed_permutations()


def _improper_polar(A: np.ndarray) -> np.ndarray:
    """The orthogonal matrix with determinant -1 closest to A."""
    U, _, Vt = np.linalg.svd(A)
    D = np.eye(3)
    D[2, 2] = -np.linalg.det(U @ Vt)
    return U @ D @ Vt


def _sagittal_reflections(positions: np.ndarray, skeleton) -> np.ndarray:
    """(T, J, 3) world positions → (T, 3, 3) reflections across the character's sagittal plane per frame."""
    left = [j for j, s in enumerate(skeleton.sides) if s == "left"]
    lateral = (positions[:, left] - positions[:, skeleton.symmetry[left]]).sum(1)
    lateral[:, 1] = 0.0
    norm = np.linalg.norm(lateral, axis=-1, keepdims=True)
    n = np.where(norm > 1e-9, lateral / np.maximum(norm, 1e-12), [1.0, 0.0, 0.0])
    return np.eye(3) - 2 * n[:, :, None] * n[:, None, :]


def mirror_frames(motion: Motion | list[Motion]) -> np.ndarray:
    """(J, 3, 3) per-joint reflections ``M_j`` of the root and its descendants (see the module docstring); rows of
    the root's static ancestors are NaN (they are handled per frame by `mirror`).

    ``motion`` may be a list of motions of one skeleton: the data term is summed over all their frames, which gives
    one convention for a whole dataset. One short, asymmetric clip (a one-handed wave) does not pin down the twist
    of joints that the offsets leave free (leaves such as the hands and toes, limbs along their own axis): chosen
    per 32-frame window of the Bandai Namco data, the hands got 13 different conventions over 60 windows, so
    training windows should share the dataset's frames (`Augment.with_frames`, which `WindowDataset` uses).

    Raises:
        MotionsynthError: the skeleton has no left/right joint pairs.
    """
    motions = list(motion) if isinstance(motion, (list, tuple)) else [motion]
    if not motions:
        raise MotionsynthError("mirror_frames needs at least one motion")
    sk = motions[0].skeleton
    sym = sk.symmetry
    if not any(s == "left" for s in sk.sides):
        raise MotionsynthError("cannot mirror: the skeleton has no left/right joint pairs (skeleton.symmetry)")
    joints = [j for j in sk.subtree(sk.root) if sym[j] >= j]  # one of each pair: the other is set with it
    A = {j: np.zeros((3, 3)) for j in joints}
    for m in motions:
        g_rot_q, g_pos = fk(m.rotations, m.local_translations(), m.skeleton.parents)
        g_rot = R.quat_to_matrix(g_rot_q)
        S = _sagittal_reflections(g_pos, m.skeleton)
        for j in joints:
            A[j] += np.einsum("tki,tkl,tlm->im", g_rot[:, sym[j]], S, g_rot[:, j])
    out = np.full((len(sk), 3, 3), np.nan)
    for j in joints:
        children = sk.children[j]
        offsets = sk.offsets[children]
        targets = sk.offsets[sym[children]] if children else offsets
        scale = np.linalg.norm(offsets, axis=-1) + 1e-9
        ok = [P for P in _CANDIDATES
              if (np.linalg.norm(offsets @ P.T - targets, axis=-1) <= 0.1 * scale).all()]
        if ok:
            M = max(ok, key=lambda P: float((P * A[j]).sum()))
        else:  # frames not axis-aligned (or an asymmetric skeleton): best reflection for the data
            M = _improper_polar(A[j])
        out[j] = M
        out[sym[j]] = M.T
    return out


def mirror(motion: Motion, frames: np.ndarray | None = None, label_map: dict | None = None) -> Motion:
    """Left/right mirror image of ``motion`` across the world YZ plane (x → -x), left and right joints swapped.

    Args:
        frames: (J, 3, 3) per-joint reflections from `mirror_frames` (computed from ``motion`` when None; pass them
            in to reuse one convention for many motions of a skeleton).
        label_map: ``{kind: {name: mirrored name}}`` (`data.labels.mirror_label_map`) applied to the motion's labels;
            None keeps them as they are.
    """
    sk = motion.skeleton
    sym, parents, r = sk.symmetry, sk.parents, sk.root
    if frames is None:
        frames = mirror_frames(motion)
    g_rot_q, _ = fk(motion.rotations, motion.local_translations(), parents)
    G = R.quat_to_matrix(g_rot_q)  # (T, J, 3, 3)
    T, J = motion.num_frames, len(sk)
    refl = np.empty((T, J, 3, 3))  # per-frame reflection in each joint's frame
    moving = sk.subtree(r)
    refl[:, moving] = frames[moving]
    fixed = [j for j in range(J) if j not in set(moving)]
    if fixed:
        refl[:, fixed] = np.swapaxes(G[:, fixed], -1, -2) @ MIRROR @ G[:, fixed]
    new_G = MIRROR @ G[:, sym] @ refl
    local = new_G.copy()
    local[:, 1:] = np.swapaxes(new_G[:, parents[1:]], -1, -2) @ new_G[:, 1:]
    rotations = R.quat_continuous(R.matrix_to_quat(local), dim=0)

    def reflect_in_parent(vectors: np.ndarray, joints: list[int]) -> np.ndarray:
        """Translations (T, len(joints), 3) of the mirror joints, expressed in the new parents' frames:
        ``o'_c = M_jᵀ o_σ(c)`` for c's parent j (from ``M p_σ(c) = p'_j + G'_j o'_c``)."""
        out = np.empty_like(vectors)
        for i, j in enumerate(joints):
            p = parents[j]
            M = MIRROR if p < 0 else np.swapaxes(refl[:, p], -1, -2)
            out[:, i] = np.einsum("...ik,...k->...i", M, vectors[:, i])
        return out

    root_positions = reflect_in_parent(motion.root_positions[:, None], [r])[:, 0]
    translations = None
    if motion.translations is not None:
        translations = reflect_in_parent(motion.translations[:, sym], list(range(J)))
    out = Motion(sk, rotations, root_positions, motion.fps, translations=translations,
                 labels=mirror_labels(motion.labels, label_map), name=motion.name)
    return out


def change_speed(motion: Motion, factor: float) -> Motion:
    """Play ``factor``× faster (2: half the frames), resampling in time at the same fps (slerp / linear).

    Frame k of the result is the original at time ``k * factor / fps``; the result covers the original's duration.
    """
    if not factor > 0:
        raise MotionsynthError(f"speed factor must be positive, got {factor}")
    n = int(math.floor((motion.num_frames - 1) / factor + 1e-9)) + 1
    return motion.at_times(np.arange(n) * factor / motion.fps)


def _random_rotation(rng: np.random.Generator, full_sphere: bool) -> np.ndarray:
    if full_sphere:
        q = rng.normal(size=4)
        return q / np.linalg.norm(q)
    return R.quat_about_axis(np.array(rng.uniform(-np.pi, np.pi)), np.array([0.0, 1.0, 0.0]))


def rotate_root(motion: Motion, rng: np.random.Generator, full_sphere: bool = False) -> Motion:
    """Rotate the whole motion about the root's frame-0 world position: a random yaw about +Y, or a uniformly random
    rotation when ``full_sphere``. Changes only the root's rotation and trajectory."""
    return _rotate_about_start(motion, _random_rotation(rng, full_sphere))


def _rotate_about_start(motion: Motion, q: np.ndarray) -> Motion:
    sk, r = motion.skeleton, motion.skeleton.root
    g_rot, g_pos = fk(motion.rotations, motion.local_translations(), sk.parents)
    p = sk.parents[r]
    if p < 0:
        p_rot, p_pos = R.quat_identity((motion.num_frames,)), np.zeros((motion.num_frames, 3))
    else:
        p_rot, p_pos = g_rot[:, p], g_pos[:, p]
    start = g_pos[0, r]
    new_rot = R.quat_mul(q, g_rot[:, r])
    new_pos = start + R.quat_apply(q, g_pos[:, r] - start)
    out = motion.copy()
    out.rotations[:, r] = R.quat_continuous(R.quat_mul(R.quat_inv(p_rot), new_rot), dim=0)
    out.root_positions = R.quat_apply(R.quat_inv(p_rot), new_pos - p_pos)
    return out


@dataclass
class Augment:
    """Random augmentation applied to training clips, in this order:

    1. mirror with probability ``p_mirror``;
    2. speed change by a factor drawn log-uniformly from ``speed_range`` (``None`` or ``(1, 1)``: off) — log-uniform
       so that 0.8× and 1.25× are equally likely;
    3. random rotation about the start of the root trajectory: yaw when ``yaw``, a uniform 3D rotation when
       ``full_sphere`` (takes precedence), none when both are False.

    ``label_map``: how a mirrored motion's labels change, ``{kind: {name: mirrored name}}``. `with_labels` turns it
    into the full map of a vocabulary (derived from the names, ``label_map`` entries overriding them;
    `data.labels.mirror_label_map`) — `WindowDataset` does so with the cache's vocabulary, so in a training config
    ``train.augment.label_map`` holds overrides only. None: labels are left as they are.

    ``frames``: the (J, 3, 3) per-joint reflections of `mirror` (`mirror_frames`), one convention for every clip;
    None: each clip's own (`with_frames` sets them; `WindowDataset` does, from its split's takes).
    """

    p_mirror: float = 0.5
    speed_range: tuple[float, float] | None = (0.8, 1.25)
    yaw: bool = True
    full_sphere: bool = False
    label_map: dict | None = None
    frames: np.ndarray | None = None

    def with_labels(self, label_names: dict[str, list[str]]) -> Augment:
        """A copy whose ``label_map`` is the mirror map of ``label_names`` with this one's entries as overrides."""
        return replace(self, label_map=mirror_label_map(label_names, self.label_map))

    def with_frames(self, motions) -> Augment:
        """A copy that mirrors with the per-joint reflections of ``motions`` (an iterable of motions;
        `mirror_frames` over all of them); itself when it never mirrors, already has frames or gets no motion."""
        if self.p_mirror <= 0 or self.frames is not None:
            return self
        motions = list(motions)
        return replace(self, frames=mirror_frames(motions)) if motions else self

    def __call__(self, motion: Motion, rng: np.random.Generator) -> Motion:
        if self.p_mirror > 0 and rng.random() < self.p_mirror:
            motion = mirror(motion, frames=self.frames, label_map=self.label_map)
        if self.speed_range is not None and self.speed_range[0] != self.speed_range[1]:
            lo, hi = self.speed_range
            motion = change_speed(motion, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
        if self.full_sphere or self.yaw:
            motion = rotate_root(motion, rng, full_sphere=self.full_sphere)
        return motion
