"""glTF 2.0 export and import (`motionsynth.io.gltf`, issue 24 item 6): written files pass the Khronos glTF validator
with zero errors, read back equal, other exporters' layouts (armature transforms, rest rotations, nodes between
joints, STEP / CUBICSPLINE samplers) give the file's world positions, and bad files are refused in one line.

The validator is an npm package run by node (`scripts/gltf_validate.mjs`); `make tools` installs it into
``.tools/``. Its tests fail, never skip, when node or the validator is missing."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.errors import FormatError, MotionsynthError
from motionsynth.io import MOTION_SUFFIXES, load_motion, save_motion
from motionsynth.io.gltf import glb_bytes, parse_glb, read_glb, write_glb
from motionsynth.limits import LimitError
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

from helpers import cli_output, make_motion, make_skeleton

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = ROOT / "scripts" / "gltf_validate.mjs"
INSTALL = "make tools   (or: npm install --prefix .tools gltf-validator@2.0.0-dev.3.10)"


# ---- motions ---------------------------------------------------------------------------------------------------------
def one_joint_motion(frames: int = 30) -> Motion:
    rng = np.random.default_rng(3)
    skel = Skeleton(["Body"], [-1], np.zeros((1, 3)))
    rot = R.axis_angle_to_quat(rng.normal(size=(frames, 1, 3)) * 0.3)
    return Motion(skel, rot, np.cumsum(rng.normal(size=(frames, 3)), 0), 25.0, name="blob")


def translated_motion(frames: int = 60) -> Motion:
    """Every joint's translation animated (a BVH with 6 channels everywhere)."""
    m = make_motion(make_skeleton(), frames, seed=4)
    rng = np.random.default_rng(4)
    trans = m.skeleton.offsets + rng.normal(size=(frames, len(m.skeleton), 3))
    return replace(m, translations=trans, name="stretchy")


def end_site_motion() -> Motion:
    m = make_motion(make_skeleton(), 40, seed=2)
    sk = replace(m.skeleton, end_sites={5: np.array([0.0, 12.0, 1.0]), 9: np.array([8.0, 0.0, 0.0])})
    return replace(m, skeleton=sk, labels={"content": "walk", "style": "happy"})


def wide_motion() -> Motion:
    """300 joints in a chain-and-fan tree: JOINTS_0 as unsigned shorts."""
    rng = np.random.default_rng(5)
    parents = [-1] + [int(rng.integers(0, j)) for j in range(1, 300)]
    skel = Skeleton([f"j{j}" for j in range(300)], parents, rng.normal(size=(300, 3)) * 5)
    rot = R.axis_angle_to_quat(rng.normal(size=(5, 300, 3)) * 0.2)
    return Motion(skel, rot, rng.normal(size=(5, 3)), 60.0, name="wide")


CASES = {
    "bandai-like": lambda: make_motion(make_skeleton(), 120),
    "one-joint": one_joint_motion,
    "one-frame": lambda: make_motion(make_skeleton(), 1, seed=7),
    "translations": translated_motion,
    "end-sites": end_site_motion,
    "300-joints": wide_motion,
}


def assert_same_motion(back: Motion, m: Motion) -> None:
    """Equal up to float32 (glTF's only float): rotations 1e-5 (as rotations: q and -q alike), lengths to float32's
    7 digits of metres (2e-5 cm at 3 m), skeleton exactly as written."""
    assert back.skeleton.names == m.skeleton.names
    np.testing.assert_array_equal(back.skeleton.parents, m.skeleton.parents)
    np.testing.assert_allclose(back.skeleton.offsets, m.skeleton.offsets, atol=1e-9)
    assert back.skeleton.root == m.skeleton.root
    assert back.fps == m.fps and back.num_frames == m.num_frames and back.name == m.name
    q = R.quat_normalize(m.rotations)
    sign = np.where((back.rotations * q).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    np.testing.assert_allclose(back.rotations * sign, q, atol=1e-5)
    np.testing.assert_allclose(back.root_positions, m.root_positions, atol=1e-5, rtol=1e-7)
    if m.translations is None:
        assert back.translations is None
    else:
        np.testing.assert_allclose(back.translations, m.local_translations(), atol=1e-5, rtol=1e-7)


# ---- the Khronos validator -------------------------------------------------------------------------------------------
def validate(paths: list[Path]) -> list[dict]:
    """The validator's reports; fails (never skips) without node or the validator."""
    node = shutil.which("node")
    assert node, f"node is not installed: the glTF tests need node >= 18 and the validator ({INSTALL})"
    proc = subprocess.run([node, str(VALIDATE), *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), f"the glTF validator did not run ({proc.stderr.strip()}); install it: {INSTALL}"
    reports = json.loads(proc.stdout)
    return reports if len(paths) > 1 else [reports]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Motion, Path, dict]]:
    """Every case written as .glb and validated (one validator run): name → (motion, file, report)."""
    folder = tmp_path_factory.mktemp("glb")
    motions = {name: make() for name, make in CASES.items()}
    paths = {name: folder / f"{name}.glb" for name in motions}
    for name, m in motions.items():
        write_glb(m, paths[name])
    reports = validate(list(paths.values()))
    return {name: (motions[name], paths[name], report) for name, report in zip(motions, reports)}


def _assert_valid(report: dict) -> None:
    issues = report["issues"]
    errors = [m for m in issues["messages"] if m["severity"] == 0]
    assert issues["numErrors"] == 0, errors
    assert issues["numWarnings"] == 0, issues["messages"]  # none today: keep it so
    info = report["info"]
    assert info["animationCount"] == 1 and info["hasSkins"] and info["totalTriangleCount"] > 0


@pytest.mark.parametrize("case", list(CASES))
def test_the_khronos_validator_finds_no_error(written, case):
    _assert_valid(written[case][2])


@pytest.mark.slow  # ~2 s: building the motion is most of it
def test_a_long_clip_is_valid_and_reads_back(tmp_path):
    motion = make_motion(make_skeleton(), 36_000, seed=8)  # 20 minutes at 30 fps: 13 MB
    write_glb(motion, tmp_path / "long.glb")
    [report] = validate([tmp_path / "long.glb"])
    _assert_valid(report)
    assert_same_motion(read_glb(tmp_path / "long.glb"), motion)


@pytest.mark.parametrize("case", list(CASES))
def test_written_files_read_back_equal(written, case):
    motion, path, _ = written[case]
    back = read_glb(path)
    assert_same_motion(back, motion)
    assert back.labels == motion.labels
    for j, site in motion.skeleton.end_sites.items():
        np.testing.assert_allclose(back.skeleton.end_sites[j], site, atol=1e-9)


def test_round_trip_of_the_bandai_like_skeleton(tmp_path):
    m = make_motion(make_skeleton(), 90, fps=29.97)
    write_glb(m, tmp_path / "a.glb")
    back = read_glb(tmp_path / "a.glb")
    assert_same_motion(back, m)
    np.testing.assert_allclose(back.global_positions(), m.global_positions(), atol=1e-4)
    assert back.skeleton.root == 1  # Hips below the static Root, as written


def test_per_joint_translations_round_trip(tmp_path):
    m = translated_motion(30)
    save_motion(m, tmp_path / "t.glb")
    back = load_motion(tmp_path / "t.glb")
    assert_same_motion(back, m)
    assert all(len(c) == 6 for c in back.skeleton.channels)  # as a BVH with position channels everywhere


def _decode(data: bytes) -> tuple[dict, bytes]:
    (json_len,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20:20 + json_len])
    return doc, data[28 + json_len:]


def _encode(doc: dict, binary: bytes) -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 28 + len(text) + len(binary)
    return (b"glTF" + struct.pack("<II", 2, total) + struct.pack("<I", len(text)) + b"JSON" + text
            + struct.pack("<I", len(binary)) + b"BIN\0" + binary)


def _world(doc: dict, binary: bytes, node: int) -> np.ndarray:
    """A node's 4×4 world matrix in the file's rest pose (node TRS, no animation)."""
    parent = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    m = np.eye(4)
    while node is not None:
        n = doc["nodes"][node]
        local = np.eye(4)
        local[:3, :3] = R.quat_to_matrix(np.array(n.get("rotation", [0, 0, 0, 1.0]))) * np.array(n.get("scale", [1.0] * 3))
        local[:3, 3] = n.get("translation", [0, 0, 0])
        m = local @ m
        node = parent.get(node)
    return m


def test_the_rest_pose_and_bind_matrices_match_forward_kinematics(tmp_path):
    """The file's rest pose (node TRS) is the skeleton's (identity rotations at its offsets), in metres; the inverse
    bind matrices invert it; every mesh vertex hangs on one joint and the bones' triangles face outwards."""
    m = end_site_motion()
    doc, binary = _decode(glb_bytes(m))
    rest = Motion(m.skeleton, R.quat_identity((1, len(m.skeleton))), m.skeleton.offsets[m.skeleton.root][None],
                  m.fps).global_positions()[0]
    world = np.stack([_world(doc, binary, j)[:3, 3] for j in range(len(m.skeleton))])
    np.testing.assert_allclose(world * 100, rest, atol=1e-9)

    def array(index: int) -> np.ndarray:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        dtype = {5126: "<f4", 5121: "u1", 5123: "<u2", 5125: "<u4"}[acc["componentType"]]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc["type"]]
        start = view["byteOffset"] + acc.get("byteOffset", 0)
        return np.frombuffer(binary, dtype, acc["count"] * width, start).reshape(acc["count"], width)

    skin = doc["skins"][0]
    ibm = array(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    for j in range(len(m.skeleton)):
        np.testing.assert_allclose(ibm[j] @ _world(doc, binary, j), np.eye(4), atol=1e-6)
    prim = doc["meshes"][0]["primitives"][0]
    pos = array(prim["attributes"]["POSITION"]).astype(np.float64)
    joints, weights = array(prim["attributes"]["JOINTS_0"]), array(prim["attributes"]["WEIGHTS_0"])
    assert (weights[:, 0] == 1).all() and (weights[:, 1:] == 0).all() and (joints[:, 1:] == 0).all()
    tri = array(prim["indices"]).reshape(-1, 3)
    for bone in range(len(pos) // 6):  # each octahedron encloses a positive volume: its faces point outwards
        faces = tri[(tri >= 6 * bone).all(1) & (tri < 6 * bone + 6).all(1)]
        a, b, c = pos[faces[:, 0]], pos[faces[:, 1]], pos[faces[:, 2]]
        assert len(faces) == 8 and np.einsum("ij,ij->i", a, np.cross(b, c)).sum() > 0
    assert {n["name"] for n in doc["nodes"]} >= {"Head_end", "Hand_L_end"}
    extras = doc["animations"][0]["extras"]["motionsynth"]
    assert extras["fps"] == m.fps and extras["root"] == "Hips" and extras["labels"] == m.labels


# ---- other exporters' layouts ----------------------------------------------------------------------------------------
def _other_exporter_file() -> tuple[dict, bytes, dict]:
    """A file as Blender / Mixamo-style exporters write it: an "Armature" node (rotation, 0.01 scale, offset) above
    the joints, joints with rest rotations, a non-joint node between Hips and Spine, a uniformly scaled joint, the
    skin's joints out of tree order, an end node, and LINEAR, STEP and CUBICSPLINE samplers with keys of different
    densities (the densest, 31 keys a second, sets 30 fps). Returns (doc, binary, animated values by node)."""
    q = lambda axis, deg: R.axis_angle_to_quat(np.asarray(axis, float) * np.radians(deg)).tolist()
    nodes = [
        {"name": "Armature", "children": [1], "rotation": q([1, 0, 0], 90), "scale": [0.01] * 3,
         "translation": [0.1, 0.0, 0.2]},
        {"name": "Hips", "children": [2, 4], "translation": [0, 100, 0], "rotation": q([0, 1, 0], 20)},
        {"name": "Offset", "children": [3], "translation": [0, 10, 0], "rotation": q([0, 0, 1], 30)},
        {"name": "Spine", "translation": [0, 20, 5], "rotation": q([1, 0, 0], -15)},
        {"name": "Left Leg", "children": [5], "translation": [10, -5, 0], "scale": [2, 2, 2]},
        {"name": "LeftFoot", "children": [6], "translation": [0, -40, 0], "rotation": q([0, 0, 1], 5)},
        {"name": "LeftFoot_end", "translation": [0, -5, 3]},
    ]
    rng = np.random.default_rng(0)
    key = {
        (1, "translation", "LINEAR"): (np.array([0, 0.5, 1.0]), np.array([[0, 100, 0], [30, 95, 4], [60, 100, 10.0]])),
        (1, "rotation", "LINEAR"): (np.array([0.0, 1.0]), R.axis_angle_to_quat(np.array([[0, 0.3, 0], [0.2, -1.0, 0.1]]))),
        (3, "rotation", "STEP"): (np.array([0.0, 0.4]), R.axis_angle_to_quat(np.array([[0.3, 0, 0], [-0.2, 0, 0.4]]))),
        (4, "rotation", "CUBICSPLINE"): (np.array([0.0, 1.0]), R.axis_angle_to_quat(np.array([[0.5, 0, 0], [-0.5, 0.2, 0]]))),
        (5, "rotation", "LINEAR"): (np.arange(31) / 30, R.axis_angle_to_quat(rng.normal(size=(31, 3)) * 0.4)),
    }
    channels, samplers, accessors, views, binary = [], [], [], [], b""

    def add(a: np.ndarray, kind: str) -> int:
        nonlocal binary
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(raw)})
        binary += raw
        acc = {"bufferView": len(views) - 1, "componentType": 5126, "count": len(a), "type": kind}
        if kind == "SCALAR":
            acc |= {"min": [float(a.min())], "max": [float(a.max())]}
        accessors.append(acc)
        return len(accessors) - 1

    values = {}
    for (node, path, interp), (times, vals) in key.items():
        vals32 = np.asarray(vals, dtype=np.float32).astype(np.float64)
        values[node, path] = (times.astype(np.float32).astype(np.float64), vals32, interp)
        out = vals32 if interp != "CUBICSPLINE" else np.stack([np.zeros_like(vals32), vals32, np.zeros_like(vals32)], 1)
        samplers.append({"input": add(times, "SCALAR"), "output": add(out.reshape(-1, vals32.shape[-1]),
                                                                          "VEC4" if path == "rotation" else "VEC3"),
                         "interpolation": interp})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": nodes,
           "skins": [{"joints": [5, 3, 1, 4]}],
           "animations": [{"name": "Take 001", "channels": channels, "samplers": samplers}],
           "accessors": accessors, "bufferViews": views, "buffers": [{"byteLength": len(binary)}]}
    return doc, binary, values


def _pose_at(doc: dict, values: dict, t: float) -> dict:
    """The nodes as the glTF spec samples them at time t (the test's own sampling)."""
    doc = json.loads(json.dumps(doc))
    for (node, path), (times, vals, interp) in values.items():
        i = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1))
        j = min(i + 1, len(times) - 1)
        w = 0.0 if j == i else float(np.clip((t - times[i]) / (times[j] - times[i]), 0, 1))
        if interp == "STEP":
            v = vals[j] if w >= 1 else vals[i]
        elif interp == "CUBICSPLINE":  # zero tangents: a smoothstep between the values
            s = 3 * w**2 - 2 * w**3
            v = (1 - s) * vals[i] + s * vals[j]
            v = v / np.linalg.norm(v)
        elif path == "rotation":
            v = R.slerp(vals[i], vals[j], np.array(w))
        else:
            v = (1 - w) * vals[i] + w * vals[j]
        doc["nodes"][node][path] = [float(x) for x in v]
    return doc


def test_other_exporters_layout_gives_the_files_world_positions(tmp_path):
    doc, binary, values = _other_exporter_file()
    (tmp_path / "rig.glb").write_bytes(_encode(doc, binary))
    m = read_glb(tmp_path / "rig.glb")
    assert m.skeleton.names == ["Hips", "Spine", "Left_Leg", "LeftFoot"]  # depth first; spaces become _
    np.testing.assert_array_equal(m.skeleton.parents, [-1, 0, 0, 2])
    assert m.fps == 30 and m.num_frames == 31 and m.name == "rig" and m.skeleton.root == 0
    assert m.translations is None
    joint_nodes = [1, 3, 4, 5]
    got = m.global_positions()
    got_rot = R.quat_to_matrix(m.global_rotations())
    for frame in (0, 7, 12, 15, 22, 30):
        posed = _pose_at(doc, values, frame / 30)
        for j, n in enumerate(joint_nodes):
            world = _world(posed, binary, n)
            np.testing.assert_allclose(got[frame, j], world[:3, 3] * 100, atol=1e-4)  # metres → cm
            rot = world[:3, :3] / np.linalg.norm(world[:3, :3], axis=0)
            np.testing.assert_allclose(got_rot[frame, j], rot, atol=1e-5)
    end = _world(doc, binary, 6)[:3, 3] * 100  # the end node: an end site of LeftFoot, in the rest pose
    foot = _world(doc, binary, 5)
    foot_rotation = foot[:3, :3] / np.linalg.norm(foot[:3, 0])
    np.testing.assert_allclose(foot[:3, 3] * 100 + foot_rotation @ m.skeleton.end_sites[3], end, atol=1e-6)


def test_a_skin_of_several_trees_gets_their_common_parent(tmp_path):
    doc, binary, _ = _other_exporter_file()
    doc["skins"][0]["joints"] = [3, 4]  # Spine and the leg: Hips, their common ancestor, joins as joint 0
    m = parse_glb(_encode(doc, binary))
    assert m.skeleton.names == ["Hips", "Spine", "Left_Leg"]
    np.testing.assert_array_equal(m.skeleton.parents, [-1, 0, 0])


def test_fps_is_estimated_from_key_times_without_our_extras(tmp_path):
    m = make_motion(make_skeleton(), 50, fps=60)
    doc, binary = _decode(glb_bytes(m))
    del doc["animations"][0]["extras"]
    back = parse_glb(_encode(doc, binary), "x.glb")
    assert back.fps == 60 and back.num_frames == 50 and back.name == "x"
    assert back.skeleton.root == 1  # the first joint whose translation moves


def test_a_gltf_json_file_with_an_embedded_buffer(tmp_path):
    import base64

    m = one_joint_motion(10)
    doc, binary = _decode(glb_bytes(m))
    doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode()
    (tmp_path / "a.gltf").write_text(json.dumps(doc))
    assert_same_motion(read_glb(tmp_path / "a.gltf"), m)
    doc["buffers"][0]["uri"] = "a.bin"  # an external file beside it
    (tmp_path / "a.bin").write_bytes(binary)
    (tmp_path / "b.gltf").write_text(json.dumps(doc))
    assert_same_motion(read_glb(tmp_path / "b.gltf"), m)
    with pytest.raises(FormatError, match="external file"):
        parse_glb(json.dumps(doc).encode())


# ---- bad files --------------------------------------------------------------------------------------------------------
def _good() -> tuple[dict, bytes]:
    return _decode(glb_bytes(make_motion(make_skeleton(), 20)))


def _edited(edit) -> bytes:
    doc, binary = _good()
    edit(doc)
    return _encode(doc, binary)


def _set(doc: dict, path: str, value) -> None:
    *keys, last = [int(k) if k.isdigit() else k for k in path.split("/")]
    for k in keys:
        doc = doc[k]
    doc[last] = value


BAD = {
    "wrong magic": (b"PK\x03\x04" + b"\0" * 40, "not a glTF file"),
    "glTF 1": (b"glTF" + struct.pack("<II", 1, 20) + b"\0" * 8, "version 1"),
    "short header": (b"glTF\x02\0", "truncated"),
    "truncated": (None, "truncated: the header says"),
    "bad json": (b"glTF" + struct.pack("<II", 2, 24) + struct.pack("<I", 4) + b"JSON" + b"{{{ ", "cannot be parsed"),
    "no skin": (lambda d: d.pop("skins"), "no skin"),
    "accessor out of range": (lambda d: _set(d, "accessors/10/count", 10**9), "accessor out of range"),
    "view out of range": (lambda d: _set(d, "bufferViews/6/byteLength", 10**9), "outside its buffer"),
    "joint index": (lambda d: _set(d, "skins/0/joints/3", 999), "out of range"),
    "non-uniform scale": (lambda d: _set(d, "nodes/2/scale", [1, 2, 1]), "non-uniform scale"),
    "cycle": (lambda d: _set(d, "nodes/21/children", [0]), "cycle"),
    "two parents": (lambda d: _set(d, "nodes/21/children", [2]), "two parents"),
    "sampler count": (lambda d: _set(d, "accessors/7/count", 5), "output values for"),
    "bad rotation": (lambda d: _set(d, "nodes/3/rotation", [0, 0, 0, 0]), "zero norm"),
    "interpolation": (lambda d: _set(d, "animations/0/samplers/0/interpolation", "SMOOTH"), "interpolation"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_are_refused_in_one_line(case, tmp_path):
    data, words = BAD[case]
    if data is None:
        data = glb_bytes(make_motion(make_skeleton(), 20))[:-100]
    elif callable(data):
        data = _edited(data)
    (tmp_path / "bad.glb").write_bytes(data)
    with pytest.raises(FormatError) as e:
        load_motion(tmp_path / "bad.glb")
    message = str(e.value)
    assert words in message and "\n" not in message and message.startswith(str(tmp_path / "bad.glb")), message


def test_huge_frame_counts_are_refused_before_allocating(tmp_path):
    data = _edited(lambda d: _set(d, "animations/0/extras/motionsynth/fps", 1e6))  # 19 frames → 633,334 frames ...
    with pytest.raises(LimitError, match="joint-frames"):
        parse_glb(data, "huge.glb", max_joint_frames=1_000_000)  # ... x 22 joints > 1,000,000


def test_cli_convert_to_and_from_glb(tmp_path, capsys):
    assert ".glb" in MOTION_SUFFIXES
    m = make_motion(make_skeleton(), 40)
    save_motion(m, tmp_path / "clip.bvh")
    code, out, err = cli_output(capsys, "convert", str(tmp_path / "clip.bvh"), str(tmp_path / "clip.glb"))
    assert code == 0, err
    code, out, err = cli_output(capsys, "convert", str(tmp_path / "clip.glb"), str(tmp_path / "back.bvh"))
    assert code == 0, err
    back = load_motion(tmp_path / "back.bvh")
    np.testing.assert_allclose(back.global_positions(), m.global_positions(), atol=1e-3)


def test_output_into_a_read_only_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    m = make_motion(make_skeleton(), 10)
    save_motion(m, tmp_path / "clip.bvh")
    box = tmp_path / "box"
    box.mkdir()
    folder = box / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: then a file where the folder goes, as in
            folder.chmod(0o755)  # test_output_errors
            folder.rmdir()
            folder.write_text("a file, not a folder\n")
        target = folder / "out.glb"
        code, _, err = cli_output(capsys, "convert", str(tmp_path / "clip.bvh"), str(target))
        assert code == 2 and err.strip().startswith("error:") and "Traceback" not in err, err
        assert "read-only" in err and len(err.strip().splitlines()) == 1, err
        with pytest.raises((OSError, MotionsynthError)):
            write_glb(m, target)
        assert sorted(p.name for p in box.rglob("*")) == ["read-only"]
    finally:
        if folder.is_dir():
            folder.chmod(0o755)


def test_what_cannot_be_written_is_refused(tmp_path):
    m = make_motion(make_skeleton(), 10)
    with pytest.raises(MotionsynthError, match="unknown length unit"):
        write_glb(m, tmp_path / "a.glb", units="furlong")
    fast = replace(m[:3], fps=1e50)  # frame times below float32's smallest number
    with pytest.raises(MotionsynthError, match="float32"):
        write_glb(fast, tmp_path / "b.glb")
    assert list(tmp_path.iterdir()) == []


def test_units(tmp_path):
    m = one_joint_motion(5)
    write_glb(m, tmp_path / "m.glb", units="m")
    doc, _ = _decode((tmp_path / "m.glb").read_bytes())
    back = read_glb(tmp_path / "m.glb", units="m")
    np.testing.assert_allclose(back.root_positions, m.root_positions, atol=1e-5, rtol=1e-7)
    np.testing.assert_allclose(read_glb(tmp_path / "m.glb").root_positions, m.root_positions * 100, rtol=1e-6)
    assert doc["asset"]["version"] == "2.0" and doc["animations"][0]["extras"]["motionsynth"]["units"] == "m"
