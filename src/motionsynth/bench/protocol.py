"""The benchmark protocol: which windows, which masks, which metrics, for every task.

Every task cuts fixed-length windows from one split of a prepared `MotionCache`, hides part of each window with a
`tasks.Mask`, asks a `tasks.Method` (a baseline or a learned model) to complete it, and scores the result against
the clean window. Unobserved values are overwritten (identity rotations, zero root positions) before the method sees
them, so nothing leaks. Global positions are in cm; every number below is recorded in the benchmark JSON
(``settings``) so a result can be re-made from its file. Every metric is taken over the *moving* joints (the moving
root and its descendants): static ancestors such as Bandai's ``joint_Root`` never move and would only dilute the
averages. Units: MPJPE cm; ACCEL and acceleration error cm/frame²; foot skating cm/s (mean horizontal speed of the
toes and ankles over the steps where the foot is within 5 cm of the clip's lowest foot point, `metrics.foot_skating`).
Windows are cut from the start of every take of the split every ``stride`` frames; ``limit`` keeps that many of them,
evenly spaced. ``only`` (``motionsynth bench --only content=run,raise-up-*``, a label filter of `data.selection`)
keeps the takes of the split that match it, before ``limit``: with a model trained with the same actions held out
(``train.hold_out``, recorded in the record as ``hold_out``) this is the unseen-actions protocol.

``inbetween`` (LAFAN1's protocol, Harvey et al. 2020)
    Test-split windows of 65 frames every 40 frames. For each gap of 5, 15, 30 and 45 frames the window is cut to its
    first 10 + gap + 1 frames: 10 context frames, the gap, and one target frame (LAFAN1 also keeps 9 more future
    frames that no method sees; cutting them changes nothing). Metrics on the gap frames only:
    L2Q (global quaternions), L2P (global positions normalised by the mean/std of the training split), NPSS (global
    quaternions), MPJPE (cm), ACCEL (mean acceleration of the prediction at the gap frames, from second differences
    with the last context frame and the target as neighbours) and foot skating of the prediction on the same frames
    (``foot_skate_gt``: the ground truth's, for reference).
    ``samples`` = K > 1 (``-s samples=10``) asks for K completions of each window under the same constraints, in
    one call: the metrics above score the method's first (its best by its own objective); ``apd_cm`` is their
    diversity — the average pairwise distance, over the K(K - 1)/2 pairs, of the samples' global positions on the
    gap frames (mean over frames and moving joints, cm; 0 for a deterministic method), averaged over windows;
    ``l2p_samples`` is the mean L2P over the K samples, ``l2p_best_of_k`` the mean over windows of the lowest
    (an oracle's choice).
    Like LAFAN1's ``extract.get_lafan1_set``, global positions and rotations are expressed in a per-window frame:
    XZ centred on the mean root position of the 65-frame window, and rotated about +Y so that the root heading at
    the last context frame is zero. The *ground truth's* frame is applied to both prediction and ground truth (L2Q
    and MPJPE do not depend on it; L2P and NPSS do). The L2P statistics come from training windows of 50 frames every
    20 (LAFAN1's ``get_train_stats``) in the same frame, at most ``stats_windows`` of them, evenly spaced.
    Methods themselves get the windows as stored (world frame). Global quaternions are made continuous in time and
    the prediction's sign is aligned with the ground truth's frame by frame (q and -q are the same rotation) before
    L2Q and NPSS.

``complete``
    Test-split windows of 64 frames every 40. Three settings: lower body missing (``groups['upper']`` observed),
    upper body missing (``groups['lower']`` observed), left arm missing (everything but ``groups['left_arm']``
    observed). The root position is observed where the root joint is — so with the lower body missing the whole
    trajectory is unobserved and the global error is dominated by where the method puts the root (setting ``root``:
    ``synthesised``, the default and the HM-VAE document's protocol, recorded in every record; ``observed`` keeps the
    root path as ``motionsynth complete`` does by default, `tasks.observe_root`). MPJPE (cm) on the
    missing joints, leaving out the static ancestors of the moving root (e.g. Bandai's ``joint_Root``): ``mpjpe_cm``
    on global positions, ``mpjpe_rel_cm`` on root-relative positions (each frame's moving-root position subtracted
    from prediction and ground truth), which isolates the pose, and ``mpjpe_local_cm`` on root-relative positions
    turned into each frame's root heading frame (prediction and ground truth each by its own root heading): with the
    root joint missing, the way the character faces is not in the observation at all, and ``mpjpe_rel_cm`` counts
    the method's guess of it; ``mpjpe_local_cm`` leaves only the pose of the body. Methods with ``needs_fit`` (mean
    pose, nearest neighbour, the prior with ``init="nearest"``) are fitted on the TRAIN split (``fit_takes``: at most
    that many takes, evenly spaced; all by default).

``predict``
    Test-split windows of 40 frames every 40: 10 frames given, 30 predicted. MPJPE (cm) at 5, 10, 20 and 30 frames
    ahead and averaged over the 30 frames; L2Q at those horizons and averaged; NPSS over the 30 frames (in the frame
    of the last given frame, as for in-betweening).

``denoise``
    Test-split windows of 128 frames every 128, corrupted by each noise model of `bench.noise` (seeded per window).
    MPJPE, PA-MPJPE (cm) and acceleration error of the noisy input and of the method's output. Filters with a
    class-level ``grid`` are tuned per noise model on VALIDATION windows (at most ``tune_windows``, evenly spaced;
    objective: lowest MPJPE, ties within 0.001 cm broken by acceleration error); the test split is never used for
    tuning. The chosen parameters are recorded per row.

``reconstruct`` (the HM-VAE paper's Table 3)
    A learned model's encode → decode: test-split windows of the model's own length W (64 for the ``cpu`` presets)
    every W frames (no overlap: each frame is scored once), taken from the cache's features, normalised with the
    *checkpoint's* statistics, encoded, decoded from the posterior mean (``model.reconstruct``; HM-VAE uses its local
    latent once trained past ``progressive_steps``), denormalised and decoded to a motion with
    `data.features.decode` from the window's own first-frame position and heading (`features.origin`) — so the root
    block the model outputs (HM-VAE: its trajectory module) drives the trajectory. Metrics over the moving joints:
    PA-MPJPE (cm, per-frame similarity alignment), MPJPE root-relative (``mpjpe_rel_cm``, the primary figure, like
    the paper's) and global (``mpjpe_cm``: the reconstructed trajectory too), ACCEL of the reconstruction
    (``accel``; ``accel_gt``: the ground truth's) and acceleration error, both cm/frame² on root-relative positions
    (as VIBE/MEVA compute them). Families with ``reconstruct``: hmvae, hmvae-m, hmvae-tcn, mvae. Several checkpoints
    give one table (``motionsynth bench reconstruct --model A --model B``).

``classify`` (an action classifier, `bench.recognition`)
    Per-window (W frames every W / 2 of the split's takes) and per-take (whole takes, windows averaged) accuracy per
    label kind, confusion matrices and speed of a classifier checkpoint (``--model``).

``generate`` (`bench.generation`: the Action2Motion / ACTOR protocol)
    A generator's samples per label scored by a classifier checkpoint (setting ``classifier``, ``--classifier`` on
    the command line): recognition accuracy, FID on the classifier's embedding against real clips of the split,
    diversity, multimodality, foot skating, mean ± 95 % interval over repetitions, and a real-data reference row.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np

from .. import metrics as M
from .. import rotations as R
from ..checkpoint import Checkpoint
from ..data.features import decode, origin
from ..data.noise import NOISE_MODELS, NoiseConfig, add_noise
from ..data.selection import check_label_filter
from ..errors import MotionsynthError
from ..kinematics import foot_joints, heading_angle, heading_quat
from ..methods.baselines import BASELINES, make_baseline
from ..methods.rig import on_skeleton
from ..motion import Motion
from ..registry import check_serves, family, load_checkpoint, load_method, names
from ..tasks import TASKS, Mask, Method, Request, denoise_mask, inbetween_mask, joints_mask, observe_root, predict_mask
from .clips import (
    global_transforms,
    iter_clips,
    method_label,
    moving_joints,
    open_cache,
    split_takes,
    split_windows,
)
from .clips import progress_bar as _progress
from .generation import run_generate
from .recognition import Recognizer, run_classify
from .report import _fmt


@dataclass(frozen=True)
class DemoPlan:
    """What the demo (`motionsynth.demo`, ``make demo``) shows of a task's protocol: the harness on a few test
    windows, and one of them as a clip.

    Attributes:
        title: the section's heading; ``note``: what the shown clip is given and what is synthesised.
        settings: the protocol's settings for the demo (overrides of `Protocol.settings`).
        shown: the content label of the test window shown (the first of the harness's windows with it).
        request: (clip, settings) → the `tasks.Request` the shown window makes (its motion: the ground truth).
        models: the shipped models to use, in order of preference (the first that ships and serves the task).
        baselines: baselines shown beside the task's best one (`tasks.Task.baseline`).
        bench_columns: (record key, column) of the harness's numbers in the demo's table, from each record's first
            result row (none: the bench summary's columns, `Protocol.columns`).
        clip_columns: the columns of the shown clip's numbers (`demo.clip_numbers`).
    """

    title: str
    note: str
    request: Callable
    settings: dict = field(default_factory=dict)
    shown: str | None = None
    models: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    bench_columns: tuple[tuple[str, str], ...] = ()
    clip_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Protocol:
    """How the harness scores one task (a `tasks.Task`'s ``bench``), or a learned model apart from any task
    (`MODEL_PROTOCOLS`: reconstruct, classify).

    Attributes:
        settings: the default settings (`resolve_settings` merges overrides; every one is recorded).
        run: (cache, method, settings, split, seed, limit, progress) → (rows, extra): windows, masks and metrics;
            with ``tunes``, also ``baseline`` (a baseline name whose ``grid`` it tunes on val) and ``wrap``.
        title: the bench summary's table title: what the numbers are and which way is better.
        columns: settings → [(column, record → cell)]: the task's main quality figures in the bench summary.
        demo: what the demo shows of it (`DemoPlan`), or None.
    """

    settings: dict
    run: Callable
    title: str = ""
    columns: Callable | None = None
    tunes: bool = False
    demo: DemoPlan | None = None


# Completion settings: name → (what is missing, in words; function skeleton → observed joint indices).
COMPLETE_SETTINGS: dict[str, tuple[str, Callable]] = {
    "lower_body": ("lower body missing", lambda s: s.groups["upper"]),
    "upper_body": ("upper body missing", lambda s: s.groups["lower"]),
    "left_arm": ("left arm missing", lambda s: sorted(set(range(len(s))) - set(s.groups["left_arm"]))),
}
COMPLETE_ROOT = ("synthesised", "observed")
"""Completion's ``root`` setting: the root path hidden with the root joint (the benchmark's figures), or kept."""


# ---- data access -------------------------------------------------------------------------------------------------
def fit_method(method, cache, limit: int | None, seed: int) -> dict:
    """Fit a method with ``fit`` on the TRAIN split's whole takes (streamed, one take in memory at a time)."""
    import inspect

    takes = split_takes(cache, "train", limit)
    kwargs = {"rng": seed} if "rng" in inspect.signature(method.fit).parameters else {}
    method.fit((cache.motion(int(i)) for i in takes), **kwargs)
    info = {"split": "train", "takes": len(takes)}
    database = getattr(method, "retrieval", None) or method  # the prior with init="nearest" holds a retrieval
    if getattr(database, "rotations", None) is not None:  # nearest neighbour: the size of its pose database
        info["database_frames"] = len(database.rotations)
    return info


# ---- geometry helpers ----------------------------------------------------------------------------------------------
def hide(motion: Motion, mask: Mask) -> Motion:
    """A copy with every unobserved value overwritten (identity rotation, zero root position) — unless noisy."""
    out = motion.copy()
    if not mask.noisy:
        out.rotations[~mask.joints] = R.quat_identity()
        out.root_positions[~mask.root] = 0.0
    return out


def canonical_frame(gpos: np.ndarray, grot: np.ndarray, root: int, key: int) -> tuple[np.ndarray, np.ndarray]:
    """LAFAN1's per-window frame: (K, 3) offset and (K, 4) rotation such that ``q ⊗ (p - offset)`` has the root's
    mean XZ over the window at the origin and the root heading at frame ``key`` equal to zero.

    gpos (K, T, J, 3), grot (K, T, J, 4).
    """
    offset = gpos[:, :, root].mean(1)
    offset[:, 1] = 0.0
    return offset, heading_quat(-heading_angle(grot[:, key, root]))


def to_frame(gpos: np.ndarray, grot: np.ndarray, offset: np.ndarray, q: np.ndarray):
    """Express (K, T, J, 3|4) global positions and rotations in the frames of `canonical_frame`."""
    qb = q[:, None, None, :]
    return R.quat_apply(qb, gpos - offset[:, None, None, :]), R.quat_mul(qb, grot)


def heading_local(gpos: np.ndarray, grot: np.ndarray, root: int) -> np.ndarray:
    """(..., J, 3) global positions and (..., J, 4) global rotations → positions relative to joint ``root``, turned
    about +Y so that the root's heading is zero in every frame."""
    return R.quat_apply(heading_quat(-heading_angle(grot[..., root, :]))[..., None, :], M.root_relative(gpos, root))


def align_quats(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, T, J, 4): ground truth made continuous in time, prediction flipped onto the ground truth's hemisphere."""
    gt = R.quat_continuous(gt, dim=1)
    flip = (pred * gt).sum(-1, keepdims=True) < 0
    return np.where(flip, -pred, pred), gt


def _f(x) -> float:
    return float(np.asarray(x, dtype=np.float64).mean())


# ---- methods -------------------------------------------------------------------------------------------------------
def make_method(name: str, **params) -> Method:
    """A baseline by registry name (clear error listing the known names)."""
    if name not in BASELINES:
        raise MotionsynthError(f"unknown method {name!r}; baselines are {', '.join(sorted(BASELINES))}")
    return make_baseline(name, **params)


def _complete_one(method, motion: Motion, mask: Mask, seed: int) -> Motion:
    return _complete_k(method, motion, mask, seed, 1)[0]


def _complete_k(method, motion: Motion, mask: Mask, seed: int, k: int) -> list[Motion]:
    out = list(method.complete(hide(motion, mask), mask, label=None, n_samples=k, seed=seed))
    if len(out) != k or any(m.num_frames != motion.num_frames for m in out):
        raise MotionsynthError(f"method {method_label(method)!r} returned {len(out)} motions (asked {k}) or one of "
                               f"the wrong length")
    return out


# ---- tasks -----------------------------------------------------------------------------------------------------------
def l2p_stats(cache, s: dict, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(J', 3) mean and std of canonical-frame global positions of the moving joints over training windows."""
    wins = split_windows(cache, "train", s["stats_window"], s["stats_stride"], s["stats_windows"])
    total: Any  # sums: floats, then (J', 3) arrays
    total_sq: Any
    total, total_sq, n = 0.0, 0.0, 0
    clips = iter_clips(cache, wins, s["stats_window"], progress, "L2P stats (train)")
    for chunk in _chunks(clips, 256):
        grot, gpos = global_transforms(chunk)
        offset, q = canonical_frame(gpos, grot, cache.skeleton.root, s["context"] - 1)
        p = to_frame(gpos, grot, offset, q)[0][:, :, moving_joints(cache.skeleton)]
        total, total_sq, n = total + p.sum((0, 1)), total_sq + (p ** 2).sum((0, 1)), n + p.shape[0] * p.shape[1]
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean ** 2, 0.0))
    return mean, np.maximum(std, 1e-6)


def _chunks(it, size: int):
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def run_inbetween(cache, method, s: dict, split: str, seed: int, limit, progress: bool) -> tuple[list, dict]:
    mean, std = l2p_stats(cache, s, progress)
    extra = {"l2p_mean": np.round(mean, 4).tolist(), "l2p_std": np.round(std, 4).tolist(),
             "feet": [cache.skeleton.names[j] for j in foot_joints(cache.skeleton, ankles=True)]}
    wins = split_windows(cache, split, s["window"], s["stride"], limit, s.get("only"))
    sk, ctx, rows, K = cache.skeleton, s["context"], [], int(s.get("samples", 1))
    if K < 1:
        raise MotionsynthError(f"samples must be at least 1, got {K}")
    mv = moving_joints(sk)
    feet = [mv.index(j) for j in foot_joints(sk, ankles=True)]
    clips = list(iter_clips(cache, wins, s["window"]))
    g_rot, g_pos = global_transforms(clips)
    offset, q = canonical_frame(g_pos, g_rot, sk.root, ctx - 1)
    g_pos, g_rot = (x[:, :, mv] for x in to_frame(g_pos, g_rot, offset, q))
    for gap in s["gaps"]:
        n = ctx + gap + 1
        if n > s["window"]:
            raise MotionsynthError(f"gap {gap} does not fit windows of {s['window']} frames")
        mask = inbetween_mask(n, len(sk), ctx, gap)
        preds = [_complete_k(method, c[:n], mask, seed, K)
                 for c in _progress(clips, progress, f"inbetween {method_label(method)} gap={gap}")]
        gap_f, ext = slice(ctx, ctx + gap), slice(ctx - 1, ctx + gap + 1)
        if K > 1:
            diversity = _sample_scores(preds, offset, q, mv, gap_f, g_pos, mean, std)
        p_rot, p_pos = global_transforms([p[0] for p in preds])
        p_pos, p_rot = (x[:, :, mv] for x in to_frame(p_pos, p_rot, offset, q))
        pq, gq = align_quats(p_rot[:, gap_f], g_rot[:, :n][:, gap_f])
        rows.append({
            "gap": gap,
            "l2q": _f(M.l2q(pq, gq, canonical=False)),
            "l2p": _f(M.l2p(p_pos[:, gap_f], g_pos[:, gap_f], mean, std)),
            "npss": _f(M.npss(pq, gq, canonical=False)),
            "mpjpe_cm": _f(M.mpjpe(p_pos[:, gap_f], g_pos[:, gap_f])),
            "accel": _f(M.accel(p_pos[:, ext])),
            "foot_skate": _f(M.foot_skating(p_pos[:, ext], feet, fps=cache.fps)),
            "foot_skate_gt": _f(M.foot_skating(g_pos[:, ext], feet, fps=cache.fps)),
            "windows": len(clips),
            **(diversity if K > 1 else {}),
        })
    return rows, extra


def _sample_scores(preds: list[list[Motion]], offset, q, mv: list[int], gap_f: slice, g_pos, mean, std) -> dict:
    """K samples per window (N lists of K motions) → ``apd_cm``, ``l2p_samples``, ``l2p_best_of_k`` (module
    docstring, ``samples``); ``offset``, ``q``: the windows' canonical frames, ``g_pos`` (N, T, J', 3) the truth."""
    N, K = len(preds), len(preds[0])
    rot, pos = global_transforms([m for p in preds for m in p])
    rep = lambda x: np.repeat(x, K, 0)
    pos = to_frame(pos, rot, rep(offset), rep(q))[0][:, gap_f][:, :, mv].reshape(N, K, -1, len(mv), 3)
    i, j = np.triu_indices(K, 1)
    apd = np.linalg.norm(pos[:, i] - pos[:, j], axis=-1).mean((1, 2, 3))
    truth = g_pos[:, gap_f]
    l2p = np.stack([[_f(M.l2p(pos[w, k], truth[w], mean, std)) for k in range(K)] for w in range(N)])
    return {"samples": K, "apd_cm": _f(apd.mean()), "l2p_samples": _f(l2p.mean()),
            "l2p_best_of_k": _f(l2p.min(1).mean())}


def run_complete(cache, method, s: dict, split: str, seed: int, limit, progress: bool) -> tuple[list, dict]:
    sk = cache.skeleton
    static = set(sk.ancestors(sk.root))
    wins = split_windows(cache, split, s["window"], s["stride"], limit, s.get("only"))
    clips = list(iter_clips(cache, wins, s["window"]))
    g_rot, g_pos = global_transforms(clips)
    if s["root"] not in COMPLETE_ROOT:
        raise MotionsynthError(f"unknown completion root setting {s['root']!r}; choose {' or '.join(COMPLETE_ROOT)}")
    rows = []
    for key in s["missing"]:
        if key not in COMPLETE_SETTINGS:
            raise MotionsynthError(f"unknown completion setting {key!r}; choose from {', '.join(COMPLETE_SETTINGS)}")
        words, observed = COMPLETE_SETTINGS[key]
        mask = joints_mask(s["window"], sk, observed(sk))
        if s["root"] == "observed":
            mask = observe_root(mask, sk)
        missing = [j for j in np.flatnonzero(~mask.joints[0]) if j not in static]
        preds = [_complete_one(method, c, mask, seed)
                 for c in _progress(clips, progress, f"complete {method_label(method)} {key}")]
        p_rot, p_pos = global_transforms(preds)
        rows.append({"setting": words, "missing_joints": len(missing),
                     "mpjpe_cm": _f(M.mpjpe(p_pos, g_pos, joints=missing)),
                     "mpjpe_rel_cm": _f(M.mpjpe(M.root_relative(p_pos, sk.root), M.root_relative(g_pos, sk.root),
                                                joints=missing)),
                     "mpjpe_local_cm": _f(M.mpjpe(heading_local(p_pos, p_rot, sk.root),
                                                  heading_local(g_pos, g_rot, sk.root), joints=missing)),
                     "windows": len(clips)})
    return rows, {}


def run_predict(cache, method, s: dict, split: str, seed: int, limit, progress: bool) -> tuple[list, dict]:
    sk, given, T = cache.skeleton, s["given"], s["window"]
    wins = split_windows(cache, split, T, s["stride"], limit, s.get("only"))
    clips = list(iter_clips(cache, wins, T))
    mask = predict_mask(T, len(sk), given)
    desc = f"predict {method_label(method)}"
    preds = [_complete_one(method, c, mask, seed) for c in _progress(clips, progress, desc)]
    g_rot, g_pos = global_transforms(clips)
    p_rot, p_pos = global_transforms(preds)
    offset, q = canonical_frame(g_pos, g_rot, sk.root, given - 1)
    mv = moving_joints(sk)
    g_pos, g_rot = (x[:, :, mv] for x in to_frame(g_pos, g_rot, offset, q))
    p_pos, p_rot = (x[:, :, mv] for x in to_frame(p_pos, p_rot, offset, q))
    fut = slice(given, T)
    pq, gq = align_quats(p_rot[:, fut], g_rot[:, fut])
    rows = []
    for h in s["horizons"]:
        if not 0 < h <= T - given:
            raise MotionsynthError(f"horizon {h} is outside the {T - given} predicted frames")
        t = given + h - 1
        rows.append({"horizon": h, "mpjpe_cm": _f(M.mpjpe(p_pos[:, t:t + 1], g_pos[:, t:t + 1])),
                     "l2q": _f(M.l2q(pq[:, h - 1:h], gq[:, h - 1:h], canonical=False)), "npss": None,
                     "windows": len(clips)})
    rows.append({"horizon": f"1-{T - given}", "mpjpe_cm": _f(M.mpjpe(p_pos[:, fut], g_pos[:, fut])),
                 "l2q": _f(M.l2q(pq, gq, canonical=False)), "npss": _f(M.npss(pq, gq, canonical=False)),
                 "windows": len(clips)})
    return rows, {}


def _denoise_scores(method, clips: list[Motion], noisy: list[Motion], seed: int, progress: bool = False,
                    desc: str = "") -> dict[str, float]:
    mask = denoise_mask(clips[0].num_frames, len(clips[0].skeleton))
    outs = [_complete_one(method, n, mask, seed) for n in _progress(noisy, progress, desc)]
    mv = moving_joints(clips[0].skeleton)
    g, p = global_transforms(clips)[1][:, :, mv], global_transforms(outs)[1][:, :, mv]
    return {"mpjpe_cm": _f(M.mpjpe(p, g)), "pa_mpjpe_cm": _f(M.pa_mpjpe(p, g)), "accel_error": _f(M.accel_error(p, g))}


def _noisy(clips: list[Motion], model: str, seed: int, salt: int, config: NoiseConfig) -> list[Motion]:
    k = NOISE_MODELS.index(model)
    return [add_noise(c, model, [seed, salt, i, k], config) for i, c in enumerate(clips)]


def tune(name: str, cache, model: str, s: dict, seed: int, progress: bool = False) -> tuple[dict, list[dict]]:
    """Pick the grid parameters of baseline ``name`` for noise ``model`` on VALIDATION windows.

    Returns (chosen params, [{params, mpjpe_cm, accel_error}, …] for the whole grid).
    """
    grid = list(getattr(BASELINES[name], "grid", None) or [])
    if not grid:
        return {}, []
    clips = list(iter_clips(cache, split_windows(cache, "val", s["window"], s["stride"], s["tune_windows"]),
                            s["window"]))
    noisy = _noisy(clips, model, seed, 1, NoiseConfig(**_noise_args(s["noise"])))
    scores: list[dict[str, Any]] = []
    for params in _progress(grid, progress, f"tune {name} on val ({model})"):
        sc = _denoise_scores(make_method(name, **params), clips, noisy, seed)
        scores.append({"params": dict(params), "mpjpe_cm": sc["mpjpe_cm"], "accel_error": sc["accel_error"]})
    best = min(scores, key=lambda r: (round(r["mpjpe_cm"], 3), r["accel_error"]))
    return best["params"], scores


def _noise_args(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def run_denoise(cache, method, s: dict, split: str, seed: int, limit, progress: bool,
                baseline: str | None = None, wrap: Callable | None = None) -> tuple[list, dict]:
    config = NoiseConfig(**_noise_args(s["noise"]))
    wins = split_windows(cache, split, s["window"], s["stride"], limit, s.get("only"))
    clips = list(iter_clips(cache, wins, s["window"]))
    rows, tuning = [], {}
    for model in s["noise_models"]:
        if model not in NOISE_MODELS:
            raise MotionsynthError(f"unknown noise model {model!r}; choose from {', '.join(NOISE_MODELS)}")
        params = dict(method.params)
        m = method
        if baseline is not None:
            chosen, scores = tune(baseline, cache, model, s, seed, progress)
            if chosen:
                params, m = chosen, make_method(baseline, **chosen)
                m = wrap(m) if wrap else m
                tuning[model] = {"chosen": chosen, "grid": scores}
        noisy = _noisy(clips, model, seed, 0, config)
        inp = _identity_scores(clips, noisy)
        out = _denoise_scores(m, clips, noisy, seed, progress, f"denoise {method_label(m)} {model}")
        rows.append({"noise": model, "input_mpjpe_cm": inp["mpjpe_cm"], "input_pa_mpjpe_cm": inp["pa_mpjpe_cm"],
                     "input_accel_error": inp["accel_error"], **out, "params": _jsonable(params),
                     "windows": len(clips)})
    extra = {"tuning": {"split": "val", "windows": s["tune_windows"],
                        "objective": "lowest MPJPE (cm, rounded to 0.001), then lowest acceleration error",
                        "per_noise_model": tuning}} if tuning else {}
    return rows, extra


def _identity_scores(clips, noisy) -> dict[str, float]:
    mv = moving_joints(clips[0].skeleton)
    g, p = global_transforms(clips)[1][:, :, mv], global_transforms(noisy)[1][:, :, mv]
    return {"mpjpe_cm": _f(M.mpjpe(p, g)), "pa_mpjpe_cm": _f(M.pa_mpjpe(p, g)), "accel_error": _f(M.accel_error(p, g))}


class Reconstructor:
    """A checkpoint's encoder–decoder for the ``reconstruct`` task: raw feature windows → posterior-mean
    reconstructions.

    Attributes:
        ckpt: the `checkpoint.Checkpoint`; name: its family (the table's method column); checkpoint_hash: its
        weights hash; window: the model's window W (frames); batch_size: windows per forward pass.
    """

    def __init__(self, checkpoint, batch_size: int = 64):
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        if not callable(getattr(ckpt.model, "reconstruct", None)):
            raise MotionsynthError(f"{ckpt.path or 'checkpoint'}: a {ckpt.family} model cannot reconstruct (it has no "
                                   f"encoder/decoder of its own); reconstruct scores {', '.join(_reconstructors())} "
                                   f"checkpoints")
        if batch_size < 1:
            raise MotionsynthError(f"batch_size must be at least 1, got {batch_size}")
        self.ckpt, self.name, self.checkpoint_hash = ckpt, ckpt.family, ckpt.weights_hash
        self.params: dict[str, Any]
        self.skeleton, self.params, self.needs_fit = ckpt.skeleton, {}, False
        self.window, self.batch_size = int(cast(Any, ckpt.model).config.window), int(batch_size)

    def reconstruct(self, features: np.ndarray, progress: bool = False) -> np.ndarray:
        """(K, W, D) raw features → (K, W, D) raw reconstructions (float32), ``batch_size`` windows at a time."""
        import torch

        model, stats = cast(Any, self.ckpt.model), self.ckpt.stats  # a network with `reconstruct` (checked)
        device = next(model.parameters()).device
        out = []
        batches = range(0, len(features), self.batch_size)
        with torch.no_grad():
            for i in _progress(batches, progress, f"reconstruct {self.name}"):
                x = np.asarray(stats.normalize(np.asarray(features[i:i + self.batch_size], np.float32)), np.float32)
                y = model.reconstruct(torch.from_numpy(x).to(device)).float().cpu().numpy()
                out.append(np.asarray(stats.denormalize(y), np.float32))
        return np.concatenate(out)


def _reconstructors() -> list[str]:
    """The families whose networks can reconstruct (encode → decode), from the registry."""
    return [n for n in names() if callable(getattr(family(n).network, "reconstruct", None))]


def load_model(model, task: str, cache=None, **options):
    """A learned model for ``task`` from a checkpoint folder or a loaded `Checkpoint`: a `Reconstructor` for
    ``reconstruct``, a `Recognizer` for ``classify``, else the family's `tasks.Method` (`checkpoint.load_method`).
    With ``cache``, a method serves the cache's skeleton (another humanoid rig: retargeted in and out, scored in
    that rig: `methods.rig.on_skeleton`); a reconstructor or recogniser must match it (`SkeletonMismatchError`).
    ``options`` go to the method's constructor."""
    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(model)
    if cache is not None and task in ("reconstruct", "classify"):
        ckpt.check_skeleton(cache.skeleton, what="benchmark data")
    if task == "reconstruct":
        return Reconstructor(ckpt)
    if task == "classify":
        return Recognizer(ckpt, **options)
    method = load_method(ckpt, **options)
    return method if cache is None else on_skeleton(method, cache.skeleton, task)


def run_reconstruct(cache, method, s, split, seed, limit, progress):
    if method is None or not hasattr(method, "reconstruct"):
        raise MotionsynthError(f"reconstruct needs a learned model with encode/decode (a checkpoint of "
                               f"{', '.join(_reconstructors())}); baselines cannot reconstruct")
    sk = cache.skeleton
    method.ckpt.check_skeleton(sk, what="benchmark data")
    W = method.window
    if s["window"] not in (None, W):
        raise MotionsynthError(f"the {method.name} model reconstructs windows of {W} frames, not {s['window']}")
    stride = int(s["stride"] or W)
    method.batch_size = int(s["batch_size"])
    wins = split_windows(cache, split, W, stride, limit, s.get("only"))
    clips = list(iter_clips(cache, wins, W))
    feats = np.stack([cache.features[cache.takes[t].start + a: cache.takes[t].start + a + W] for t, a in wins])
    recon = method.reconstruct(feats, progress)
    preds = [decode(r, c.skeleton, c.fps, origin=origin(c), name=c.name) for r, c in zip(recon, clips)]
    mv = moving_joints(sk)
    g, p = global_transforms(clips)[1], global_transforms(preds)[1]
    g_rel, p_rel = M.root_relative(g, sk.root)[:, :, mv], M.root_relative(p, sk.root)[:, :, mv]
    g, p = g[:, :, mv], p[:, :, mv]
    row = {"pa_mpjpe_cm": _f(M.pa_mpjpe(p, g)), "mpjpe_rel_cm": _f(M.mpjpe(p_rel, g_rel)),
           "mpjpe_cm": _f(M.mpjpe(p, g)), "accel": _f(M.accel(p_rel)), "accel_gt": _f(M.accel(g_rel)),
           "accel_error": _f(M.accel_error(p_rel, g_rel)), "windows": len(clips)}
    extra = {"window": W, "stride": stride, "model_data_hash": method.ckpt.data_hash,
             "local_latent": bool(getattr(method.ckpt.model, "local_active", False))}
    return [row], extra


# ---- the bench summary's columns: a task's main quality figures (record → cell) ----------------------------------
def _pick(record: dict, **key) -> dict | None:
    """The first result row of ``record`` whose values match ``key`` (compared as text)."""
    return next((r for r in record["results"] if all(str(r.get(k)) == str(v) for k, v in key.items())), None)


def _value(metric: str, **key) -> Callable[[dict], object]:
    return lambda rec: (_pick(rec, **key) or {}).get(metric)


def _inbetween_columns(settings: dict) -> list:
    gaps = list(settings.get("gaps") or [])
    head = 30 if 30 in gaps else (gaps[-1] if gaps else None)
    cols = [(f"L2P gap {g}", _value("l2p", gap=g)) for g in gaps]
    return cols + [(f"L2Q gap {head}", _value("l2q", gap=head)), (f"NPSS gap {head}", _value("npss", gap=head))]


def _complete_columns(settings: dict) -> list:
    return [(f"{COMPLETE_SETTINGS[k][0].replace(' missing', '')} (cm)",
             _value("mpjpe_rel_cm", setting=COMPLETE_SETTINGS[k][0]))
            for k in settings.get("missing") or [] if k in COMPLETE_SETTINGS]


def _predict_columns(settings: dict) -> list:
    hs = list(settings.get("horizons") or [])
    total = f"1-{settings['window'] - settings['given']}"
    return [(f"{h} frames (cm)", _value("mpjpe_cm", horizon=h)) for h in hs] + \
        [(f"{total} (cm)", _value("mpjpe_cm", horizon=total)), (f"NPSS {total}", _value("npss", horizon=total))]


def _denoise_columns(settings: dict) -> list:
    def both(noise):
        def cell(rec):
            r = _pick(rec, noise=noise)
            return None if r is None else f"{_fmt(r['mpjpe_cm'])} / {_fmt(r['accel_error'])}"
        return cell
    return [(f"{n}: MPJPE / ACCEL err", both(n)) for n in settings.get("noise_models") or []]


def _generate_columns(settings: dict) -> list:
    def stat(metric, data="generated"):
        def cell(rec):
            r = _pick(rec, data=data, label="all")
            if r is None or r.get(metric) is None:
                return None
            ci = r.get(f"{metric}_ci95")
            return _fmt(r[metric]) + (f" ± {_fmt(ci)}" if ci is not None else "")
        return cell
    return [(name, stat(m)) for name, m in (("accuracy", "accuracy"), ("FID", "fid"), ("diversity", "diversity"),
                                            ("multimodality", "multimodality"), ("foot skating cm/s", "foot_skate"))]


# ---- the shown window of the demo: the request each protocol makes of it ------------------------------------------
def _inbetween_request(clip: Motion, s: dict) -> Request:
    n = s["context"] + s["gaps"][0] + 1
    return Request(motion=clip[:n], keyframes=[*range(s["context"]), n - 1])


def _complete_request(clip: Motion, s: dict) -> Request:
    return Request(motion=clip, observe=COMPLETE_SETTINGS[s["missing"][0]][1](clip.skeleton),
                   synthesise_root=s["root"] == "synthesised")  # what the harness scores beside it


def _predict_request(clip: Motion, s: dict) -> Request:
    return Request(motion=clip, given=s["given"])


def _denoise_request(clip: Motion, s: dict) -> Request:
    return Request(motion=clip)


# ---- the protocols: the `tasks.TASKS` entries name theirs (``bench``); MODEL_PROTOCOLS score models apart ----------
INBETWEEN = Protocol(
    {"window": 65, "stride": 40, "context": 10, "gaps": [5, 15, 30, 45], "samples": 1, "stats_window": 50,
     "stats_stride": 20, "stats_windows": 2000},
    run_inbetween, "In-betweening — L2P per gap, L2Q and NPSS (lower is better)", _inbetween_columns,
    demo=DemoPlan("In-betweening", "10 context frames and 1 target frame given, the 30 frames between synthesised.",
                  _inbetween_request, {"gaps": [30]}, "walk-turn-left",
                  ("delta-bandai", "cvae-bandai", "diffusion-cond-bandai", "hmvae-bandai", "diffusion-bandai"),
                  ("zero-velocity",),
                  (("l2q", "L2Q"), ("l2p", "L2P"), ("npss", "NPSS"), ("mpjpe_cm", "MPJPE cm"),
                   ("foot_skate", "foot skate cm/s")),
                  ("MPJPE cm (missing frames)", "max cm", "time s")))
COMPLETE = Protocol(
    {"window": 64, "stride": 40, "missing": ["lower_body", "upper_body", "left_arm"], "fit_takes": None,
     "root": "synthesised"},
    run_complete, "Completion — root-relative MPJPE of the missing joints, cm (lower is better); the root path "
                  "synthesised where the root joint is missing", _complete_columns,
    demo=DemoPlan("Completion (lower body missing)", "the upper body is given on every frame; the legs and the root "
                  "trajectory (position and heading) are synthesised, as the benchmark scores it — `motionsynth "
                  "complete` keeps the clip's root path unless asked to synthesise it (--synthesise-root).",
                  _complete_request, {"missing": ["lower_body"]}, "walk",
                  ("diffusion-cond-bandai", "hmvae-bandai", "cvae-bandai", "diffusion-bandai"), ("mean-pose",),
                  (("mpjpe_rel_cm", "MPJPE root-rel. cm"), ("mpjpe_local_cm", "MPJPE local cm"),
                   ("mpjpe_cm", "MPJPE global cm")),
                  ("MPJPE root-rel. cm (missing joints)", "MPJPE global cm (missing joints)", "time s")))
PREDICT = Protocol(
    {"window": 40, "stride": 40, "given": 10, "horizons": [5, 10, 20, 30]},
    run_predict, "Prediction — MPJPE at frames ahead, cm, and NPSS (lower is better)", _predict_columns,
    demo=DemoPlan("Prediction", "the first 10 frames given, the next 30 predicted.", _predict_request, {}, "run",
                  ("cvae-bandai", "diffusion-cond-bandai", "diffusion-bandai", "hmvae-bandai"),
                  clip_columns=("MPJPE cm (predicted frames)", "last frame cm", "time s")))
DENOISE = Protocol(
    {"window": 128, "stride": 128, "noise_models": list(NOISE_MODELS), "noise": NoiseConfig().to_dict(),
     "tune_windows": 64},
    run_denoise, "Denoising — MPJPE cm / acceleration error cm/frame² per noise model (lower is better)",
    _denoise_columns, tunes=True,
    demo=DemoPlan("Denoising (estimator-like mixed noise)", "the clean clip corrupted by the benchmark's mixed noise "
                  "(drift, jitter, spikes, dropped frames); the methods see only the noisy input.", _denoise_request,
                  {"noise_models": ["mixed"], "tune_windows": 16}, "raise-up-both-hands",
                  ("meva-bandai", "diffusion-bandai", "hmvae-bandai"), ("gaussian",),
                  (("mpjpe_cm", "MPJPE cm"), ("pa_mpjpe_cm", "PA-MPJPE cm"), ("accel_error", "ACCEL error cm/frame²")),
                  ("MPJPE cm", "PA-MPJPE cm", "ACCEL error cm/frame²", "time s")))
GENERATE = Protocol(
    {"classifier": None, "kind": None, "frames": None, "stride": None, "samples_per_label": 100, "repetitions": 5,
     "label_weights": "uniform", "diversity_pairs": 200, "multimodality_pairs": 20},  # None: from the classifier
    run_generate, "Generation — scored by the action classifier (accuracy, diversity, multimodality: higher is "
                  "better; FID, foot skating: lower)", _generate_columns,
    demo=DemoPlan("Label-conditioned generation", "", lambda clip, s: Request(skeleton=clip.skeleton),
                  models=("diffusion-bandai", "cvae-bandai")))
MODEL_PROTOCOLS: dict[str, Protocol] = {
    "reconstruct": Protocol({"window": None, "stride": None, "batch_size": 64}, run_reconstruct),  # None: the W
    "classify": Protocol({"window": None, "stride": None, "batch_size": 256}, run_classify),  # None: W, W / 2
}
"""Protocols that score a learned model apart from any task: encode → decode, and an action classifier."""


def protocol_names() -> list[str]:
    """What ``motionsynth bench`` runs: every task of `tasks.TASKS` with a protocol, then `MODEL_PROTOCOLS`."""
    return [t.name for t in TASKS.values() if t.bench is not None] + list(MODEL_PROTOCOLS)


def protocol_of(name: str) -> Protocol:
    """The protocol of a task (`tasks.Task.protocol`) or of `MODEL_PROTOCOLS`; a clear error listing them."""
    if name in MODEL_PROTOCOLS:
        return MODEL_PROTOCOLS[name]
    found = TASKS[name].protocol() if name in TASKS else None
    if found is None:
        raise MotionsynthError(f"unknown task {name!r}; choose from {', '.join(protocol_names())}")
    return found


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def resolve_settings(task: str, settings: dict | None) -> dict:
    """The task's default settings updated with ``settings`` (unknown keys are an error)."""
    s = copy.deepcopy(protocol_of(task).settings)
    for k, v in (settings or {}).items():
        if k not in s:
            raise MotionsynthError(f"unknown {task} setting {k!r}; known: {', '.join(s) or 'none'}")
        s[k] = {**s[k], **v} if isinstance(s[k], dict) and isinstance(v, dict) else v
    return s


def run_benchmark(task: str, cache, method_name: str | None = None, model: str | None = None,
                  settings: dict | None = None, seed: int = 0, limit: int | None = None, progress: bool = True,
                  method: Method | None = None, split: str = "test", only: dict | None = None,
                  wrap: Callable | None = None) -> dict:
    """Run one task's benchmark for one method and return its record (see `bench.report`).

    Args:
        task: a task of `tasks.TASKS` with a protocol, or one of `MODEL_PROTOCOLS` (`protocol_names`).
        cache: a `MotionCache` or the path of a prepared cache folder.
        method_name: a baseline name (``motionsynth.baselines.BASELINES``); baselines with ``fit`` are fitted on
            the train split, denoising filters with a ``grid`` are tuned on the val split.
        model: a checkpoint folder: loaded with `load_model` when neither ``method`` nor ``method_name`` is given;
            else only recorded (the path a learned ``method`` was loaded from).
        method: a `tasks.Method` object (e.g. a loaded learned model; a `Reconstructor` for ``reconstruct``); used
            as is, no fitting or tuning.
        settings: overrides of the protocol's settings (e.g. ``{"gaps": [30]}``); for ``generate``,
            ``classifier`` is a classifier checkpoint folder (or a loaded `bench.recognition.Recognizer`).
        seed: seeds noise and the methods' sampling.
        limit: at most this many evaluation windows (evenly spaced over the split's, or ``only``'s) — for quick
            runs and tests.
        split: the evaluation split ('test'; 'val' for development).
        only: a label filter ``{kind: [glob patterns]}`` (`data.selection`; a string value is comma-separated):
            evaluate only the takes of the split that match it (the unseen-actions protocol), recorded as the
            setting ``only``. Fitting, tuning and training statistics still read their whole splits. The record
            carries the checkpoint's ``train.hold_out`` (the actions its training left out) as ``hold_out``.
        wrap: Method → Method, applied to every method the evaluation calls — the given or made one and each
            filter made with its tuned parameters (not those scored while tuning on val); e.g. to time its calls
            (`bench.timing.Timed`).
    """
    s = resolve_settings(task, settings)
    if split not in ("test", "val", "train"):
        raise MotionsynthError(f"unknown split {split!r}; choose test, val or train")
    if task == "generate" and not s["classifier"]:
        run_generate(None, None, s, split, seed, limit, progress)  # the clear error: no classifier
    if method is None and method_name is None and model is None and task not in ("reconstruct", "classify"):
        raise MotionsynthError("give a method: a baseline name, a Method object or a checkpoint (model)")
    cache = open_cache(cache)
    only = check_label_filter(only, cache.label_names, "--only")
    if only:
        s["only"] = only
        split_takes(cache, split, only=only)  # no matching take: the error before any work
    if method is None and method_name is None and model is not None:
        method = load_model(model, task, cache)
    baseline = None
    if method is None and method_name is not None:
        method, baseline = make_method(method_name), method_name
    if method is not None and wrap is not None:
        method = wrap(method)
    if method is not None and task in TASKS:
        check_serves(method, task)  # before any work: a method scores only the tasks it serves
    if method is not None and task in TASKS:  # data of another rig: retargeted in and out, scored in that rig
        method = on_skeleton(method, cache.skeleton, task)
    elif method is not None and method.skeleton is not None:
        method.skeleton.check_compatible(cache.skeleton, what="benchmark data")
    fit = {}
    if method is not None and method.needs_fit:
        fit = fit_method(method, cache, s.get("fit_takes"), seed)
    protocol = protocol_of(task)
    tuning = {"baseline": baseline, "wrap": wrap} if protocol.tunes else {}
    rows, extra = protocol.run(cache, method, s, split, seed, limit, progress, **tuning)
    if fit:
        extra["fit"] = fit
    if limit is not None:
        extra["limit"] = limit
    config = getattr(getattr(method, "ckpt", None), "config", None) or {}
    hold_out = (config.get("train") or {}).get("hold_out")
    return {
        "task": task,
        "method": method_name or (method_label(method) if method is not None else None),
        "model": str(getattr(model, "path", None) or model) if model is not None else None,
        "checkpoint_hash": method.checkpoint_hash if method is not None else None,
        "data_hash": getattr(cache, "data_hash", None),
        "split": split,
        "seed": seed,
        "settings": _jsonable({**s, **extra}),
        **({"hold_out": _jsonable(hold_out)} if hold_out else {}),
        "results": _jsonable(rows),
    }
