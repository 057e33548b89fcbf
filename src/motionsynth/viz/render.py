"""Stick-figure rendering of motions to GIF, MP4 or a PNG filmstrip (headless, pure numpy + PIL).

One panel per motion, side by side. Bones are lines between forward-kinematics joint positions (plus BVH end sites),
joints are dots. As in the HM-VAE / CVAE papers' figures, what the task *observed* is drawn in grey and what was
*synthesised* in colour (left side, right side and centre in different colours): with a `Mask`, a bone is grey at
frame t when its child joint is observed there (``mask.joints[t, j]``) and the mask is not noisy.

The camera is orthographic, at a fixed azimuth/elevation, and follows the root's ground-plane position low-pass
filtered (so the character stays in view without the jitter of a locked camera). A circular grid patch on the floor
(y = the lowest foot height over all the motions) moves under the character; a soft shadow marks the root.

Drawing is done at twice the output resolution and box-filtered down (anti-aliased lines); a 300-frame, 22-joint
take renders to GIF in a few seconds.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import rotations as R
from ..errors import MotionsynthError, ParamError
from ..io.atomic import atomic_path
from ..kinematics import fk
from ..motion import Motion
from ..skeleton import Skeleton
from ..tasks import Mask

FORMATS = (".gif", ".mp4", ".png")

BACKGROUND = (255, 255, 255)
# Synthesised parts: left / right / centre. Observed parts: greys (R = G = B), lighter on the left.
SIDE_COLOURS = {"left": (228, 87, 46), "right": (31, 119, 180), None: (106, 61, 154)}
OBSERVED_COLOURS = {"left": (165, 165, 165), "right": (120, 120, 120), None: (140, 140, 140)}
# Floor, shadow and text are tinted so that no grey (R = G = B) pixel comes from anything but observed parts.
GRID_COLOUR = (208, 214, 226)
SHADOW_COLOUR = (214, 219, 230)
TEXT_COLOUR = (30, 36, 70)
SEPARATOR_COLOUR = (222, 226, 236)

SUPERSAMPLE = 2
FILMSTRIP_FRAMES = 8
CAMERA_SMOOTHING_S = 0.5  # std-dev (seconds) of the Gaussian low-pass on the camera's ground position


@dataclass
class _Scene:
    """One motion, prepared for drawing: everything per *native* frame of the motion.

    points: (T, K, 3) world positions of the drawn joints followed by the end sites.
    segments: (S, 2) point indices of each bone; seg_joint: (S,) the joint that decides its colour (the child).
    dots: (D,) point indices drawn as dots; dot_joint: (D,) their joints.
    observed_seg: (T, S) bool; observed_dot: (T, D) bool.
    root_xz: (T, 2) the moving root's ground position (x, z), where the shadow goes.
    target: (T, 2) smoothed camera target on the ground (x, z).
    sides: (J,) side of each joint ('left', 'right', None), indexed by joint.
    """

    points: np.ndarray
    segments: np.ndarray
    seg_joint: np.ndarray
    dots: np.ndarray
    dot_joint: np.ndarray
    observed_seg: np.ndarray
    observed_dot: np.ndarray
    root_xz: np.ndarray
    target: np.ndarray
    sides: list
    num_frames: int


def render(motions: list[Motion], out: str | os.PathLike, masks: list[Mask | None] | None = None,
           titles: list[str] | None = None, fps: float | None = None, size: tuple[int, int] = (320, 320),
           every: int = 1, azimuth: float = 30.0, elevation: float = 15.0, progress: bool = False) -> Path:
    """Render motions side by side (one panel each) to ``out`` (``.gif``, ``.mp4`` or ``.png``), atomically.

    Args:
        motions: the motions; they may differ in length (a shorter one holds its last frame) and frame rate (each is
            sampled at the first motion's frame times).
        out: output path; the extension picks the format. ``.png`` is a filmstrip: ~8 evenly spaced frames per
            motion, one row per motion.
        masks: one `Mask` (or None) per motion; observed parts are drawn grey, synthesised parts in colour. Without
            a mask everything is drawn in colour.
        titles: one title per panel (default: each motion's ``name``).
        fps: playback frame rate of the GIF/MP4 (default: the first motion's fps / ``every``, i.e. real time).
        size: (width, height) in pixels of one panel (one filmstrip cell).
        every: draw every ``every``-th frame.
        azimuth, elevation: camera direction in degrees (azimuth 0 looks from +Z towards -Z; positive turns the
            camera towards +X).
        progress: show a progress bar.
    Returns:
        The output path.
    Raises:
        MotionsynthError: no motions, an unknown extension, masks or titles that do not match the motions, a bad size,
        ``every`` or ``fps``.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise MotionsynthError(f"{out}: unknown output format {out.suffix!r}; use one of {', '.join(FORMATS)}")
    motions = list(motions)
    if not motions:
        raise MotionsynthError("nothing to render: no motions given")
    masks = [None] * len(motions) if masks is None else list(masks)
    if len(masks) != len(motions):
        raise MotionsynthError(f"{len(masks)} masks for {len(motions)} motions; give one mask (or None) per motion")
    for i, (m, k) in enumerate(zip(motions, masks)):
        if k is not None:
            try:
                k.check(m, generative=True)  # rendering any mask, generation included
            except MotionsynthError as e:
                raise MotionsynthError(f"motion {i + 1} ({m.name or 'unnamed'}): {e}") from None
    titles = [m.name for m in motions] if titles is None else [str(t) for t in titles]
    if len(titles) != len(motions):
        raise MotionsynthError(f"{len(titles)} titles for {len(motions)} motions; give one title per motion")
    w, h = (int(s) for s in size)
    if w < 32 or h < 32:
        raise MotionsynthError(f"panel size {w}x{h} is too small (at least 32x32)")
    if every < 1:
        raise ParamError(f"`every` must be at least 1, got {every}", "every")
    if fps is not None and not fps > 0:
        raise MotionsynthError(f"fps must be positive, got {fps}")

    scenes = [_prepare(m, k) for m, k in zip(motions, masks)]
    floor = float(min(_floor_height(m, s) for m, s in zip(motions, scenes)))
    height = max(_figure_height(s, floor) for s in scenes)
    camera = _Camera(azimuth, elevation, w, h, height, floor)

    base_fps = motions[0].fps
    longest = max(m.num_frames / m.fps for m in motions)  # seconds
    num_base = max(1, int(round(longest * base_fps)))
    if suffix == ".png":
        times = np.unique(np.linspace(0, num_base - 1, min(FILMSTRIP_FRAMES, num_base)).round()) / base_fps
    else:
        times = np.arange(0, num_base, every) / base_fps
    # Frame index of each motion at each output time (held at its last frame past its end).
    index = [np.minimum(np.round(times * m.fps).astype(np.int64), m.num_frames - 1) for m in motions]

    def panel(i: int, f: int) -> Image.Image:
        t = int(index[i][f])
        # GIF: text without anti-aliasing, whose blends the fixed palette would map to the observed greys.
        return _draw_panel(scenes[i], t, camera, titles[i] if suffix != ".png" or f == 0 else "",
                           f"{t + 1}/{scenes[i].num_frames}", smooth_text=suffix != ".gif")

    with atomic_path(out) as tmp:
        if suffix == ".png":
            sheet = Image.new("RGB", (w * len(times), h * len(motions)), BACKGROUND)
            for i in range(len(motions)):
                for f in range(len(times)):
                    sheet.paste(panel(i, f), (w * f, h * i))
            _separators(sheet, w, h, len(times), len(motions))
            sheet.save(tmp)
        else:
            def frames():
                for f in _progress(range(len(times)), progress, f"render {out.name}"):
                    frame = Image.new("RGB", (w * len(motions), h), BACKGROUND)
                    for i in range(len(motions)):
                        frame.paste(panel(i, f), (w * i, 0))
                    _separators(frame, w, h, len(motions), 1)
                    yield frame

            rate = float(fps) if fps is not None else base_fps / every
            if suffix == ".gif":
                _write_gif(tmp, frames(), rate, len(times))
            else:
                _write_mp4(tmp, frames(), rate)
    return out


# ---- scene preparation ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _upright(skeleton: Skeleton) -> np.ndarray | None:
    """(3, 3) the rotation that stands a humanoid rig of another up axis (a Z-up rig) upright in the project's +Y
    up world (`body.BodyMap.up`), or None: already +Y up, or not a humanoid (drawn as it is)."""
    from ..body import body_map, rotation_between

    try:
        up = body_map(skeleton).up
    except MotionsynthError:
        return None
    if up[1] > 0.99:
        return None
    return R.quat_to_matrix(rotation_between(up, np.array([0.0, 1.0, 0.0])))


def upright_positions(motion: Motion, positions: np.ndarray) -> np.ndarray:
    """World positions (..., 3) of ``motion``'s joints, turned so that its rig's up axis is +Y (see `_upright`):
    what the renderer and the editor draw."""
    turn = _upright(motion.skeleton)
    return positions if turn is None else positions @ turn.T


def _prepare(motion: Motion, mask: Mask | None) -> _Scene:
    """Positions of joints and end sites, bones, colours and the camera path of one motion."""
    sk = motion.skeleton
    mats = R.quat_to_matrix(motion.rotations)
    g_rot, g_pos = fk(mats, motion.local_translations(), sk.parents)
    turn = _upright(sk)
    if turn is not None:  # a Z-up rig stood upright (rotating the world turns every global rotation too)
        g_rot, g_pos = turn @ g_rot, g_pos @ turn.T
    # Draw the moving root's subtree: static ancestors (Bandai's joint_Root on the floor) would add a bogus bone.
    drawn = sk.subtree(sk.root)
    slot = {j: k for k, j in enumerate(drawn)}
    ends = [j for j in drawn if j in sk.end_sites]
    end_pos = [g_pos[:, j] + np.einsum("tik,k->ti", g_rot[:, j], sk.end_sites[j]) for j in ends]
    points = np.concatenate([g_pos[:, drawn]] + [p[:, None] for p in end_pos], axis=1)
    segments = [(slot[int(sk.parents[j])], slot[j]) for j in drawn if j != sk.root]
    seg_joint = [j for j in drawn if j != sk.root]
    segments += [(slot[j], len(drawn) + e) for e, j in enumerate(ends)]
    seg_joint += ends
    T = motion.num_frames
    if mask is None or mask.noisy:
        observed = np.zeros((T, len(sk)), dtype=bool)
    else:
        observed = mask.joints
    seg_joints = np.asarray(seg_joint, dtype=np.int64)
    dot_joint = np.asarray(drawn, dtype=np.int64)
    root_xz = g_pos[:, sk.root][:, [0, 2]]
    return _Scene(points=points, segments=np.asarray(segments, dtype=np.int64).reshape(-1, 2), seg_joint=seg_joints,
                  dots=np.arange(len(drawn)), dot_joint=dot_joint, observed_seg=observed[:, seg_joints],
                  observed_dot=observed[:, dot_joint], root_xz=root_xz,
                  target=_smooth(root_xz, CAMERA_SMOOTHING_S * motion.fps), sides=sk.sides, num_frames=T)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian low-pass along axis 0, padded by point reflection so straight lines pass unchanged (a
    camera following a runner does not lag behind at the clip's ends)."""
    from scipy.ndimage import gaussian_filter1d

    T = len(x)
    if T < 3 or sigma <= 0:
        return x.copy()
    pad = min(T - 1, int(3 * sigma) + 1)
    head = 2 * x[:1] - x[pad:0:-1]
    tail = 2 * x[-1:] - x[-2:-pad - 2:-1]
    y = gaussian_filter1d(np.concatenate([head, x, tail]), sigma, axis=0, mode="nearest")
    return y[pad:pad + T]


def _floor_height(motion: Motion, scene: _Scene) -> float:
    """Lowest foot height of the clip (1st percentile of the per-frame minimum over leg joints, robust to noise)."""
    sk = motion.skeleton
    legs = sk.groups["left_leg"] + sk.groups["right_leg"]
    drawn = sk.subtree(sk.root)
    cols = [k for k, j in enumerate(drawn) if j in legs] or list(range(scene.points.shape[1]))
    return float(np.percentile(scene.points[:, cols, 1].min(1), 1))


def _figure_height(scene: _Scene, floor: float) -> float:
    """Typical height of the figure above the floor (90th percentile over frames), the camera's scale unit."""
    tops = scene.points[..., 1].max(1) - floor
    extent = np.ptp(scene.points, axis=1).max(1)  # also covers a figure lying down
    return float(max(np.percentile(np.maximum(tops, extent), 90), 1e-6))


# ---- projection ----------------------------------------------------------------------------------------------------
class _Camera:
    """Orthographic camera at (azimuth, elevation) whose ground-level look-at point follows a target."""

    def __init__(self, azimuth: float, elevation: float, w: int, h: int, figure_height: float, floor: float):
        az, el = math.radians(azimuth), math.radians(elevation)
        back = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])  # towards camera
        self.right = np.array([math.cos(az), 0.0, -math.sin(az)])
        self.up = np.cross(back, self.right)
        self.back = back
        self.w, self.h, self.floor = w * SUPERSAMPLE, h * SUPERSAMPLE, floor
        self.scale = 0.74 * self.h / figure_height  # pixels per length unit
        self.ground_row = 0.86 * self.h  # screen row of the floor under the target
        self.figure_height = figure_height
        self.grid_step = _nice_step(figure_height / 3)
        self.grid_radius = 1.6 * figure_height

    def project(self, p: np.ndarray, target_xz: np.ndarray) -> np.ndarray:
        """(..., 3) world points → (..., 2) supersampled pixel coordinates (x right, y down)."""
        c = np.array([target_xz[0], self.floor, target_xz[1]])
        d = p - c
        return np.stack([self.w / 2 + self.scale * (d @ self.right), self.ground_row - self.scale * (d @ self.up)], -1)

    def depth(self, p: np.ndarray) -> np.ndarray:
        """(..., 3) → (...) signed distance towards the camera (larger = nearer)."""
        return p @ self.back

    def grid_lines(self, target_xz: np.ndarray) -> list[np.ndarray]:
        """World-fixed floor grid lines clipped to a disc around the target: list of (2, 3) segments."""
        cx, cz = target_xz
        r, s, y = self.grid_radius, self.grid_step, self.floor
        lines = []
        for axis, c0, c1 in ((0, cx, cz), (2, cz, cx)):
            for k in range(math.ceil((c0 - r) / s), math.floor((c0 + r) / s) + 1):
                half = math.sqrt(max(r * r - (k * s - c0) ** 2, 0.0))
                a, b = np.zeros(3), np.zeros(3)
                a[axis] = b[axis] = k * s
                other = 2 - axis
                a[other], b[other] = c1 - half, c1 + half
                a[1] = b[1] = y
                lines.append(np.stack([a, b]))
        return lines


def _nice_step(x: float) -> float:
    """The 1-2-5 × 10^k number nearest to x (log scale)."""
    k = math.floor(math.log10(x))
    candidates = [m * 10.0 ** e for e in (k - 1, k, k + 1) for m in (1, 2, 5)]
    return min(candidates, key=lambda c: abs(math.log(c / x)))


# ---- drawing -------------------------------------------------------------------------------------------------------
def _draw_panel(scene: _Scene, t: int, camera: _Camera, title: str, counter: str,
                smooth_text: bool = True) -> Image.Image:
    """One panel at native frame t: floor grid, shadow, bones far-to-near, joint dots, then title and counter."""
    W, H = camera.w, camera.h
    img = Image.new("RGB", (W, H), BACKGROUND)
    draw = ImageDraw.Draw(img)
    target = scene.target[t]
    line_w = max(2, round(H / 110))
    for seg in camera.grid_lines(target):
        draw.line([tuple(q) for q in camera.project(seg, target)], fill=GRID_COLOUR, width=max(1, line_w // 3))
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    rad = 0.12 * camera.figure_height
    ring = np.stack([scene.root_xz[t, 0] + rad * np.cos(angles), np.full_like(angles, camera.floor),
                     scene.root_xz[t, 1] + rad * np.sin(angles)], -1)
    draw.polygon([tuple(q) for q in camera.project(ring, target)], fill=SHADOW_COLOUR)

    pts3 = scene.points[t]
    pts = camera.project(pts3, target)
    depth = camera.depth(pts3)
    seg_depth = depth[scene.segments].mean(1) if len(scene.segments) else np.zeros(0)
    # Painter's algorithm over bones and dots together, far first.
    items = [(seg_depth[s], 0, s) for s in range(len(scene.segments))]
    items += [(depth[scene.dots[d]], 1, d) for d in range(len(scene.dots))]
    items.sort(key=lambda it: it[0])
    dot_r = line_w * 0.95
    for _, kind, k in items:
        if kind == 0:
            j = scene.seg_joint[k]
            colour = (OBSERVED_COLOURS if scene.observed_seg[t, k] else SIDE_COLOURS)[scene.sides[j]]
            a, b = scene.segments[k]
            draw.line([tuple(pts[a]), tuple(pts[b])], fill=colour, width=line_w)
        else:
            j = scene.dot_joint[k]
            colour = _darker((OBSERVED_COLOURS if scene.observed_dot[t, k] else SIDE_COLOURS)[scene.sides[j]])
            x, y = pts[scene.dots[k]]
            draw.ellipse([x - dot_r, y - dot_r, x + dot_r, y + dot_r], fill=colour)

    img = img.reduce(SUPERSAMPLE)
    draw = ImageDraw.Draw(img)
    draw.fontmode = "L" if smooth_text else "1"
    w, h = img.size
    font = _font(max(9, h // 24))
    pad = max(3, h // 60)
    if title:
        draw.text((w / 2, pad), _fit(draw, title, font, w - 2 * pad), fill=TEXT_COLOUR, font=font, anchor="ma")
    draw.text((pad, h - pad), counter, fill=TEXT_COLOUR, font=font, anchor="ld")
    return img


def _darker(c: tuple[int, int, int], f: float = 0.8) -> tuple[int, int, int]:
    return cast("tuple[int, int, int]", tuple(int(v * f) for v in c))


@lru_cache(maxsize=8)
def _font(size: int):
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """The text, shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _separators(img: Image.Image, w: int, h: int, cols: int, rows: int) -> None:
    draw = ImageDraw.Draw(img)
    for c in range(1, cols):
        draw.line([(c * w, 0), (c * w, img.size[1])], fill=SEPARATOR_COLOUR, width=1)
    for r in range(1, rows):
        draw.line([(0, r * h), (img.size[0], r * h)], fill=SEPARATOR_COLOUR, width=1)


# ---- writers -------------------------------------------------------------------------------------------------------
def _write_gif(path: Path, frames, fps: float, count: int) -> None:
    """Animated GIF, looping, on one fixed palette (every colour the renderer uses, blended towards white): stable
    colours, no dithering noise, and fast nearest-colour mapping.

    GIF delays are whole centiseconds: they alternate (30 fps → 30, 40, 30 ms …) so the average rate is right;
    players treat delays under 20 ms as slow, so rates above 50 fps play at 50.
    """
    palette = _gif_palette()

    def indexed():
        for f in frames:
            yield f.quantize(palette=palette, dither=Image.Dither.NONE)

    gen = indexed()
    head = next(gen)
    ticks = np.round(np.arange(count + 1) * 100.0 / fps)
    durations = (np.maximum(np.diff(ticks), 2) * 10).astype(int).tolist()
    head.save(path, format="GIF", save_all=True, append_images=gen, duration=durations, loop=0, disposal=1)


@lru_cache(maxsize=1)
def _gif_palette() -> Image.Image:
    base = [*SIDE_COLOURS.values(), *OBSERVED_COLOURS.values()]
    base += [_darker(c) for c in base] + [GRID_COLOUR, SHADOW_COLOUR, TEXT_COLOUR, SEPARATOR_COLOUR]
    shades: set[tuple[int, ...]] = {BACKGROUND}
    for c in base:
        for a in np.linspace(1 / 15, 1, 15):
            shades.add(tuple(int(round(255 + (v - 255) * a)) for v in c))
    colours = sorted(shades)[:256]
    pal = Image.new("P", (1, 1))
    colours += [colours[-1]] * (256 - len(colours))
    pal.putpalette([v for c in colours for v in c])
    return pal


def _write_mp4(path: Path, frames, fps: float) -> None:
    """H.264 MP4 (yuv420p) via the ffmpeg binary shipped with imageio-ffmpeg; frames padded to even sizes."""
    import imageio_ffmpeg

    frames = iter(frames)
    first = next(frames)
    w, h = first.size
    W, H = w + w % 2, h + h % 2
    writer = imageio_ffmpeg.write_frames(str(path), (W, H), fps=fps, codec="libx264", quality=None,
                                         macro_block_size=1, output_params=["-crf", "20", "-preset", "veryfast"],
                                         ffmpeg_log_level="error")
    writer.send(None)
    arr = np.full((H, W, 3), 255, dtype=np.uint8)
    for img in itertools.chain([first], frames):
        arr[:h, :w] = np.asarray(img)
        writer.send(arr.tobytes())
    writer.close()


def _progress(it, enabled: bool, desc: str):
    from ..progress import bar

    return bar(it, enabled, desc, unit="frame")
