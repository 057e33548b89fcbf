"""Evaluation metrics for every task: pose error, smoothness, LAFAN1 in-betweening metrics, physical plausibility and
generation (FID, diversity, multimodality).

Conventions:

- Every function accepts ``numpy.ndarray`` (computed in float64, returned as numpy: a ``numpy.float64`` scalar or an
  array) or ``torch.Tensor`` (returned as a tensor, differentiable where the maths is) and returns the same kind.
- Positions are (..., T, J, 3) in the motion's units — cm for the project's data — so position metrics report cm.
  Leading dims ``(...)`` are batch dims (usually B) and are averaged over unless ``reduce=False``.
- Quaternions are (x, y, z, w) as everywhere in the project (the LAFAN1 metrics do not depend on the order).
- Up axis is +Y (index 1).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .errors import MotionsynthError
from .kinematics import foot_contacts

__all__ = [
    "mpjpe", "pa_mpjpe", "root_relative", "accel", "accel_error", "canonical_quats", "l2q", "l2p", "l2p_stats",
    "npss", "foot_contact_speed", "foot_skating", "fid", "diversity", "multimodality",
]


def _numpy_or_torch(fn):
    """Let a torch implementation take numpy arrays and give numpy back.

    With no tensor among the arguments, numpy float arrays become float64 tensors (integer/bool arrays keep their
    kind, for indices) and the result comes back as numpy (a ``numpy.float64`` for scalars). With a tensor among them,
    numpy arrays are moved to its device (floats in its dtype) and the result stays a tensor.
    """

    def convert(a, ref):
        if not isinstance(a, np.ndarray):
            return a
        t = torch.from_numpy(np.ascontiguousarray(a))
        if t.is_floating_point():
            t = t.to(torch.float64) if ref is None else t.to(device=ref.device, dtype=ref.dtype)
        elif t.dtype != torch.bool:
            t = t.long()
        return t if ref is None else t.to(ref.device)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ref = next((a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        out = fn(*[convert(a, ref) for a in args], **kwargs)
        if ref is not None:
            return out
        return tuple(back(o) for o in out) if isinstance(out, tuple) else back(out)

    def back(out):
        if isinstance(out, torch.Tensor):
            out = out.detach().numpy()
            return np.float64(out) if out.ndim == 0 else out
        return out

    return wrapper


def _check_same_shape(pred, gt, what: str, last: int | None = None):
    if pred.shape != gt.shape:
        raise MotionsynthError(f"{what}: prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ")
    if last is not None and (pred.ndim < 3 or pred.shape[-1] != last):
        raise MotionsynthError(f"{what}: expected (..., T, J, {last}), got {tuple(pred.shape)}")


# ---- pose error --------------------------------------------------------------------------------------------------
@_numpy_or_torch
def mpjpe(pred, gt, joints=None, reduce: bool = True):
    """Mean per-joint position error: the mean Euclidean distance between predicted and true joint positions.

    Args:
        pred, gt: (..., T, J, 3) positions (cm for the project's data).
        joints: optional joint indices to evaluate (default all).
        reduce: True → scalar mean over all leading dims, T and J; False → (..., T) per-frame mean over joints.
    Returns:
        Error in the positions' units (cm).
    """
    _check_same_shape(pred, gt, "mpjpe", 3)
    if joints is not None:
        pred, gt = pred[..., joints, :], gt[..., joints, :]
    err = torch.linalg.vector_norm(pred - gt, dim=-1).mean(-1)
    return err.mean() if reduce else err


def _similarity_align(src, dst):
    """Per-frame least-squares similarity transform (scale, rotation, translation) of ``src`` onto ``dst``.

    src, dst: (..., J, 3). Returns the aligned ``src`` (..., J, 3). Umeyama (1991), as HMR/VIBE/MEVA do it.
    """
    mu_s, mu_d = src.mean(-2, keepdim=True), dst.mean(-2, keepdim=True)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum((-2, -1))
    k = xs.transpose(-1, -2) @ xd  # (..., 3, 3) = Σ xs xdᵀ
    u, s, vh = torch.linalg.svd(k)
    v = vh.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(v @ u.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    z = torch.ones_like(s)
    z = torch.cat([z[..., :2], d[..., None]], -1)
    rot = v @ torch.diag_embed(z) @ u.transpose(-1, -2)  # maps centred src onto centred dst
    scale = (s * z).sum(-1) / var_s.clamp_min(torch.finfo(src.dtype).tiny)
    return scale[..., None, None] * xs @ rot.transpose(-1, -2) + mu_d


@_numpy_or_torch
def pa_mpjpe(pred, gt, joints=None, reduce: bool = True):
    """Procrustes-aligned MPJPE: each predicted frame is first aligned to the true one by the similarity transform
    (scale, rotation, translation) minimising squared error, then `mpjpe` is taken (the HMR/VIBE/MEVA standard).

    Args and return as `mpjpe` (cm); ``joints`` selects the joints used for alignment and error.
    """
    _check_same_shape(pred, gt, "pa_mpjpe", 3)
    if joints is not None:
        pred, gt = pred[..., joints, :], gt[..., joints, :]
    return mpjpe(_similarity_align(pred, gt), gt, reduce=reduce)


def root_relative(positions, root: int):
    """(..., J, 3) positions → the same with joint ``root``'s position subtracted (numpy or torch)."""
    return positions - positions[..., root:root + 1, :]


# ---- smoothness --------------------------------------------------------------------------------------------------
def _second_difference(x):
    """(..., T, J, 3) → (..., T-2, J, 3): x[t+1] - 2 x[t] + x[t-1]."""
    if x.shape[-3] < 3:
        raise MotionsynthError(f"acceleration needs at least 3 frames, got {x.shape[-3]}")
    return x[..., 2:, :, :] - 2 * x[..., 1:-1, :, :] + x[..., :-2, :, :]


@_numpy_or_torch
def accel(positions, fps: float | None = None, reduce: bool = True):
    """Mean joint acceleration magnitude |x[t+1] − 2x[t] + x[t−1]|.

    Args:
        positions: (..., T, J, 3), T ≥ 3.
        fps: None (default) → units/frame² (cm/frame², the VIBE/MEVA convention but in cm); a frame rate →
            units/s² (multiplied by fps²).
        reduce: True → scalar; False → (..., T-2) per-frame mean over joints (frame i is centred on frame i+1).
    """
    a = torch.linalg.vector_norm(_second_difference(positions), dim=-1).mean(-1)
    if fps is not None:
        a = a * float(fps) ** 2
    return a.mean() if reduce else a


@_numpy_or_torch
def accel_error(pred, gt, fps: float | None = None, reduce: bool = True):
    """Acceleration error as VIBE/MEVA define it: mean over joints and frames of |a_pred − a_gt|, the norm of the
    difference of the second-difference acceleration vectors. Units and ``reduce`` as `accel` (cm/frame² by
    default)."""
    _check_same_shape(pred, gt, "accel_error", 3)
    a = torch.linalg.vector_norm(_second_difference(pred) - _second_difference(gt), dim=-1).mean(-1)
    if fps is not None:
        a = a * float(fps) ** 2
    return a.mean() if reduce else a


# ---- LAFAN1 in-betweening metrics (Harvey et al. 2020) ------------------------------------------------------------
@_numpy_or_torch
def canonical_quats(q, dim: int = -3):
    """Make quaternion sequences sign-canonical the way LAFAN1 data are: the first frame has w ≥ 0 and every later
    frame takes the sign that makes its dot product with the previous frame non-negative.

    q: (..., T, J, 4) with time on ``dim`` (default -3). Same shape back.
    """
    q = q.movedim(dim, 0)
    first = torch.where(q[:1, ..., 3:] < 0, -1.0, 1.0).to(q.dtype)
    q = q * first
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(q.dtype), dim=0)
    q = torch.cat([q[:1], q[1:] * flips[..., None]], dim=0)
    return q.movedim(0, dim)


@_numpy_or_torch
def l2q(pred_global_quats, gt_global_quats, canonical: bool = True):
    """LAFAN1 L2Q: the L2 norm of the difference of the global quaternions of all joints (one 4J-vector per frame),
    averaged over frames and sequences.

    Args:
        pred_global_quats, gt_global_quats: (..., T, J, 4) global (world) joint rotations of the evaluated frames
            (LAFAN1 uses the transition frames only).
        canonical: first make each sequence sign-canonical with `canonical_quats` (w ≥ 0 on the first frame, then
            continuous over time), as LAFAN1's data are. Set False if the inputs already are.
    Returns:
        mean_{sequences, t} sqrt(Σ_{j, c} (pred − gt)²), unitless.
    """
    _check_same_shape(pred_global_quats, gt_global_quats, "l2q", 4)
    if canonical:
        pred_global_quats, gt_global_quats = canonical_quats(pred_global_quats), canonical_quats(gt_global_quats)
    return torch.sqrt(((pred_global_quats - gt_global_quats) ** 2).sum((-2, -1))).mean()


@_numpy_or_torch
def l2p_stats(global_positions):
    """Normalisation statistics for `l2p`: per joint and coordinate mean and standard deviation (population, as
    ``np.std``) over every leading dim and frame of the TRAINING split's global positions.

    global_positions: (..., T, J, 3) → (mean (J, 3), std (J, 3)). LAFAN1 computes them on training windows whose root
    x, z is centred on the window mean and whose facing is unified on the last context frame; do the same
    preprocessing to the evaluated windows.
    """
    flat = global_positions.reshape(-1, *global_positions.shape[-2:])
    return flat.mean(0), flat.std(0, unbiased=False)


@_numpy_or_torch
def l2p(pred_global_pos, gt_global_pos, mean, std):
    """LAFAN1 L2P: global positions normalised per joint coordinate, ``(x − mean) / std`` with the training split's
    statistics (`l2p_stats`), then the L2 norm over all joints' coordinates (one 3J-vector per frame), averaged over
    frames and sequences.

    Args:
        pred_global_pos, gt_global_pos: (..., T, J, 3).
        mean, std: (J, 3) or (J*3,) (LAFAN1's flattened order: joint-major, x y z per joint).
    Returns:
        Unitless (positions in standard deviations).
    """
    _check_same_shape(pred_global_pos, gt_global_pos, "l2p", 3)
    shape = pred_global_pos.shape[-2:]
    mean, std = mean.reshape(shape).to(pred_global_pos), std.reshape(shape).to(pred_global_pos)
    diff = (pred_global_pos - mean) / std - (gt_global_pos - mean) / std
    return torch.sqrt((diff ** 2).sum((-2, -1))).mean()


@_numpy_or_torch
def npss(pred, gt, canonical: bool = True):
    """Normalised Power Spectrum Similarity (Gopalakrishnan et al. 2019) as LAFAN1's ``fast_npss`` computes it.

    Note the argument order (prediction first) differs from ``fast_npss(gt, pred)``.

    For every sequence b and feature d (the 4J quaternion components, flattened), with time t = 0..T-1:

        P_bd(f) = Re(FFT_t(x_bd)(f))²                 power (real part of the FFT, squared, as in fast_npss)
        p̂_bd(f) = P_bd(f) / Σ_f P_bd(f)               normalised to sum 1 (0 where the total power is 0)
        EMD_bd  = Σ_f | Σ_{f'≤f} p̂^pred_bd(f') − Σ_{f'≤f} p̂^gt_bd(f') |
        NPSS    = Σ_bd W_bd EMD_bd / Σ_bd W_bd,      W_bd = Σ_f P^gt_bd(f)

    Args:
        pred, gt: (B, T, ...) — sequences first, time second, every further dim flattened into features; LAFAN1
            passes global quaternions (B, T, J, 4). A single sequence is ``x[None]``.
        canonical: first make the quaternions sign-canonical (`canonical_quats` over time); requires (B, T, J, 4).
            Set False for arbitrary features.
    Returns:
        Scalar, unitless (0 for identical spectra).
    """
    _check_same_shape(pred, gt, "npss")
    if pred.ndim < 3:
        raise MotionsynthError(f"npss: expected (B, T, ...) with features after time, got {tuple(pred.shape)}")
    if canonical:
        if pred.ndim != 4 or pred.shape[-1] != 4:
            raise MotionsynthError(f"npss with canonical=True expects (B, T, J, 4) quaternions, "
                                   f"got {tuple(pred.shape)}")
        pred, gt = canonical_quats(pred, dim=1), canonical_quats(gt, dim=1)
    pred, gt = pred.reshape(*pred.shape[:2], -1), gt.reshape(*gt.shape[:2], -1)
    gt_power = torch.fft.fft(gt, dim=1).real ** 2
    pred_power = torch.fft.fft(pred, dim=1).real ** 2
    gt_total, pred_total = gt_power.sum(1, keepdim=True), pred_power.sum(1, keepdim=True)
    gt_norm = torch.where(gt_total > 0, gt_power / torch.where(gt_total > 0, gt_total, 1.0), 0.0)
    pred_norm = torch.where(pred_total > 0, pred_power / torch.where(pred_total > 0, pred_total, 1.0), 0.0)
    emd = (torch.cumsum(pred_norm, 1) - torch.cumsum(gt_norm, 1)).abs().sum(1)
    weights = gt_total[:, 0]
    if not (weights.sum() > 0):
        raise MotionsynthError("npss: the ground truth has zero power in every feature")
    return (emd * weights).sum() / weights.sum()


# ---- physical plausibility ---------------------------------------------------------------------------------------
@_numpy_or_torch
def foot_contact_speed(positions, feet, fps: float | None = None, height: float = 5.0, floor: float | None = None):
    """Per step and foot: the horizontal (x, z) speed |Δ(x, z)| from frame t to t+1 and whether that step is a
    contact: the foot is in contact (`kinematics.foot_contacts`, the height test only — the speed is what is
    measured) at both frames. Arguments as `foot_skating`. Returns (speed, contact), each (..., T-1, F) for the F
    feet (contact as 0/1 of the positions' dtype)."""
    f = positions[..., list(feet), :]
    low = foot_contacts(positions, feet, max_speed=None, max_height=height, floor=floor)
    contact = (low[..., 1:, :] & low[..., :-1, :]).to(f.dtype)
    step = f[..., 1:, :, :] - f[..., :-1, :, :]
    speed = torch.sqrt(step[..., 0] ** 2 + step[..., 2] ** 2)
    if fps is not None:
        speed = speed * float(fps)
    return speed, contact


@_numpy_or_torch
def foot_skating(positions, feet, fps: float | None = None, height: float = 5.0, floor: float | None = None,
                 reduce: bool = True):
    """Foot skating: mean horizontal foot speed over the frames where the foot is in contact with the floor.

    A foot moves from frame t to t+1 with horizontal (x, z) speed |Δ(x, z)|; that step counts as a contact when the
    foot's height above the floor is below ``height`` at both frames (`foot_contact_speed`). The floor is ``floor``
    (a height) or, if None, each sequence's lowest point of the given feet.

    Args:
        positions: (..., T, J, 3) global positions (cm), +Y up.
        feet: indices of the foot joints (the benchmarks: toes and ankles, `kinematics.foot_joints` with
            ``ankles=True``).
        fps: None → cm per frame; a frame rate → cm/s.
        height: contact threshold above the floor (cm; 5 by default).
        reduce: True → scalar mean over all contact steps of every foot and sequence (0 if there is none);
            False → (...) per sequence.
    """
    speed, contact = foot_contact_speed.__wrapped__(positions, feet, fps, height, floor)
    if reduce:
        return (speed * contact).sum() / contact.sum().clamp_min(1)
    return (speed * contact).sum((-2, -1)) / contact.sum((-2, -1)).clamp_min(1)


# ---- generation --------------------------------------------------------------------------------------------------
def _to_numpy_2d(feats, what: str) -> np.ndarray:
    x = feats.detach().cpu().double().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise MotionsynthError(f"{what}: features must be (N, D) with N ≥ 2, got {x.shape}")
    return x


def _like(value: float, *refs):
    """Return ``value`` as a torch scalar if any ref is a tensor, else as numpy.float64."""
    for r in refs:
        if isinstance(r, torch.Tensor):
            return torch.tensor(value, dtype=r.dtype if r.is_floating_point() else torch.float64)
    return np.float64(value)


def fid(feats_a, feats_b, eps: float = 1e-6):
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D):

        |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)

    with unbiased covariances and the real part of ``scipy.linalg.sqrtm``; if the product is singular, ``eps`` · I is
    added to both covariances (as pytorch-fid does). Not differentiable; returns the input kind.
    """
    from scipy import linalg

    a, b = _to_numpy_2d(feats_a, "fid"), _to_numpy_2d(feats_b, "fid")
    if a.shape[1] != b.shape[1]:
        raise MotionsynthError(f"fid: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s_a)) * eps
        covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    covmean = np.real(covmean)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))
    return _like(value, feats_a, feats_b)


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def diversity(feats, n_pairs: int = 200, rng=None):
    """Diversity (Action2Motion / ACTOR): the mean Euclidean distance between ``n_pairs`` random pairs of feature
    vectors, both members drawn uniformly with replacement from all N.

    feats: (N, D); rng: a ``numpy.random.Generator``, a seed or None. Returns the input kind.
    """
    x = _to_numpy_2d(feats, "diversity")
    g = _rng(rng)
    i, j = g.integers(0, len(x), n_pairs), g.integers(0, len(x), n_pairs)
    return _like(float(np.linalg.norm(x[i] - x[j], axis=-1).mean()), feats)


def multimodality(feats, labels, n_pairs: int = 20, rng=None):
    """Multimodality (Action2Motion / ACTOR): for every label, the mean distance between ``n_pairs`` random pairs of
    feature vectors with that label (drawn with replacement), averaged over labels.

    feats: (N, D); labels: (N,) any hashable values; rng: Generator, seed or None. Returns the input kind.
    """
    x = _to_numpy_2d(feats, "multimodality")
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if lab.shape != (len(x),):
        raise MotionsynthError(f"multimodality: {len(x)} features but labels of shape {lab.shape}")
    g = _rng(rng)
    per_label = []
    for value in np.unique(lab):
        members = np.flatnonzero(lab == value)
        i, j = g.choice(members, n_pairs), g.choice(members, n_pairs)
        per_label.append(np.linalg.norm(x[i] - x[j], axis=-1).mean())
    return _like(float(np.mean(per_label)), feats)
