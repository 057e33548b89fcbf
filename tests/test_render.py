"""Rendering (GIF / MP4 / PNG filmstrip), plots and `motionsynth render`."""

from __future__ import annotations

import zipfile

import imageio.v3 as iio
import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.cli import main
from motionsynth.errors import MotionsynthError
from motionsynth.io import save_motion
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton
from motionsynth.tasks import Mask, denoise_mask, generate_mask, predict_mask, save_mask
from motionsynth.viz import plot_error_curves, render

W, H = 96, 80  # small panels keep the tests fast


def tiny_skeleton() -> Skeleton:
    """Six joints, Y up, cm: hips, spine, two arms hanging from the spine, two legs."""
    names = ["Hips", "Spine", "LeftArm", "RightArm", "LeftLeg", "RightLeg"]
    parents = [-1, 0, 1, 1, 0, 0]
    offsets = [[0, 0, 0], [0, 50, 0], [20, 0, 0], [-20, 0, 0], [10, -10, 0], [-10, -10, 0]]
    ends = {1: [0, 25, 0], 2: [0, -55, 0], 3: [0, -55, 0], 4: [0, -80, 0], 5: [0, -80, 0]}
    return Skeleton(names, parents, offsets, end_sites=ends, root=0)


def walking(num_frames: int = 40, fps: float = 30.0, name: str = "walk") -> Motion:
    """Hips moving forward along +Z at 1 m/s while legs and arms swing about X in anti-phase."""
    sk = tiny_skeleton()
    t = np.arange(num_frames) / fps
    swing = 30.0 * np.sin(2 * np.pi * 1.0 * t)
    euler = np.zeros((num_frames, len(sk), 3))
    euler[:, 4, 0], euler[:, 5, 0] = swing, -swing
    euler[:, 2, 0], euler[:, 3, 0] = -0.6 * swing, 0.6 * swing
    rot = R.euler_to_quat(euler, "XYZ", degrees=True)
    root = np.stack([np.zeros_like(t), 90.0 + 2 * np.abs(np.sin(2 * np.pi * t)), 100.0 * t], -1)
    return Motion(sk, rot, root, fps, name=name)


def grey_and_colour(img: np.ndarray) -> tuple[int, int]:
    """(number of grey pixels — observed parts, R = G = B, mid-grey — , number of strongly coloured pixels)."""
    rgb = img[..., :3].astype(int)
    spread = rgb.max(-1) - rgb.min(-1)
    grey = (spread <= 2) & (rgb.mean(-1) > 60) & (rgb.mean(-1) < 200)
    return int(grey.sum()), int((spread > 60).sum())


# ---- render -------------------------------------------------------------------------------------------------------
def test_gif_frames_and_size(tmp_path):
    out = tmp_path / "a.gif"
    render([walking(40), walking(25)], out, size=(W, H), every=2)
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (20, H, 2 * W)  # every 2nd of the longest (40) frames; two panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]  # no temporary left behind


@pytest.mark.slow
def test_mp4_frames_and_size(tmp_path):
    out = tmp_path / "a.mp4"
    render([walking(30)], out, size=(W, H), fps=15)
    frames = iio.imread(out, index=None)
    assert frames.shape == (30, H, W, 3)


def test_png_filmstrip_one_row_per_motion(tmp_path):
    out = tmp_path / "a.png"
    render([walking(40), walking(40)], out, size=(W, H), titles=["truth", "result"])
    img = iio.imread(out)
    assert img.shape[:2] == (2 * H, 8 * W)
    assert img.std() > 0  # something was drawn


def test_png_filmstrip_of_a_short_motion_has_one_cell_per_frame(tmp_path):
    out = tmp_path / "a.png"
    render([walking(3)], out, size=(W, H))
    assert iio.imread(out).shape[:2] == (H, 3 * W)


def test_observed_parts_grey_and_synthesised_parts_coloured(tmp_path):
    m = walking(40)
    J = len(m.skeleton)
    counts = {}
    for name, mask in [("none", None), ("predict", predict_mask(40, J, 20)), ("all", Mask(np.ones((40, J)),
                                                                                        np.ones(40))),
                       ("noisy", denoise_mask(40, J)), ("generate", generate_mask(40, J))]:
        out = tmp_path / f"{name}.png"
        render([m], out, masks=[mask], size=(W, H))
        counts[name] = grey_and_colour(iio.imread(out))
    assert counts["none"][0] == 0 and counts["none"][1] > 0
    assert counts["predict"][0] > 0 and counts["predict"][1] > 0  # first half observed, second half synthesised
    assert counts["all"][0] > 0 and counts["all"][1] == 0
    assert counts["noisy"] == counts["none"]  # a noisy mask observes nothing to keep: all coloured
    assert counts["generate"] == counts["none"]


def test_observed_joints_grey_in_gif(tmp_path):
    m = walking(20)
    joints = np.zeros((20, len(m.skeleton)), dtype=bool)
    joints[:, [0, 4, 5]] = True  # lower body observed
    out = tmp_path / "a.gif"
    render([m], out, masks=[Mask(joints, np.ones(20))], size=(W, H))
    frames = iio.imread(out, index=None)
    assert len(frames) == 20
    grey, colour = grey_and_colour(frames[10])
    assert grey > 0 and colour > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"out": "x.avi"}, "unknown output format"),
    ({"masks": [Mask(np.ones((10, 6)), np.ones(10))]}, "mask is"),
    ({"masks": [None, None]}, "masks for 1 motions"),
    ({"titles": ["a", "b"]}, "titles for 1 motions"),
    ({"every": 0}, "at least 1"),
])
def test_bad_arguments_raise_and_write_nothing(tmp_path, kwargs, message):
    out = tmp_path / kwargs.pop("out", "x.gif")
    with pytest.raises(MotionsynthError, match=message):
        render([walking(20)], out, size=(W, H), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_no_motions_is_an_error(tmp_path):
    with pytest.raises(MotionsynthError, match="no motions"):
        render([], tmp_path / "x.gif")


def test_different_frame_rates_play_on_the_first_motions_clock(tmp_path):
    out = tmp_path / "a.gif"
    render([walking(30, fps=30.0), walking(60, fps=60.0)], out, size=(W, H))  # both last one second
    assert len(iio.imread(out, index=None)) == 30


# ---- plots --------------------------------------------------------------------------------------------------------
def test_plots_write_images(tmp_path):
    rng = np.random.default_rng(0)
    curves = {"interpolation": rng.random(60).cumsum(), "model": rng.random(50).cumsum()}
    plot_error_curves(curves, tmp_path / "err.png", ylabel="position error (cm)", title="in-betweening")
    plot_error_curves(curves, tmp_path / "acc.pdf", ylabel="acceleration (cm/s²)", fps=30)
    for name in ("err.png",):
        img = iio.imread(tmp_path / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.std() > 0
    assert (tmp_path / "acc.pdf").read_bytes().startswith(b"%PDF")


def test_plot_errors(tmp_path):
    with pytest.raises(MotionsynthError, match="unknown plot format"):
        plot_error_curves({"a": np.ones(3)}, tmp_path / "x.gif")
    with pytest.raises(MotionsynthError, match="no curves"):
        plot_error_curves({}, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# ---- command line -------------------------------------------------------------------------------------------------
def run_cli(*args) -> int:
    try:
        main(["render", *map(str, args)])
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_cli_renders_with_masks_and_titles(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    save_motion(walking(24), a)
    save_motion(walking(24), b)
    mask = tmp_path / "m.npz"
    save_mask(predict_mask(24, 6, 12), mask)
    out = tmp_path / "out" / "cmp.gif"
    assert run_cli(a, b, "-o", out, "--observed", "-", "--observed", mask, "--title", "truth", "--title", "model",
                   "--size", f"{W}x{H}", "--every", "3") == 0
    assert iio.imread(out, index=None).shape[:3] == (8, H, 2 * W)
    strip = tmp_path / "strip.png"
    assert run_cli(a, b, "-o", strip, "--observed", mask, "--size", f"{W}x{H}") == 0  # one mask for all inputs
    assert iio.imread(strip).shape[:2] == (2 * H, 8 * W)


@pytest.mark.parametrize("case", ["missing input", "missing mask", "bad extension", "mask shape", "mask count",
                                  "bad size", "not a mask"])
def test_cli_errors_exit_2_and_leave_no_file(tmp_path, case, capsys):
    motion = tmp_path / "a.npz"
    save_motion(walking(24), motion)
    mask = tmp_path / "m.npz"
    save_mask(predict_mask(30, 6, 12), mask)  # 30 frames: does not fit the 24-frame motion
    out = tmp_path / "out.gif"
    args = {
        "missing input": [tmp_path / "nope.bvh", "-o", out],
        "missing mask": [motion, "-o", out, "--observed", tmp_path / "nope.npz"],
        "bad extension": [motion, "-o", tmp_path / "out.avi"],
        "mask shape": [motion, "-o", out, "--observed", mask],
        "mask count": [motion, motion, motion, "-o", out, "--observed", mask, "--observed", mask],
        "bad size": [motion, "-o", out, "--size", "big"],
        "not a mask": [motion, "-o", out, "--observed", motion],
    }[case]
    before = set(tmp_path.iterdir())
    assert run_cli(*args) == 2
    assert "error:" in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before


# ---- real data ----------------------------------------------------------------------------------------------------
@pytest.mark.real_data
def test_render_a_bandai_take(bandai_zip, tmp_path):
    from motionsynth.io.bvh import iter_bvh_members

    with zipfile.ZipFile(bandai_zip) as z:  # the largest take: long enough for 300 frames
        member = max((i for i in z.infolist() if i.filename.endswith(".bvh")), key=lambda i: i.file_size).filename
    (_, motion), = iter_bvh_members(bandai_zip, [member])
    assert isinstance(motion, Motion), motion
    motion = motion[:300]
    out = tmp_path / "take.gif"
    render([motion], out, masks=[predict_mask(motion.num_frames, len(motion.skeleton), 30)], size=(160, 160))
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (motion.num_frames, 160, 160)
    grey, colour = grey_and_colour(frames[10])
    assert grey > 0 and colour == 0  # frame 10 is in the observed prefix
    grey, colour = grey_and_colour(frames[200])
    assert colour > 10 * grey  # GIF palette mapping may turn a few blended edge pixels grey, never whole bones
