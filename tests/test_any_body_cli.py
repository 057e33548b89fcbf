"""Any body in and out from the command line: `rig`, `retarget`, keypoints and glTF through `convert` and the task
commands — and every bad input of issue 24 as one line, exit 2, nothing written."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from motionsynth.fit import motion_keypoints, rest_skeleton
from motionsynth.io import load_motion, save_motion
from motionsynth.retarget import retarget

from helpers import biped_motion, biped_skeleton, cli_output, creature_skeleton, make_motion


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("anybody")
    clip = biped_motion(biped_skeleton(), T=40, seed=1, name="walk")
    save_motion(clip, d / "walk.bvh")
    save_motion(make_motion(creature_skeleton(), 20), d / "creature.bvh")
    kp = motion_keypoints(retarget(clip, rest_skeleton("h36m")), "h36m")
    np.save(d / "kp.npy", kp)
    bad = kp.copy()
    bad[:, 3] = np.nan  # a point missing on every frame
    np.save(d / "kp_nan.npy", bad)
    np.save(d / "kp_count.npy", kp[:, :15])
    (d / "map.yaml").write_text("pelvis: Hips\nleft_thigh: NoSuchJoint\n")
    (d / "file").write_text("")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    (d / "evil.pkl").write_bytes(pickle.dumps({"poses": Payload()}))
    return d


def test_rig_prints_the_map_and_retarget_writes_any_format(files, tmp_path, capsys):
    code, out, _ = cli_output(capsys, "rig", files / "walk.bvh")
    assert code == 0 and "pelvis: Hips" in out
    for name in ("on_smpl.glb", "on_smpl.npz"):
        code, _, err = cli_output(capsys, "retarget", files / "walk.bvh", "--to", files / "walk.bvh", "-o",
                                  tmp_path / name)
        assert code == 0, err
        assert load_motion(tmp_path / name).num_frames == 40


def test_keypoints_in_and_out_of_a_task(files, tmp_path, capsys):
    out = tmp_path / "filled.json"
    code, _, err = cli_output(capsys, "inbetween", files / "kp.npy", "--layout", "h36m", "--model", "slerp",
                              "--keyframes", "0,20,end", "-o", out)
    assert code == 0, err
    written = load_motion(out, layout="h36m")  # the written keypoints, fitted again
    fitted = load_motion(files / "kp.npy", layout="h36m")  # what the task saw: the skeleton fitted to IN
    assert written.num_frames == 40
    keys = [0, 20, 39]  # observed: the fitted keypoints come back (to the writer's float precision)
    np.testing.assert_allclose(motion_keypoints(written, "h36m")[keys], motion_keypoints(fitted, "h36m")[keys],
                               atol=1e-4)


@pytest.mark.parametrize("args, says", [
    (["rig", "{d}/creature.bvh"], "not a humanoid"),
    (["retarget", "{d}/creature.bvh", "--to", "{d}/walk.bvh", "-o", "{out}/o.bvh"], "not a humanoid"),
    (["retarget", "{d}/walk.bvh", "--to", "{d}/walk.bvh", "--joint-map", "{d}/map.yaml", "-o", "{out}/o.bvh"],
     "NoSuchJoint"),
    (["convert", "{d}/kp_nan.npy", "{out}/o.bvh", "--layout", "h36m"], "NaN"),
    (["convert", "{d}/kp_count.npy", "{out}/o.bvh", "--layout", "h36m"], "15"),
    (["convert", "{d}/kp.npy", "{out}/o.bvh"], "--layout"),
    (["convert", "{d}/kp.npy", "{out}/o.bvh", "--layout", "openpose"], "--layout must be one of"),
    (["convert", "{d}/evil.pkl", "{out}/o.bvh"], "refuses"),
    (["convert", "{d}/walk.bvh", "{d}/file/o.glb"], "file"),
    (["inbetween", "{d}/walk.bvh", "--model", "slerp", "--keyframes", "0,39", "-o", "{out}/o.npy"], "--layout"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, tmp_path, capsys, args, says):
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = cli_output(capsys, *[a.format(d=files, out=out) for a in args])
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert says in err and "ran" not in stdout
    assert list(out.iterdir()) == [] and not (files / "file").is_dir()
