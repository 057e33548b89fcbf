"""Every task on any humanoid rig (`methods.rig`): into the model's body and frame rate, the model, back to the user's
rig — the observed parts exactly as given, the joints the model lacks filled by the task's baseline."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.body import NotHumanoidError
from motionsynth.methods.rig import OnRig, on_skeleton
from motionsynth.motion import Motion
from motionsynth.registry import load_method
from motionsynth.skeleton import Skeleton
from motionsynth.tasks import TASKS, Request, keyframe_mask

from helpers import creature_skeleton, make_motion, tiny_checkpoint


def fingered_rig(base: Skeleton) -> Skeleton:
    """``base`` with a prefix on every name, bones twice as long and a two-joint finger under each hand."""
    names = [f"rig:{n}" for n in base.names]
    parents, offsets = list(base.parents), list(base.offsets * 2.0)
    for hand in ("LeftHand", "RightHand"):
        h = base.names.index(hand)
        names += [f"rig:{hand}Index1", f"rig:{hand}Index2"]
        parents += [h, len(names) - 2]
        offsets += [base.offsets[h] * 0.5, base.offsets[h] * 0.3]
    return Skeleton(names, parents, np.array(offsets), root=base.root)


@pytest.fixture(scope="module")
def method(cache, tmp_path_factory):
    folder = tiny_checkpoint(tmp_path_factory.mktemp("rig") / "cvae", "cvae", cache.skeleton, cache.stats)
    return load_method(folder)


def test_the_models_own_skeleton_and_frame_rate_need_no_wrapper(method):
    assert on_skeleton(method, method.skeleton, "inbetween", method.fps) is method
    assert isinstance(on_skeleton(method, method.skeleton, "inbetween", 2 * method.fps), OnRig)
    with pytest.raises(NotHumanoidError, match="not a humanoid"):
        on_skeleton(method, creature_skeleton(), "inbetween")


def test_inbetweening_on_another_rig_keeps_the_keys_and_fills_the_fingers(method):
    rig = fingered_rig(method.skeleton)
    given = make_motion(rig, 40, seed=5)
    wrapped = on_skeleton(method, rig, "inbetween", given.fps)
    assert isinstance(wrapped, OnRig) and wrapped.skeleton is rig and wrapped.window == method.window
    fingers = [j for j, n in enumerate(rig.names) if "Index" in n and not wrapped.to_rig.mapped[j]]
    assert fingers  # the model has no fingers: at least the finger tips have no counterpart
    mask = keyframe_mask(40, len(rig), [0, 20, 39])
    [result] = wrapped.complete(given, mask, seed=0)
    assert result.skeleton is rig and result.num_frames == 40
    for k in (0, 20, 39):
        np.testing.assert_allclose(result.rotations[k], given.rotations[k])
        np.testing.assert_allclose(result.root_positions[k], given.root_positions[k])
    # fingers between the keys: the task's baseline (SLERP between the keyed values), not the rest pose
    slerp = TASKS["inbetween"].baseline
    assert slerp == "slerp"
    mid = result.rotations[10, fingers]
    assert not np.allclose(np.abs(mid[:, 3]), 1.0)
    assert np.all(np.isfinite(result.global_positions()))


def test_a_mask_maps_joint_by_joint_into_the_models_body(method):
    rig = fingered_rig(method.skeleton)
    wrapped = OnRig(method, rig, "complete")
    work = TASKS["complete"].make(Request(motion=make_motion(rig, 32, seed=1), observe=["upper body"]))
    on_model, model_mask = wrapped.into_model(work.motion, work.mask)
    assert on_model.skeleton is method.skeleton and model_mask.joints.shape == (32, len(method.skeleton))
    upper, root = set(method.skeleton.groups["upper"]), {method.skeleton.root}
    observed = set(np.flatnonzero(model_mask.joints[0]).tolist())
    assert upper - root <= observed and not observed & (set(method.skeleton.groups["lower"]) - upper - root)


def test_another_frame_rate_is_resampled_in_and_out(method):
    given = make_motion(method.skeleton, 81, seed=2, fps=2 * method.fps)
    wrapped = on_skeleton(method, method.skeleton, "inbetween", given.fps)
    on_model, model_mask = wrapped.into_model(given, keyframe_mask(81, len(method.skeleton), [0, 40, 80]))
    assert on_model.fps == method.fps and on_model.num_frames == 41
    assert np.flatnonzero(model_mask.frames).tolist() == [0, 20, 40]
    [result] = wrapped.complete(given, keyframe_mask(81, len(method.skeleton), [0, 40, 80]), seed=0)
    assert result.fps == given.fps and result.num_frames == 81
    np.testing.assert_allclose(result.rotations[[0, 40, 80]], given.rotations[[0, 40, 80]])


def test_generation_on_a_rig(method):
    rig = fingered_rig(method.skeleton)
    wrapped = on_skeleton(method, rig, "generate")
    request = Request(skeleton=rig, fps=method.fps, window=method.window)
    work = TASKS["generate"].make(request)
    [result] = wrapped.complete(work.motion, work.mask, seed=1)
    assert isinstance(result, Motion) and result.skeleton is rig and np.all(np.isfinite(result.rotations))
