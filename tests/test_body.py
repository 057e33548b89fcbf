"""The body map (`motionsynth.body`): roles from names, topology and joint maps; reference-pose geometry; `rig`."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.body import ROLES, NotHumanoidError, body_map, finger_key, load_joint_map
from motionsynth.errors import MotionsynthError
from motionsynth.io.amass import smpl_skeleton
from motionsynth.io.bvh import write_bvh
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

from helpers import HUMANOID_BANDAI as BANDAI
from helpers import HUMANOID_MIXAMO, cli_output, humanoid


def test_roles_from_mixamo_names_with_a_prefix():
    bm = body_map(humanoid(prefix="mixamorig1:", spine=3))
    assert bm.convention == "mixamo"
    names = bm.skeleton.names
    assert names[bm.joint("left_hand")] == "mixamorig1:LeftHand"
    assert [names[j] for j in bm.roles["spine"]] == ["mixamorig1:Spine", "mixamorig1:Spine1", "mixamorig1:Spine2"]
    assert names[bm.joint("right_toe")] == "mixamorig1:RightToeBase"
    assert all(bm.joint(r) is not None for r in ROLES)
    assert bm.unmapped == {}


def test_roles_from_bandai_names_and_geometry():
    bm = body_map(humanoid(BANDAI, spine=2))
    assert bm.skeleton.names[bm.joint("left_upper_arm")] == "UpperArm_L"
    np.testing.assert_allclose(bm.up, [0, 1, 0])
    np.testing.assert_allclose(bm.forward, [0, 0, 1])
    assert bm.height == pytest.approx(95 + 8 + 12 + 12 + 10 + 15)
    assert bm.role_of(bm.joint("head")) == "head"


def test_smpl_names():
    bm = body_map(smpl_skeleton())
    assert bm.convention == "smpl"
    assert bm.skeleton.names[bm.joint("left_forearm")] == "left_elbow"
    assert bm.skeleton.names[bm.joint("left_toe")] == "left_foot"
    assert len(bm.roles["spine"]) == 3


@pytest.mark.parametrize("zup", [False, True])
def test_units_and_up_axis(zup):
    cm, m = body_map(humanoid(zup=zup)), body_map(humanoid(zup=zup, scale=0.01))
    assert m.height == pytest.approx(cm.height / 100)
    assert m.leg_length == pytest.approx(cm.leg_length / 100)
    np.testing.assert_allclose(cm.up, [0, 0, 1] if zup else [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(cm.forward, [0, -1, 0] if zup else [0, 0, 1], atol=1e-12)
    assert cm.height == pytest.approx(95 + 8 + 12 + 12 + 12 + 10 + 15)  # toes on the floor to the head's end site


def test_missing_clavicles_and_extra_spine():
    bm = body_map(humanoid(spine=4, clavicles=False))
    assert bm.joint("left_clavicle") is None and len(bm.roles["spine"]) == 4
    assert bm.chest() == bm.roles["spine"][-1]


def test_topology_fallback_finds_roles_and_sides():
    bm = body_map(humanoid(generic=True))
    assert bm.convention == "topology"
    names = bm.skeleton.names
    assert names[bm.joint("left_hand")] == "j_a_hand" and names[bm.joint("right_foot")] == "j_b_foot"
    assert names[bm.joint("left_clavicle")] == "j_a_clavicle"
    assert names[bm.joint("head")] == "j_head" and [names[j] for j in bm.roles["neck"]] == ["j_neck"]


def test_bone_axis_rest_gets_a_t_pose():
    bm = body_map(humanoid(BANDAI, bone_axis=True))
    assert bm.synthesised_rest
    np.testing.assert_allclose(bm.up, [0, 1, 0], atol=1e-9)
    pos = bm.rest_positions()
    assert pos[bm.joint("left_hand")][0] > pos[bm.joint("right_hand")][0]
    assert pos[bm.joint("head")][1] > pos[bm.joint("pelvis")][1] > pos[bm.joint("left_foot")][1]


def test_joint_map_override(tmp_path):
    skel = humanoid(generic=True)
    path = tmp_path / "map.yaml"
    path.write_text("pelvis: j_pelvis\nspine: [j_spine0, j_spine1, j_spine2]\nneck: [j_neck]\nhead: j_head\n"
                    + "".join(f"{s}_{r}: j_{k}_{r}\n" for s, k in (("left", "a"), ("right", "b"))
                              for r in ("upper_arm", "forearm", "hand", "thigh", "shin", "foot")))
    bm = body_map(skel, load_joint_map(path), where=str(path))
    assert bm.convention == "joint map"
    assert bm.skeleton.names[bm.joint("right_shin")] == "j_b_shin"
    assert bm.joint("left_clavicle") is None  # not in the map: unmapped
    assert bm.unmapped[skel.index("j_a_clavicle")]


def test_joint_map_errors(tmp_path):
    skel = humanoid(generic=True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("pelvis: nosuch\nhead: j_head\n")
    with pytest.raises(MotionsynthError, match=r"bad.yaml: no joints named nosuch"):
        body_map(skel, load_joint_map(bad), where=str(bad))
    short = tmp_path / "short.yaml"
    short.write_text("pelvis: j_pelvis\nhead: j_head\n")
    with pytest.raises(NotHumanoidError, match="left_upper_arm"):
        body_map(skel, load_joint_map(short), where=str(short))
    role = tmp_path / "role.yaml"
    role.write_text("tail: j_head\n")
    with pytest.raises(MotionsynthError, match="role.yaml: unknown roles tail"):
        load_joint_map(role)
    broken = tmp_path / "broken.yaml"
    broken.write_text("pelvis: [unclosed\n")
    with pytest.raises(MotionsynthError, match="broken.yaml: not valid YAML"):
        load_joint_map(broken)
    with pytest.raises(MotionsynthError, match="absent.yaml"):
        load_joint_map(tmp_path / "absent.yaml")


def snake() -> Skeleton:
    return Skeleton([f"seg{i}" for i in range(8)], [-1, *range(7)], np.tile([0, 0, 10.0], (8, 1)))


def quadruped() -> Skeleton:
    spec = [("body", -1, (0, 50, 0)), ("tail", 0, (0, 0, -20)), ("neck", 0, (0, 5, 30)), ("skull", 2, (0, 5, 10))]
    for leg, (x, z) in {"fl": (8, 25), "fr": (-8, 25), "bl": (8, -25), "br": (-8, -25)}.items():
        spec += [(f"{leg}1", 0, (x, 0, z)), (f"{leg}2", len(spec), (0, -25, 0)), (f"{leg}3", len(spec) + 1,
                                                                                  (0, -25, 0))]
    names, parents, offsets = zip(*spec)
    return Skeleton(list(names), list(parents), np.array(offsets, float))


@pytest.mark.parametrize("build", [snake, quadruped])
def test_not_humanoid_names_missing_roles(build):
    with pytest.raises(NotHumanoidError, match="not a humanoid skeleton: no .*(pelvis|upper_arm|head)") as e:
        body_map(build())
    assert e.value.missing


def test_finger_keys():
    assert finger_key("LeftHandIndex2") == ("left", "index", 2)
    assert finger_key("RightInHandPinky") == ("right", "pinky", 0)
    assert finger_key("left_thumb1") == ("left", "thumb", 1)
    assert finger_key("LeftForeArm") is None


def _clip(skeleton: Skeleton, path):
    motion = Motion(skeleton, R.quat_identity((3, len(skeleton))), np.zeros((3, 3)), 30.0)
    write_bvh(motion, path)
    return path


def test_rig_command(tmp_path, capsys):
    code, out, _ = cli_output(capsys, "rig", _clip(humanoid(prefix="mixamorig:"), tmp_path / "a.bvh"))
    assert code == 0
    assert "convention: mixamo" in out and "left_hand: mixamorig:LeftHand" in out and "up (+0, +1, +0)" in out


def test_rig_command_refuses_a_snake(tmp_path, capsys):
    code, _, err = cli_output(capsys, "rig", _clip(snake(), tmp_path / "snake.bvh"))
    assert code == 2
    assert err.startswith("error: not a humanoid skeleton: no pelvis") and err.count("\n") == 1


def test_body_map_is_computed_once_per_skeleton(tmp_path):
    skel = humanoid(BANDAI, bone_axis=True)
    bm = body_map(skel)
    assert body_map(skel) is bm and body_map(humanoid(BANDAI, bone_axis=True)) is not bm
    path = tmp_path / "map.yaml"
    path.write_text("".join(f"{r}: {skel.names[bm.joint(r)]}\n" for r in ROLES if bm.joint(r) is not None))
    assert body_map(skel, load_joint_map(path)) is not bm  # a joint map is never cached
    pos = bm.rest_positions()
    pos[:] = 0  # a copy: the cached reference pose is unchanged
    assert np.abs(bm.rest_positions()).max() > 10
    bm.rest_rotations = R.quat_identity((len(skel),))  # a new reference pose is seen
    np.testing.assert_allclose(bm.rest_positions()[skel.index("Hips")], skel.offsets[0])


UNREAL = dict(pelvis="pelvis", spine=("spine_01", "spine_02", "spine_03"), neck="neck_01", head="head",
              clavicle="clavicle_{l}", upper_arm="upperarm_{l}", forearm="lowerarm_{l}", hand="hand_{l}",
              thigh="thigh_{l}", shin="calf_{l}", foot="foot_{l}", toe="ball_{l}")
CHARACTER_CREATOR = dict(pelvis="CC_Base_Hip", spine=("CC_Base_Waist", "CC_Base_Spine01", "CC_Base_Spine02"),
                         neck="CC_Base_NeckTwist01", head="CC_Base_Head", clavicle="CC_Base_{s}_Clavicle",
                         upper_arm="CC_Base_{s}_Upperarm", forearm="CC_Base_{s}_Forearm", hand="CC_Base_{s}_Hand",
                         thigh="CC_Base_{s}_Thigh", shin="CC_Base_{s}_Calf", foot="CC_Base_{s}_Foot",
                         toe="CC_Base_{s}_ToeBase")
UNITY = dict(pelvis="Hips", spine=("Spine", "Chest", "UpperChest"), neck="Neck", head="Head",
             clavicle="{S}Shoulder", upper_arm="{S}UpperArm", forearm="{S}LowerArm", hand="{S}Hand",
             thigh="{S}UpperLeg", shin="{S}LowerLeg", foot="{S}Foot", toe="{S}Toes")
LAFAN1 = dict(pelvis="Hips", spine=("Spine", "Spine1", "Spine2"), neck="Neck", head="Head", clavicle="{S}Shoulder",
              upper_arm="{S}Arm", forearm="{S}ForeArm", hand="{S}Hand", thigh="{S}UpLeg", shin="{S}Leg",
              foot="{S}Foot", toe="{S}Toe")
CMU = dict(pelvis="Hips", spine=("LowerBack", "Spine", "Spine1"), neck="Neck", head="Head", clavicle="{S}Shoulder",
           upper_arm="{S}Arm", forearm="{S}ForeArm", hand="{S}Hand", thigh="{S}UpLeg", shin="{S}Leg",
           foot="{S}Foot", toe="{S}ToeBase")
SMPL = dict(pelvis="pelvis", spine=("spine1", "spine2", "spine3"), neck="neck", head="head", clavicle="{side}_collar",
            upper_arm="{side}_shoulder", forearm="{side}_elbow", hand="{side}_wrist", thigh="{side}_hip",
            shin="{side}_knee", foot="{side}_ankle", toe="{side}_foot")


def _named(names: dict) -> Skeleton:
    """`helpers.humanoid` (three spine joints, clavicles) with names filled per side in every spelling used above."""
    sk = humanoid()
    mixamo = {v: k for k, v in _role_names(HUMANOID_MIXAMO).items()}
    table = _role_names(names)
    return Skeleton([table[mixamo[n]] for n in sk.names], sk.parents, sk.offsets, end_sites=sk.end_sites)


def _role_names(names: dict) -> dict[str, str]:
    out = {}
    for key, value in names.items():
        if key == "spine":
            seq = value if isinstance(value, tuple) else tuple(value.format(i or "") for i in range(3))
            out.update({f"spine{i}": n for i, n in enumerate(seq)})
            continue
        for side in ("left", "right"):
            text = value.format(S=side.title(), s=side[0].upper(), l=side[0], side=side)
            out[f"{side}_{key}" if "{" in value else key] = text
    return out


@pytest.mark.parametrize("names, convention", [(UNREAL, "unreal"), (CHARACTER_CREATOR, "character creator"),
                                               (UNITY, "unity"), (LAFAN1, "lafan1"), (CMU, "cmu"),
                                               (SMPL, "smpl"), (HUMANOID_MIXAMO, "mixamo")])
def test_every_listed_convention_maps_from_names(names, convention):
    sk = _named(names)
    bm = body_map(sk)
    assert bm.convention == convention or (convention == "mixamo" and bm.convention in ("mixamo", "lafan1", "cmu"))
    table = _role_names(names)
    for role in ("pelvis", "head", "left_hand", "right_hand", "left_foot", "right_foot", "left_forearm",
                 "right_shin"):
        assert sk.names[bm.joint(role)] == table[role], (role, sk.names[bm.joint(role)])
    assert [sk.names[j] for j in bm.roles["spine"]] == [table[f"spine{i}"] for i in range(3)]


def test_a_natural_pose_gives_the_same_t_pose_with_its_own_twists():
    """`natural_map`: each bone turned from the start pose into the T-pose by the smallest rotation — the bone
    directions are the T-pose's, the twist about each bone the start pose's; from the identity, the plain T-pose."""
    from motionsynth.body import natural_map

    sk = humanoid(BANDAI, bone_axis=True)
    plain = body_map(sk)
    np.testing.assert_allclose(natural_map(sk, R.quat_identity((len(sk),))).rest_positions(), plain.rest_positions(),
                               atol=1e-9)
    rng = np.random.default_rng(0)
    start = R.axis_angle_to_quat(rng.normal(scale=0.4, size=(len(sk), 3)))
    natural = natural_map(sk, start)
    np.testing.assert_allclose(natural.rest_positions(), plain.rest_positions(), atol=1e-6)  # same directions
    assert not np.allclose(natural.rest_rotations, plain.rest_rotations, atol=1e-3)  # other twists
    np.testing.assert_allclose(natural.up, plain.up)
    assert natural.height == pytest.approx(plain.height)
