"""Builders shared by the tests: small skeletons, smooth synthetic motions, tiny configs and checkpoints of every
family. Tests import them from here (``from helpers import …``); fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from motionsynth import rotations as R
from motionsynth.checkpoint import save_checkpoint
from motionsynth.data.cache import split_of
from motionsynth.data.features import FeatureStats, encode
from motionsynth.models.hmvae import HMVAE, HMVAEConfig
from motionsynth.models.meva import MEVA, MEVAConfig, MotionVAE, MotionVAEConfig
from motionsynth.models.trajectory import TrajectoryConfig
from motionsynth.motion import Motion
from motionsynth.registry import build_model
from motionsynth.skeleton import Skeleton

# A Bandai-like tree: static Root above Hips, spine of 4, two arms of 4, two legs of 4.
BANDAI_NAMES = ["Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
                "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
                "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]
BANDAI_PARENTS = [-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 1, 14, 15, 16, 1, 18, 19, 20]


def make_skeleton(offset_scale: float = 1.0) -> Skeleton:
    """The 22-joint Bandai-like skeleton (cm offsets, root = Hips)."""
    rng = np.random.default_rng(1)
    offsets = rng.normal(size=(22, 3)) * 10 * offset_scale
    offsets[0] = 0
    offsets[1] = [0, 90, 0]
    return Skeleton(BANDAI_NAMES, BANDAI_PARENTS, offsets, root=1)


def make_motion(skeleton: Skeleton, frames: int = 120, seed: int = 0, fps: float = 30.0) -> Motion:
    """A smooth synthetic motion: sinusoidal joint rotations, a walking-like root trajectory."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / fps
    J = len(skeleton)
    amp, freq, phase = rng.uniform(0.1, 0.5, (1, J, 3)), rng.uniform(0.3, 1.5, (1, J, 3)), rng.uniform(0, 6, (1, J, 3))
    aa = amp * np.sin(2 * np.pi * freq * t + phase)
    aa[:, 0] = 0
    rot = R.axis_angle_to_quat(aa)
    speed = rng.uniform(50, 150)
    root = np.stack([speed * t[:, 0, 0], 90 + 3 * np.sin(4 * t[:, 0, 0]), 20 * np.sin(t[:, 0, 0])], -1)
    return Motion(skeleton, rot, root, fps, name=f"take_{seed}")


def feature_batch(skeleton: Skeleton, n: int = 8, T: int = 32, seed: int = 0) -> tuple[torch.Tensor, FeatureStats]:
    """(n, T, D) normalised feature windows of synthetic motions, and their stats."""
    feats = [encode(make_motion(skeleton, T, seed=seed + i)) for i in range(n)]
    stats = FeatureStats.from_arrays(feats)
    return torch.as_tensor(stats.normalize(np.stack(feats)), dtype=torch.float32), stats


def tiny_config(variant: str = "hmvae", **kw) -> HMVAEConfig:
    settings = dict(variant=variant, window=32, channels=[8, 8, 16, 16], kernel=3, local_latent=4, global_latent=8,
                    progressive_steps=0, traj=TrajectoryConfig(channels=[4, 4, 8, 8], kernel=3))
    return HMVAEConfig(**{**settings, **kw})


def biped_skeleton() -> Skeleton:
    """A 20-joint biped with a static joint above the moving root (like the Bandai Namco files)."""
    spec = [("Root", -1, (0, 0, 0)), ("Hips", 0, (0, 90, 0)),
            ("Spine", 1, (0, 10, 0)), ("Chest", 2, (0, 15, 0)), ("Neck", 3, (0, 15, 0)), ("Head", 4, (0, 10, 0)),
            ("LeftShoulder", 3, (5, 12, 0)), ("LeftArm", 6, (12, 0, 0)), ("LeftHand", 7, (25, 0, 0)),
            ("RightShoulder", 3, (-5, 12, 0)), ("RightArm", 9, (-12, 0, 0)), ("RightHand", 10, (-25, 0, 0)),
            ("LeftUpLeg", 1, (9, 0, 0)), ("LeftLeg", 12, (0, -42, 0)), ("LeftFoot", 13, (0, -40, 0)),
            ("LeftToe", 14, (0, -5, 12)),
            ("RightUpLeg", 1, (-9, 0, 0)), ("RightLeg", 16, (0, -42, 0)), ("RightFoot", 17, (0, -40, 0)),
            ("RightToe", 18, (0, -5, 12))]
    names, parents, offsets = zip(*spec)
    rot, pos = ("Zrotation", "Xrotation", "Yrotation"), ("Xposition", "Yposition", "Zposition")
    return Skeleton(list(names), list(parents), np.array(offsets, float),
                    channels=[rot, pos + rot] + [rot] * (len(names) - 2), root=1)


def biped_motion(sk: Skeleton, T: int = 200, fps: float = 30.0, seed: int = 0, name: str = "m") -> Motion:
    """Smooth motion: slow sinusoids on every moving joint, the root walking and slowly turning."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    J = len(sk)
    rv = np.radians(rng.uniform(5, 30, (J, 3))) * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.8, (J, 3)) * t[:, None, None] + rng.uniform(0, 2 * np.pi, (J, 3)))
    rv[:, 0] = 0.0
    rv[:, 1] = np.array([0.0, 1.0, 0.0]) * (0.3 * t[:, None] + rv[:, 1, 1:2])
    speed = rng.uniform(50, 150)
    root = np.stack([speed * np.sin(0.4 * t), 90 + 3 * np.sin(2 * t), speed * t], 1)
    return Motion(sk, R.axis_angle_to_quat(rv), root, fps, name=name)


def names_per_split(n: int = 2) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    i = 0
    while min(len(v) for v in out.values()) < n:
        name = f"take{i:03d}"
        if len(out[split_of(name)]) < n:
            out[split_of(name)].append(name)
        i += 1
    return out


TINY_VAE = dict(window=32, hidden=16, latent=4, time_channels=4)
TINY_MODELS = {
    "hmvae": lambda: asdict(tiny_config("hmvae")),
    "hmvae-m": lambda: asdict(tiny_config("m")),
    "hmvae-tcn": lambda: asdict(tiny_config("tcn")),
    "mvae": lambda: dict(TINY_VAE),
    "meva": lambda: dict(window=32, hidden=8, layers=1, mrr_hidden=16, mrr_iterations=1,
                         vae=asdict(MotionVAEConfig(**TINY_VAE))),
    "trajectory": lambda: {"channels": [2, 2, 4, 4], "kernel": 3},
    "cvae": lambda: dict(window=32, channels=[8, 16], latent=4, label_slots=8),
    "diffusion": lambda: dict(window=32, d_model=16, layers=1, heads=2, ff=32, T=20, label_slots=8),
    "delta": lambda: dict(window=32, d_model=16, layers=1, heads=2, ff=32),
    "delta-denoise": lambda: dict(window=32, d_model=16, layers=1, heads=2, ff=32, filter_iters=10),
    "classifier": lambda: dict(window=32, channels=8, layers=2, kernel=3, embedding=8,
                               classes={"content": 3, "style": 2}),
}


def tiny_checkpoint(folder: Path, family: str, skeleton: Skeleton, stats, seed: int = 0) -> Path:
    """An untrained, tiny checkpoint of ``family`` (window 32 where the family has one)."""
    torch.manual_seed(seed)
    model = build_model(family, TINY_MODELS[family](), skeleton)
    model.set_stats(stats)
    config = {"family": family, "model": model.config_dict(), "fps": 30.0}
    return save_checkpoint(folder, model, config, skeleton, stats, data_hash="tiny")


def other_skeleton() -> Skeleton:
    """The test skeleton with one joint renamed: the same shape, but not compatible."""
    sk = biped_skeleton()
    return Skeleton([n if n != "Head" else "Skull" for n in sk.names], sk.parents, sk.offsets, sk.channels,
                    root=sk.root)


def creature_skeleton() -> Skeleton:
    """Not a humanoid: a six-joint tail-like chain with one fin (no legs, no arms) — nothing to retarget."""
    spec = [("Base", -1, (0, 0, 0)), ("Seg1", 0, (0, 0, 20)), ("Seg2", 1, (0, 0, 20)), ("Seg3", 2, (0, 0, 20)),
            ("Seg4", 3, (0, 0, 20)), ("Fin", 2, (0, 10, 0))]
    names, parents, offsets = zip(*spec)
    return Skeleton(list(names), list(parents), np.array(offsets, float))


def save_tiny(folder, variant="hmvae"):
    sk = make_skeleton()
    _, stats = feature_batch(sk, n=6, T=32)
    torch.manual_seed(0)
    model = HMVAE(tiny_config(variant), sk)
    model.set_stats(stats)
    model.steps_seen.fill_(10)  # past progressive_steps (0): the local latent is active
    family = {"hmvae": "hmvae", "m": "hmvae-m", "tcn": "hmvae-tcn"}[variant]
    return save_checkpoint(folder, model, {"family": family, "model": model.config_dict(), "fps": 30.0}, sk, stats)


MEVA_VAE = dict(window=32, hidden=32, latent=8, time_channels=4)
TINY_MEVA = dict(window=32, hidden=16, layers=1, mrr_hidden=32, mrr_iterations=2)


def vae_checkpoint(folder: Path, skeleton, stats, **kw) -> Path:
    torch.manual_seed(0)
    vae = MotionVAE(MotionVAEConfig(**{**MEVA_VAE, **kw}), skeleton)
    vae.set_stats(stats)
    return save_checkpoint(folder, vae, {"family": "mvae", "model": vae.config_dict(), "fps": 30.0}, skeleton, stats)


def tiny_meva(tmp_path: Path, **kw) -> tuple[MEVA, torch.Tensor, object]:
    sk = make_skeleton()
    x, stats = feature_batch(sk, n=4, T=32)
    folder = vae_checkpoint(tmp_path / "vae", sk, stats)
    torch.manual_seed(1)
    model = MEVA.from_config(MEVAConfig(**{**TINY_MEVA, "vae_checkpoint": str(folder), **kw}), sk)
    model.set_stats(stats)
    return model, x, stats


def meva_checkpoint(tmp_path: Path) -> tuple[Path, object]:
    model, _, stats = tiny_meva(tmp_path)
    with torch.no_grad():  # a non-trivial refinement, so that the test sees the MRR's output
        model.mrr[-1].bias.normal_(0, 0.05)
    folder = save_checkpoint(tmp_path / "meva", model, {"family": "meva", "model": model.config_dict(), "fps": 30.0},
                             model.skeleton, stats)
    return folder, model


# A labelled vocabulary with a left/right pair (for the classifier and the mirror label map).
LABELS = {"content": ["walk", "wave-left-hand", "wave-right-hand"], "style": ["calm", "brisk"]}


def labelled_cache(folder: Path, per_split: int = 6, frames: int = 72):
    """A tiny prepared cache (bvh-folder adapter + a labels CSV) of the 20-joint biped: ``per_split`` takes per
    split, labels of `LABELS` in turn; a ``wave-left-hand`` take swings the left arm, ``wave-right-hand`` the
    right one, ``brisk`` takes walk faster."""
    import csv

    from motionsynth.data.cache import prepare
    from motionsynth.io.bvh import write_bvh

    folder = Path(folder)
    src = folder / "bvh"
    src.mkdir(parents=True, exist_ok=True)
    sk = biped_skeleton()
    names = sorted(n for ns in names_per_split(per_split).values() for n in ns)
    rows = []
    for k, name in enumerate(names):
        content, style = LABELS["content"][k % 3], LABELS["style"][(k // 3) % 2]
        m = biped_motion(sk, T=frames, seed=k, name=name)
        t = np.arange(frames) / m.fps
        arm = {"wave-left-hand": "LeftArm", "wave-right-hand": "RightArm"}.get(content)
        if arm is not None:
            aa = np.zeros((frames, 3))
            aa[:, 2] = 1.2 * np.sin(2 * np.pi * 1.5 * t)
            m.rotations[:, sk.names.index(arm)] = R.axis_angle_to_quat(aa)
        if style == "brisk":
            m.root_positions[:, 2] *= 2.0
        write_bvh(m, src / f"{name}.bvh")
        rows.append({"name": name, "content": content, "style": style})
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["name", "content", "style"])
        writer.writeheader()
        writer.writerows(rows)
    return prepare(src, "bvh-folder", folder / "cache", workers=1, progress=False, labels=folder / "labels.csv")


class FakeCache:
    """The parts of `MotionCache` the trainer reads, in memory: ``takes`` synthetic takes (the last one in val) with
    content labels cycling through ``labels["content"]``."""

    def __init__(self, labels: dict, data_hash: str, takes: int = 5, frames: int = 70):
        self.skeleton = make_skeleton()
        self.fps, self.dataset, self.data_hash = 30.0, "synthetic", data_hash
        self.label_names = dict(labels)
        motions = [make_motion(self.skeleton, frames, seed=i) for i in range(takes)]
        feats = [encode(m) for m in motions]
        self.features = np.concatenate(feats)
        self.stats = FeatureStats.from_arrays(feats)
        starts = np.cumsum([0] + [len(f) for f in feats])
        names = labels["content"]
        self.takes = [SimpleNamespace(name=f"take_{i}", start=int(starts[i]), length=frames,
                                      split="val" if i == takes - 1 else "train",
                                      labels={"content": names[i % len(names)]}) for i in range(takes)]
        self._motions = motions

    def split(self, name):
        return [i for i, t in enumerate(self.takes) if t.split == name]

    def motion(self, i):
        return self._motions[i]


def labelled_batch(x: torch.Tensor) -> dict:
    """A training batch of feature windows (B <= 6, T, D) with content label indices (-1: no label)."""
    return {"features": x, "labels": {"content": torch.tensor([0, 1, 2, -1, 0, 1])[:len(x)]}}


# ---- the command line, in process ------------------------------------------------------------------------------------
def run_cli(*args) -> int:
    """``motionsynth ARGS…`` in this process → its exit code (0 when it returns normally)."""
    from motionsynth.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def cli_output(capsys, *args) -> tuple[int, str, str]:
    """``motionsynth ARGS…`` in this process → (exit code, stdout, stderr)."""
    code = run_cli(*args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_refused_without_output(model: Path, args: list[str], tmp_path: Path, capsys) -> None:
    """A task command on ``model`` with ``args`` ("{clip}": a 40-frame clip of `make_skeleton`, "{other}": one of
    another humanoid skeleton, "{creature}": one of a skeleton that is not a humanoid) fails with one ``error:``
    line, exit 2, and writes nothing."""
    from motionsynth.io import save_motion

    clips = tmp_path / "in"
    clips.mkdir()
    save_motion(make_motion(make_skeleton(), 40, seed=3), clips / "clip.bvh")
    save_motion(biped_motion(biped_skeleton(), 40), clips / "other.bvh")
    save_motion(make_motion(creature_skeleton(), 40), clips / "creature.bvh")
    files = {"clip": str(clips / "clip.bvh"), "other": str(clips / "other.bvh"),
             "creature": str(clips / "creature.bvh")}
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = cli_output(capsys, *[a.format(**files) for a in args], "--model", model, "-o", out / "o.bvh")
    assert code == 2 and "error:" in err and len(err.strip().splitlines()) == 1, err
    assert list(out.iterdir()) == []


def load_script(name: str):
    """The module ``scripts/NAME.py`` (the measurement scripts are not a package): tests reuse what they measure."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- humanoid skeletons for the body map and retargeting (tests/test_body.py, tests/test_retarget.py,
# scripts/retarget_bench.py) --------------------------------------------------------------------------------------
HUMANOID_MIXAMO = dict(pelvis="Hips", spine="Spine{}", neck="Neck", head="Head", clavicle="{S}Shoulder",
                       upper_arm="{S}Arm", forearm="{S}ForeArm", hand="{S}Hand", thigh="{S}UpLeg", shin="{S}Leg",
                       foot="{S}Foot", toe="{S}ToeBase")
HUMANOID_BANDAI = dict(pelvis="Hips", spine=("Spine", "Chest", "UpperChest"), neck="Neck", head="Head",
                       clavicle="Shoulder_{s}", upper_arm="UpperArm_{s}", forearm="LowerArm_{s}", hand="Hand_{s}",
                       thigh="UpperLeg_{s}", shin="LowerLeg_{s}", foot="Foot_{s}", toe="Toes_{s}")


def humanoid(names=HUMANOID_MIXAMO, *, prefix: str = "", spine: int = 3, clavicles: bool = True, scale: float = 1.0,
             zup: bool = False, apose: bool = False, bone_axis: bool = False, generic: bool = False) -> Skeleton:
    """A standing humanoid (cm, +Y up, facing +Z, left +X) with options: a name ``prefix`` (``mixamorig:``), the
    number of spine joints, clavicles or not, a unit ``scale``, Z-up offsets, arms in an A-pose, offsets along each
    bone's own +X axis (``bone_axis``: no standing rest pose, like the Bandai Namco files), generic names."""
    spec: list[tuple[str, str, tuple[float, float, float]]] = [("pelvis", "", (0, 95, 0))]
    chain = "pelvis"
    for i in range(spine):
        name = f"spine{i}"
        spec.append((name, chain, (0, 12 if i else 8, 0)))
        chain = name
    spec += [("neck", chain, (0, 12, 0)), ("head", "neck", (0, 10, 0))]
    arm = np.array([np.cos(np.pi / 4), -np.sin(np.pi / 4), 0]) if apose else np.array([1.0, 0, 0])
    for side, sx in (("left", 1), ("right", -1)):
        a = arm * [sx, 1, 1]
        parent = chain
        if clavicles:
            spec.append((f"{side}_clavicle", chain, (3 * sx, 10, 0)))
            parent = f"{side}_clavicle"
        spec += [(f"{side}_upper_arm", parent, (12 * sx, 0, 0) if clavicles else (15 * sx, 10, 0)),
                 (f"{side}_forearm", f"{side}_upper_arm", tuple(28 * a)), (f"{side}_hand", f"{side}_forearm",
                                                                          tuple(25 * a))]
        spec += [(f"{side}_thigh", "pelvis", (9 * sx, -3, 0)), (f"{side}_shin", f"{side}_thigh", (0, -42, 0)),
                 (f"{side}_foot", f"{side}_shin", (0, -42, 0)), (f"{side}_toe", f"{side}_foot", (0, -8, 13))]
    roles, parents, offsets = zip(*spec)
    index = {r: i for i, r in enumerate(roles)}
    offsets = np.array(offsets, float) * scale
    end_sites = {index["head"]: np.array([0, 15.0, 0]) * scale}
    if bone_axis:
        offsets = np.array([offsets[0]] + [[np.linalg.norm(o), 0, 0] for o in offsets[1:]])
        end_sites = {}
    if zup:
        offsets = offsets[:, [0, 2, 1]] * [1, -1, 1]
        end_sites = {k: v[[0, 2, 1]] * [1, -1, 1] for k, v in end_sites.items()}
    return Skeleton([_humanoid_name(r, names, prefix, generic) for r in roles],
                    [index[p] if p else -1 for p in parents], offsets, end_sites=end_sites)


def _humanoid_name(role: str, names: dict, prefix: str, generic: bool) -> str:
    if generic:
        return f"j_{role.replace('left', 'a').replace('right', 'b')}"
    side = role.split("_")[0] if role.startswith(("left", "right")) else ""
    key = role[len(side) + 1:] if side else role
    key = "spine" if key.startswith("spine") else key
    number = role[5:] if key == "spine" else ""
    if isinstance(names[key], tuple):
        return prefix + names[key][int(number)]
    return prefix + names[key].format(number if number != "0" else "", S=side.title(), s=side[:1].upper())


def with_twist_bones(skeleton: Skeleton, bones: dict[str, tuple[str, float]]) -> Skeleton:
    """``skeleton`` with leaf twist bones appended: name → (parent name, fraction along the parent's bone to its
    first child), e.g. ``{"LeftForeArmTwist": ("LeftForeArm", 0.5)}``."""
    names, parents, offsets = list(skeleton.names), list(skeleton.parents), list(skeleton.offsets)
    for name, (parent, fraction) in bones.items():
        p = skeleton.index(parent)
        names.append(name)
        parents.append(p)
        offsets.append(fraction * skeleton.offsets[skeleton.children[p][0]])
    return Skeleton(names, parents, np.array(offsets), end_sites=skeleton.end_sites)


def end_positions(body, motion: Motion) -> np.ndarray:
    """(T, 5, 3) world positions of the hands, feet and head of ``motion`` (``body``: its `body.BodyMap`)."""
    js = [body.joint(r) for r in ("left_hand", "right_hand", "left_foot", "right_foot", "head")]
    return motion.global_positions()[:, js]
