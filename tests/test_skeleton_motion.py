"""Skeleton structure (chains, symmetry, body parts), Motion slicing/resampling, forward kinematics, task masks."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation as Sci

from motionsynth import Motion, MotionsynthError, Skeleton, SkeletonMismatchError, tasks
from motionsynth import rotations as R
from motionsynth.kinematics import fk, foot_contacts, foot_joints, heading_angle

from helpers import biped_skeleton


def humanoid(style: str = "suffix") -> Skeleton:
    """A 22-joint humanoid with a static top joint above the hips; names in several conventions."""
    side = {
        "suffix": lambda base, s: f"{base}_{s}",
        "prefix": lambda base, s: f"{'Left' if s == 'L' else 'Right'}{base}",
        "smpl": lambda base, s: f"{'left' if s == 'L' else 'right'}_{base.lower()}",
    }[style]
    names = ["Top", "Hips", "Spine", "Chest", "Neck", "Head"]
    parents = [-1, 0, 1, 2, 3, 4]
    for s in "LR":
        k = len(names)
        names += [side(b, s) for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")]
        parents += [3, k, k + 1, k + 2]
    for s in "LR":
        k = len(names)
        names += [side(b, s) for b in ("UpperLeg", "LowerLeg", "Foot", "Toes")]
        parents += [1, k, k + 1, k + 2]
    offsets = np.random.default_rng(0).normal(size=(22, 3)) * 10
    offsets[0] = 0
    return Skeleton(names, parents, offsets, root=1)


@pytest.mark.parametrize("style", ["suffix", "prefix", "smpl"])
def test_groups_and_symmetry_from_names(style):
    sk = humanoid(style)
    g = {k: [sk.names[i] for i in v] for k, v in sk.groups.items()}
    assert len(g["left_arm"]) == len(g["right_arm"]) == 4
    assert len(g["left_leg"]) == len(g["right_leg"]) == 4
    assert g["head"] == ["Neck", "Head"]
    assert g["torso"] == ["Top", "Hips", "Spine", "Chest"]
    assert set(g["upper"]) | set(g["lower"]) == set(sk.names) and not set(g["upper"]) & set(g["lower"])
    assert "Hips" in g["lower"] and "Chest" in g["upper"]
    sym = sk.symmetry
    assert (sym[sym] == np.arange(22)).all()
    assert sk.names[sym[sk.groups["left_arm"][0]]] == g["right_arm"][0]
    assert sym[sk.index("Spine")] == sk.index("Spine")


def test_overrides_and_joint_specs():
    sk = humanoid()
    assert sk.joints("left-arm") == sk.groups["left_arm"]
    assert sk.joints("Head,Neck") == [4, 5]
    assert sk.joints([3, "Head"]) == [3, 5]
    with pytest.raises(KeyError, match="no body part or joint named .Tail.; body parts: upper body"):
        sk.joints("Tail")
    custom = Skeleton(sk.names, sk.parents, sk.offsets, root=1, groups_override={"upper": [2, 3]})
    assert custom.groups == {"upper": [2, 3]}


def test_structure_chains_depth_roundtrip():
    sk = humanoid()
    assert sorted(j for c in sk.chains for j in c) == list(range(22))
    assert sk.depth[sk.index("Head")] == 5
    assert sk.subtree(sk.index("Chest"))[:3] == [3, 4, 5]
    back = Skeleton.from_json(sk.to_json())
    assert back.names == sk.names and back.root == 1 and np.allclose(back.offsets, sk.offsets)
    sk.check_compatible(back)


def test_invalid_skeletons_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Skeleton(["a", "a"], [-1, 0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="topological"):
        Skeleton(["a", "b"], [1, -1], np.zeros((2, 3)))


def test_mismatched_skeleton_is_refused():
    sk = humanoid()
    other = Skeleton(sk.names[:6], sk.parents[:6], sk.offsets[:6], root=1)
    with pytest.raises(SkeletonMismatchError, match="different skeleton"):
        sk.check_compatible(other)
    longer = Skeleton(sk.names, sk.parents, sk.offsets * 1.5, root=1)
    with pytest.raises(SkeletonMismatchError, match="bone lengths"):
        sk.check_compatible(longer)


def random_motion(T=40, seed=0, sk=None) -> Motion:
    sk = sk or humanoid()
    rng = np.random.default_rng(seed)
    rot = Sci.from_rotvec(rng.normal(size=(T, len(sk), 3)).reshape(-1, 3) * 0.3).as_quat().reshape(T, len(sk), 4)
    rot[:, 0] = [0, 0, 0, 1]
    root = np.cumsum(rng.normal(size=(T, 3)), 0) + [0, 90, 0]
    return Motion(sk, rot, root, fps=30, labels={"action": "walk"}, name="m")


def test_fk_matches_a_hand_computed_chain():
    sk = Skeleton(["a", "b", "c"], [-1, 0, 1], [[0, 0, 0], [0, 1, 0], [0, 1, 0]])
    q = np.stack([R.quat_about_axis(np.array(np.pi / 2), np.array([0, 0, 1.0])), R.quat_identity(),
                  R.quat_about_axis(np.array(np.pi / 2), np.array([0, 0, 1.0]))])[None]
    m = Motion(sk, q, np.array([[1.0, 0, 0]]), fps=30)
    np.testing.assert_allclose(m.global_positions()[0], [[1, 0, 0], [0, 0, 0], [-1, 0, 0]], atol=1e-12)


def test_fk_torch_agrees_with_numpy_and_has_gradients():
    m = random_motion()
    rot, pos = fk(m.rotations, m.local_translations(), m.skeleton.parents)
    rt = torch.tensor(m.rotations, requires_grad=True)
    rot_t, pos_t = fk(rt, torch.tensor(m.local_translations()), m.skeleton.parents)
    np.testing.assert_allclose(pos_t.detach().numpy(), pos, atol=1e-9)
    assert np.allclose(np.abs((rot_t.detach().numpy() * rot).sum(-1)), 1)
    pos_t.sum().backward()
    assert torch.isfinite(rt.grad).all()
    batched = fk(np.stack([m.rotations] * 3), m.local_translations(), m.skeleton.parents)[1]
    np.testing.assert_allclose(batched[2], pos)


def test_motion_slice_copy_resample():
    m = random_motion(T=61)
    assert len(m[10:20]) == 10 and m[10:20].labels == m.labels
    c = m.copy()
    c.rotations[:] = 0
    assert m.rotations.any()
    up = m.resample(60)
    assert up.fps == 60 and len(up) == 121
    np.testing.assert_allclose(up.global_positions()[::2], m.global_positions(), atol=1e-9)
    down = up.resample(30)
    np.testing.assert_allclose(down.global_positions(), m.global_positions(), atol=1e-9)


def test_motion_validates_shapes():
    sk = humanoid()
    with pytest.raises(ValueError, match="rotations"):
        Motion(sk, np.zeros((5, 3, 4)), np.zeros((5, 3)), 30)
    with pytest.raises(ValueError, match="fps"):
        Motion(sk, np.zeros((5, 22, 4)), np.zeros((5, 3)), 0)


def test_heading_and_foot_contacts():
    angles = np.linspace(-3, 3, 7)
    q = R.quat_about_axis(angles, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(heading_angle(q), angles, atol=1e-12)
    pos = np.zeros((10, 2, 3))
    pos[:, 1, 0] = np.arange(10) * 5.0  # joint 1 slides at 5 units/frame = 150 units/s
    c = foot_contacts(pos, [0, 1], fps=30)
    assert c[:, 0].all() and not c[:, 1].any()
    # the height test alone, against the feet's lowest point (numpy and torch alike), or a given floor
    pos[:, 1, 0] = 0.0
    pos[:, 1, 1] = np.arange(10) * 1.0  # joint 1 rises 1 unit a frame
    low = foot_contacts(pos, [0, 1], max_speed=None, max_height=2.5)
    assert low[:, 0].all() and low[:3, 1].all() and not low[3:, 1].any()
    assert np.array_equal(foot_contacts(torch.from_numpy(pos), [0, 1], max_speed=None, max_height=2.5).numpy(), low)
    assert not foot_contacts(pos, [0, 1], max_speed=None, max_height=2.5, floor=-5.0).any()
    both = foot_contacts(pos, [0, 1], fps=30, max_speed=15.0, max_height=2.5)
    assert both[:, 0].all() and not both[:, 1].any()  # joint 1 is low for 3 frames but never still
    with pytest.raises(ValueError, match="needs fps"):
        foot_contacts(pos, [0, 1])


def test_foot_joints_are_the_toes_of_the_leg_groups():
    sk = biped_skeleton()
    toes = foot_joints(sk)
    assert [sk.names[j] for j in toes] == ["LeftToe", "RightToe"]
    assert [sk.names[j] for j in foot_joints(sk, ankles=True)] == ["LeftFoot", "LeftToe", "RightFoot", "RightToe"]
    legless = Skeleton(["Hips", "Spine"], [-1, 0], np.zeros((2, 3)), groups_override={"torso": [0, 1]})
    assert foot_joints(legless, required=False) == []
    with pytest.raises(MotionsynthError, match="no leg groups"):
        foot_joints(legless)


def test_task_masks():
    sk = humanoid()
    m = tasks.inbetween_mask(65, 22, context=10, gap=30)
    assert m.frames.sum() == 11 and m.frames[40] and not m.frames[39]
    with pytest.raises(MotionsynthError, match="out of range"):
        tasks.keyframe_mask(10, 22, [0, 12])
    with pytest.raises(MotionsynthError, match="increasing"):
        tasks.keyframe_mask(10, 22, [5, 2])
    c = tasks.joints_mask(20, sk, "upper", frames=slice(5, 10))
    assert c.joints[0].all() and c.joints[5].sum() == len(sk.groups["upper"]) and not c.root[5]
    with pytest.raises(MotionsynthError, match="every joint"):
        tasks.joints_mask(20, sk, list(range(22)))
    p = tasks.predict_mask(40, 22, 10)
    assert p.frames[:10].all() and not p.frames[10:].any()
    assert tasks.denoise_mask(5, 22).noisy and not tasks.generate_mask(5, 22).joints.any()


def test_keep_observed_and_mask_files(tmp_path):
    truth, other = random_motion(seed=1), random_motion(seed=2)
    mask = tasks.predict_mask(40, 22, 10)
    out = tasks.keep_observed(other, truth, mask)
    np.testing.assert_array_equal(out.rotations[:10], truth.rotations[:10])
    np.testing.assert_array_equal(out.rotations[10:], other.rotations[10:])
    tasks.save_mask(mask, tmp_path / "m.npz")
    back = tasks.load_mask(tmp_path / "m.npz")
    assert (back.joints == mask.joints).all() and (back.root == mask.root).all()
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(MotionsynthError, match="not a mask file"):
        tasks.load_mask(tmp_path / "bad.npz")


# ---- folding the top joints onto the canonical root (issue 11) -------------------------------------------------------
def test_fold_top_joints_moves_the_trajectory_to_the_branching_joint():
    from dataclasses import replace

    from motionsynth.motion import top_chain

    sk = humanoid()
    assert top_chain(sk) == [0, 1]
    rng = np.random.default_rng(3)
    T = 20
    rot = R.quat_normalize(rng.normal(size=(T, 22, 4)))
    offsets = sk.offsets.copy()
    offsets[0] = [5.0, 0.0, -3.0]  # a top joint away from the origin
    top_moves = Motion(replace(sk, offsets=offsets, root=0), rot, rng.normal(size=(T, 3)) * 100, 30, name="t")
    folded = top_moves.fold_top_joints()
    assert folded.skeleton.root == 1 and folded.name == "t" and top_moves.skeleton.root == 0
    body = sk.subtree(1)
    assert np.abs(folded.global_positions()[:, body] - top_moves.global_positions()[:, body]).max() < 1e-9
    same = np.abs((folded.global_rotations() * top_moves.global_rotations()).sum(-1))[:, body]
    assert np.abs(same - 1).max() < 1e-9
    assert np.array_equal(folded.rotations[:, 0], R.quat_identity((T,)))
    assert np.allclose(folded.global_positions()[:, 0], offsets[0])  # the top joint rests at its offset
    assert np.allclose(folded.root_positions + offsets[0], folded.global_positions()[:, 1])
    assert np.array_equal(folded.rotations[:, 2:], top_moves.rotations[:, 2:])  # the rest of the body untouched
    assert folded.fold_top_joints() is folded  # canonical already
    # a file that moves the branching joint below a static identity top joint is returned as it is
    hips_moves = Motion(sk, np.concatenate([R.quat_identity((T, 1)), rot[:, 1:]], 1), rng.normal(size=(T, 3)), 30)
    assert hips_moves.fold_top_joints() is hips_moves
    # a static top joint with a constant rotation is folded too (its rotation moves into the branching joint)
    tilted = R.euler_to_quat(np.tile([[90.0, 0, 0]], (T, 1)), "XYZ", degrees=True)
    hips_tilted = replace(hips_moves, rotations=np.concatenate([tilted[:, None], rot[:, 1:]], 1))
    f = hips_tilted.fold_top_joints()
    assert f is not hips_tilted and np.abs(f.global_positions()[:, body]
                                           - hips_tilted.global_positions()[:, body]).max() < 1e-9


def test_fold_top_joints_with_translations_and_unusual_trees():
    from motionsynth.motion import top_chain

    chain = Skeleton(["a", "b", "c"], [-1, 0, 1], np.ones((3, 3)))
    assert top_chain(chain) is None
    m = Motion(chain, R.quat_identity((4, 3)), np.zeros((4, 3)), 30)
    assert m.fold_top_joints() is m  # no branching joint: nothing to fold onto
    branch_at_0 = Skeleton(["h", "l", "r"], [-1, 0, 0], np.ones((3, 3)))
    m = Motion(branch_at_0, R.quat_identity((4, 3)), np.zeros((4, 3)), 30)
    assert m.fold_top_joints() is m
    # six channels everywhere: per-joint translations are kept, the top joint's set to its offset
    sk = humanoid()
    rng = np.random.default_rng(5)
    T = 6
    trans = np.broadcast_to(sk.offsets, (T, 22, 3)).copy()
    trans[:, 1] = [1.0, 2.0, 3.0]  # the branching joint static relative to a moving top joint
    m = Motion(Skeleton(sk.names, sk.parents, sk.offsets, root=0), R.quat_normalize(rng.normal(size=(T, 22, 4))),
               rng.normal(size=(T, 3)), 30, translations=trans)
    f = m.fold_top_joints()
    assert f.translations is not None and np.array_equal(f.translations[:, 0], np.broadcast_to(sk.offsets[0], (T, 3)))
    assert np.abs(f.global_positions()[:, 1:] - m.global_positions()[:, 1:]).max() < 1e-9
