"""Augmentations: mirror (any joint-frame convention), speed change, random root rotation, the Augment config."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.data.augment import MIRROR, Augment, change_speed, mirror, mirror_frames, rotate_root
from motionsynth.errors import MotionsynthError
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

# A symmetric body in the natural convention: Y up, facing +Z, left is +X, identity rest pose symmetric.
NAMES = ["base", "hips", "spine", "chest", "head", "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow",
         "r_hand", "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot"]
PARENTS = [-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 1, 11, 12, 1, 14, 15]
LEFT_OFFSETS = {"l_shoulder": [8, 10, -1], "l_elbow": [25, 0.5, -2], "l_hand": [22, 1, 1], "l_hip": [9, -6, 1],
                "l_knee": [1, -40, 2], "l_foot": [0.5, -41, -3]}
CENTRE_OFFSETS = {"base": [0, 0, 0], "hips": [0, 95, 0], "spine": [0, 12, -1], "chest": [0, 15, 1],
                  "head": [0, 20, 2]}


def natural_skeleton() -> Skeleton:
    offsets = []
    for n in NAMES:
        if n in CENTRE_OFFSETS:
            offsets.append(CENTRE_OFFSETS[n])
        elif n.startswith("l_"):
            offsets.append(LEFT_OFFSETS[n])
        else:
            offsets.append(MIRROR @ np.array(LEFT_OFFSETS["l_" + n[2:]], dtype=float))
    return Skeleton(NAMES, PARENTS, offsets, root=1)


def proper_signed_permutations():
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((-1.0, 1.0), repeat=3):
            P = np.zeros((3, 3))
            P[range(3), perm] = signs
            if np.linalg.det(P) > 0:
                out.append(P)
    return out


def frame_changes(rng) -> np.ndarray:
    """(J, 3, 3) per-joint rest-frame changes like a game rig's joint orients: random axis permutations and flips
    (independently for left and right), the root turned 90° about Z (lying along X like Bandai's Hips), the static
    base left alone."""
    perms = proper_signed_permutations()
    C = np.array([perms[i] for i in rng.integers(0, len(perms), len(NAMES))])
    C[0] = np.eye(3)
    C[1] = R.quat_to_matrix(R.axis_angle_to_quat(np.array([0, 0, np.pi / 2])))
    return C


def convert(motion: Motion, C: np.ndarray) -> Motion:
    """The same motion expressed with joint frames rotated by C: offsets Cᵀ_parent o, locals Cᵀ_parent L C."""
    sk = motion.skeleton
    P = sk.parents
    CP = np.array([np.eye(3) if p < 0 else C[p] for p in P])
    offsets = np.einsum("jki,jk->ji", CP, sk.offsets)
    new_sk = Skeleton(sk.names, P, offsets, root=sk.root)
    L = R.quat_to_matrix(motion.rotations)
    new_L = np.swapaxes(CP, -1, -2) @ L @ C
    root_pos = np.einsum("ki,tk->ti", CP[sk.root], motion.root_positions)
    trans = None
    if motion.translations is not None:
        trans = np.einsum("jki,tjk->tji", CP, motion.translations)
    return Motion(new_sk, R.matrix_to_quat(new_L), root_pos, motion.fps, translations=trans)


def natural_motion(rng, T=60, translations=False) -> Motion:
    sk = natural_skeleton()
    t = np.arange(T, dtype=float)
    rot = R.axis_angle_to_quat(rng.normal(0, 0.3, (T, len(sk), 3)))
    rot[:, 0] = R.quat_identity()
    heading = 0.2 * t
    rot[:, 1] = R.quat_mul(R.quat_about_axis(heading, np.array([0, 1.0, 0])), rot[:, 1])
    pos = np.stack([80 * np.sin(t / 9), 95 + 3 * np.sin(t / 4), 3 * t], -1)
    tr = None
    if translations:  # animated translations equal to the offsets within 1e-5, as in Bandai files
        tr = sk.offsets + rng.normal(0, 1e-5, (T, len(sk), 3))
    return Motion(sk, rot, pos, 30.0, translations=tr, labels={"style": 1})


def mirrored_reference(motion: Motion) -> np.ndarray:
    """World positions reflected across x = 0 with left and right swapped."""
    return motion.global_positions()[:, motion.skeleton.symmetry] @ MIRROR


def same_rotations(a, b):
    return np.allclose(np.abs((a * b).sum(-1)), 1, atol=1e-8)


@pytest.mark.parametrize("translations", [False, True])
def test_mirror_natural_convention(translations):
    m = natural_motion(np.random.default_rng(0), translations=translations)
    mm = mirror(m)
    assert np.abs(mm.global_positions() - mirrored_reference(m)).max() < 1e-4
    # with a symmetric identity rest pose this is the textbook rule (x, y, z, w) → (x, -y, -z, w) on locals
    q = m.rotations[:, m.skeleton.symmetry] * [1, -1, -1, 1]
    assert same_rotations(mm.rotations, q)
    assert same_rotations(mm.rotations[:, 0], R.quat_identity((len(m),)))  # the static base stays
    assert mm.labels == m.labels and mm.fps == m.fps
    back = mirror(mm)
    assert same_rotations(back.rotations, m.rotations)
    assert np.allclose(back.root_positions, m.root_positions)
    if translations:
        assert np.allclose(back.translations, m.translations)
    f = mirror_frames(m)
    assert np.allclose(f[1:], MIRROR)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mirror_rig_convention(seed):
    """A symmetric body whose joint frames are permuted/flipped per joint (rest pose lying along X, right-side axes
    flipped as in Bandai): positions still mirror exactly, twice is the identity, and the result is the natural
    mirror expressed in the rig's frames (so the twist convention is preserved)."""
    rng = np.random.default_rng(seed)
    natural = natural_motion(rng, translations=True)
    C = frame_changes(rng)
    rig = convert(natural, C)
    assert np.abs(rig.global_positions() - natural.global_positions()).max() < 1e-9
    mm = mirror(rig)
    assert np.abs(mm.global_positions() - mirrored_reference(rig)).max() < 1e-4
    assert same_rotations(mm.rotations, convert(mirror(natural), C).rotations)
    back = mirror(mm)
    assert same_rotations(back.rotations, rig.rotations)
    assert np.allclose(back.root_positions, rig.root_positions)
    assert np.allclose(back.translations, rig.translations)


def test_mirror_needs_sides():
    sk = Skeleton(["a", "b"], [-1, 0], [[0, 0, 0], [0, 1, 0]])
    m = Motion(sk, R.quat_identity((3, 2)), np.zeros((3, 3)), 30)
    with pytest.raises(MotionsynthError, match="left/right"):
        mirror(m)


def test_change_speed():
    m = natural_motion(np.random.default_rng(4), T=100)
    fast = change_speed(m, 2.0)
    assert len(fast) == 50 and fast.fps == m.fps
    assert np.allclose(fast.global_positions(), m.global_positions()[::2])
    slow = change_speed(m, 0.5)
    assert len(slow) == 199
    assert np.allclose(slow.global_positions()[::2], m.global_positions())
    assert len(change_speed(m, 1.0)) == 100
    with pytest.raises(MotionsynthError):
        change_speed(m, 0)


def pairwise(p):
    return np.linalg.norm(p[:, :, None] - p[:, None], axis=-1)


@pytest.mark.parametrize("full_sphere", [False, True])
def test_rotate_root(full_sphere):
    m = natural_motion(np.random.default_rng(5), translations=True)
    rng = np.random.default_rng(6)
    out = rotate_root(m, rng, full_sphere=full_sphere)
    a, b = m.global_positions(), out.global_positions()
    moving = m.skeleton.subtree(m.skeleton.root)
    assert np.abs(pairwise(a[:, moving]) - pairwise(b[:, moving])).max() < 1e-6
    sk = m.skeleton
    bones = [(j, sk.parents[j]) for j in moving if j != sk.root]
    for j, p in bones:
        assert np.allclose(np.linalg.norm(a[:, j] - a[:, p], axis=-1), np.linalg.norm(b[:, j] - b[:, p], axis=-1))
    assert np.allclose(a[0, sk.root], b[0, sk.root])  # about the first root position
    others = [j for j in range(len(sk)) if j != sk.root]
    assert np.array_equal(out.rotations[:, others], m.rotations[:, others])
    if not full_sphere:
        assert np.allclose(a[..., 1], b[..., 1])  # yaw keeps every height
        assert not np.allclose(a[..., 0], b[..., 0])


def test_augment():
    m = natural_motion(np.random.default_rng(7), T=90)
    rng = np.random.default_rng(8)
    out = Augment()(m, rng)
    assert isinstance(out, Motion) and 90 / 1.25 - 2 <= len(out) <= 90 / 0.8 + 2
    only_mirror = Augment(p_mirror=1.0, speed_range=None, yaw=False)(m, rng)
    assert np.allclose(only_mirror.global_positions(), mirror(m).global_positions())
    nothing = Augment(p_mirror=0.0, speed_range=(1.0, 1.0), yaw=False)(m, rng)
    assert np.allclose(nothing.global_positions(), m.global_positions())
    sphere = Augment(p_mirror=0.0, speed_range=None, yaw=False, full_sphere=True)(m, rng)
    assert np.abs(pairwise(sphere.global_positions()[:, 1:]) - pairwise(m.global_positions()[:, 1:])).max() < 1e-6


@pytest.mark.real_data
def test_mirror_bandai(bandai_zip):
    """Bandai rigs use per-joint frames (hips lateral axis Y, spine Z, limbs flipped): the mirror still reflects
    every joint exactly (its translation channels are mirrored too), is an involution, and finds one convention."""
    from motionsynth.io.bvh import iter_bvh

    conventions = []
    for name, motion in iter_bvh(bandai_zip):
        if isinstance(motion, Exception):
            continue
        frames = mirror_frames(motion)
        conventions.append(frames[motion.skeleton.subtree(motion.skeleton.root)])
        mm = mirror(motion, frames)
        assert np.abs(mm.global_positions() - mirrored_reference(motion)).max() < 1e-4, name
        assert np.abs(mirror(mm).global_positions() - motion.global_positions()).max() < 1e-4, name
        if len(conventions) == 8:
            break
    assert len(conventions) == 8
    assert all(np.array_equal(c, conventions[0]) for c in conventions)
