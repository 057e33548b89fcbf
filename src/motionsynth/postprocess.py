"""Post-processing of any motion, after the thesis draft (seed 004) §4.2–4.3: trajectory smoothing and floor alignment.

- `smooth_motion`: the constant-velocity objective of eq. 4.1 with its regularisation towards the input, on the root
  trajectory, every joint's local rotation (6D, continuous) and any animated joint translations.
- `align_floor`: a seeded RANSAC plane through the foot-contact points (`contact_points`, `fit_floor`), then the
  Rodrigues rotation (`rodrigues`, eq. 4.3–4.4) taking its normal onto `kinematics.UP` and the plane to height 0,
  applied to the root's position and orientation (`transform_motion`, eq. 4.5–4.6).

Pure functions of numpy arrays and `Motion`s (a new `Motion` out; the input is never changed). Lengths are in the
file's unit (cm for the project's data): the defaults (10 cm inlier threshold, 15 cm/s contact speed) assume cm.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import rotations as R
from .errors import MotionsynthError
from .kinematics import UP, fk, foot_contacts, foot_joints
from .motion import Motion

__all__ = ["NORMS", "NO_SMOOTHING_WEIGHT", "smooth_curve", "smooth_curves", "smooth_motion", "smooth_motions",
           "contact_points", "fit_floor", "rodrigues", "transform_motion", "floor_transform", "align_floor"]

NORMS = ("l2", "squared")
NO_SMOOTHING_WEIGHT = 4.0
"""With the document's (unsquared) norms, a weight at or above this returns the input exactly: a frame appears in
three accelerations with coefficients 1, -2, 1, so their subgradient at the input is at most 4 long."""


# ---- §4.2 smoothing ---------------------------------------------------------------------------------------------
_EPS = 1e-7
"""IRLS floor of a residual, relative to its curve's scale: the weights 1/‖r‖ stay within a ratio the banded
Cholesky solve resolves (a floor far below the curve's rounding — the old 1e-9 of a mean step — made the systems of
clean, slowly varying curves numerically indefinite). Changes the minimiser by about this fraction of the scale."""
_TOL = 1e-6
"""IRLS stops for a curve when no value moves more than this fraction of the curve's range in one step."""
_STATIC = 1e-6
"""A curve whose range is below this fraction of its largest magnitude is left as it is (static to rounding)."""


def _solve(w: np.ndarray, u: np.ndarray, weight: float, target: np.ndarray) -> np.ndarray:
    """K independent problems ``argmin_x Σ_t w_t ‖x_t − 2x_{t−1} + x_{t−2}‖² + weight Σ_t u_t ‖x_t − target_t‖²``
    in one banded SPD solve (the K curves laid end to end, nothing coupling them): linear in K·T.
    w (K, T−2), u (K, T), target (K, T, C) → (K, T, C)."""
    from scipy.linalg import solveh_banded

    K, T, C = target.shape
    ab: np.ndarray = np.zeros((3, K, T))  # upper banded form: [2] diagonal, [1, :, 1:] first, [0, :, 2:] second super-diagonal
    ab[2, :, :-2] += w
    ab[2, :, 1:-1] += 4 * w
    ab[2, :, 2:] += w
    ab[1, :, 1:-1] -= 2 * w
    ab[1, :, 2:] -= 2 * w
    ab[0, :, 2:] = w
    ab[2] += weight * u
    ab, rhs = ab.reshape(3, K * T), ((weight * u)[..., None] * target).reshape(K * T, C)
    try:
        x = solveh_banded(ab, rhs, check_finite=False)
    except np.linalg.LinAlgError:  # numerically indefinite after all: LU with pivoting on the full band
        from scipy.linalg import solve_banded

        full = np.concatenate([ab, np.zeros((2, K * T))])  # rows: 2 super-diagonals, diagonal, 2 sub-diagonals
        full[3, :-1], full[4, :-2] = ab[1, 1:], ab[0, 2:]  # symmetric: the sub-diagonals mirror the super ones
        x = solve_banded((2, 2), full, rhs, check_finite=False)
    return x.reshape(K, T, C)


def _solve_unweighted(weight: float, target: np.ndarray) -> np.ndarray:
    """`_solve` with every ``w`` and ``u`` one: the same matrix for all K curves, so one factorisation serves them
    all (the squared norm's whole solution, and the reweighting's start). target (K, T, C) → (K, T, C)."""
    from scipy.linalg import solveh_banded

    K, T, C = target.shape
    ab = np.zeros((3, T))
    ab[2, :-2] += 1
    ab[2, 1:-1] += 4
    ab[2, 2:] += 1
    ab[2] += weight
    ab[1, 1:-1] -= 2
    ab[1, 2:] -= 2
    ab[0, 2:] = 1
    rhs = weight * np.moveaxis(target, 1, 0).reshape(T, K * C)
    return np.moveaxis(solveh_banded(ab, rhs, check_finite=False).reshape(T, K, C), 0, 1)


def _norms(x: np.ndarray) -> np.ndarray:
    """(..., C) → (...): Euclidean norms of the last axis (faster than `np.linalg.norm` for small C)."""
    return np.sqrt(np.einsum("...c,...c->...", x, x))


def smooth_curves(x: np.ndarray, weight: float = 0.3, iters: int = 50, norm: str = "l2") -> np.ndarray:
    """(K, T, C) curves → (K, T, C): `smooth_curve` on each of the K curves, solved together (one banded solve per
    reweighting step for all curves still changing): the fast path for every joint of a motion."""
    if norm not in NORMS:
        raise MotionsynthError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
    if not (np.isfinite(weight) and weight > 0):
        raise MotionsynthError(f"the smoothing weight must be finite and positive, got {weight:g}")
    if iters < 1:
        raise MotionsynthError(f"the number of iterations must be at least 1, got {iters}")
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    K, T = x.shape[:2]
    if T < 3 or K == 0 or (norm == "l2" and weight >= NO_SMOOTHING_WEIGHT):
        return out
    scale = np.ptp(x, axis=1).max(axis=-1)  # (K,)
    # a constant curve is its own minimiser; so, to within the file's rounding, is one that moves less than a
    # millionth of its magnitude (BVH writers round to about 6 digits)
    moving = np.flatnonzero(scale > _STATIC * np.abs(x).max(axis=(1, 2)))
    if not len(moving):
        return out
    x, scale = x[moving], scale[moving, None]
    y = _solve_unweighted(weight, x)
    active = np.arange(len(x))  # curves still changing
    for _ in range(iters - 1 if norm == "l2" else 0):
        ya, xa, eps = y[active], x[active], _EPS * scale[active]
        acc = _norms(ya[:, 2:] - 2 * ya[:, 1:-1] + ya[:, :-2])
        dev = _norms(ya - xa)
        new = _solve(1 / np.maximum(acc, eps), 1 / np.maximum(dev, eps), weight, xa)
        change = np.abs(new - ya).max(axis=(1, 2))
        y[active] = new
        active = active[change > _TOL * scale[active, 0]]
        if not len(active):
            break
    out[moving] = y
    return out


def smooth_curve(x: np.ndarray, weight: float = 0.3, iters: int = 50, norm: str = "l2") -> np.ndarray:
    """(T, C) curve → (T, C): the minimiser of eq. 4.1, ``Σ_t ‖τ̂_t − τ_t‖ + weight Σ_t ‖τ_t − τ̄_t‖`` with the
    constant-velocity prediction ``τ̂_t = τ_{t−1} + v_{t−1} = 2τ_{t−1} − τ_{t−2}`` (so the first term sums the
    accelerations) and ``τ̄`` = ``x``, the input. Each row is one point ``τ_t`` (a position, a 6D rotation).

    ``norm="l2"`` (default) keeps the document's Euclidean norms: convex but not quadratic, solved by iteratively
    reweighted least squares from the squared solution (each further step of ≤ ``iters`` minimises a quadratic
    majoriser exactly, a banded linear solve, so the objective never increases; residuals are floored at 1e-7 of
    the curve's range, which keeps every solve well conditioned). The weight is unit-free: ``weight ≥ 4`` returns
    the input exactly (`NO_SMOOTHING_WEIGHT`), ``weight → 0`` a straight line at constant velocity; between, the
    result follows the input except where a kink in the velocity is cheaper (spikes and jitter are cut, the rest is
    kept). ``norm="squared"`` squares both norms: the objective is then quadratic and its minimiser one exact linear
    solve (a Whittaker–Henderson smoother, no optimiser needed; ``iters`` unused); ``weight → ∞`` returns the input.
    Curves shorter than 3 frames have no acceleration and come back unchanged. Time and memory are linear in T.
    """
    x = np.asarray(x, dtype=np.float64)
    return smooth_curves(x[None], weight, iters, norm)[0]


def smooth_motion(motion: Motion, weight: float = 0.3, iters: int = 50, norm: str = "l2") -> Motion:
    """The motion smoothed by `smooth_curve`, one curve per part (each its own term of eq. 4.1, so the weight means
    the same for every part whatever its unit):

    - the root trajectory ``root_positions`` (T, 3), in the file's unit;
    - every joint's local rotation as 6D (T, 6) — continuous, no sign ambiguity — mapped back to unit quaternions
      by Gram–Schmidt (a proper rotation whatever the smoothed 6D), signs kept continuous with the input's;
    - animated joint ``translations`` (T, 3) per joint, when the file has them.

    Same skeleton, length, fps, name and labels; parts that do not move are left as they are. All rotation curves
    are solved together, then all position curves (`smooth_curves`).
    """
    return smooth_motions([motion], weight, iters, norm)[0]


def smooth_motions(motions: list[Motion], weight: float = 0.3, iters: int = 50, norm: str = "l2") -> list[Motion]:
    """`smooth_motion` of each motion, all their curves solved together (one banded solve per reweighting step for
    every curve of every motion: a batch of short windows costs little more than one)."""
    if not motions:
        return []
    rot6 = [np.moveaxis(R.quat_to_6d(m.rotations), 1, 0) for m in motions]  # (J, T, 6) each
    curves = [[m.root_positions[None]] + ([] if m.translations is None else [np.moveaxis(m.translations, 1, 0)])
              for m in motions]
    rot_out = _smooth_groups(rot6, weight, iters, norm)
    pos_out = _smooth_groups([np.concatenate(c) for c in curves], weight, iters, norm)
    out = []
    for m, r6, positions in zip(motions, rot_out, pos_out):
        quats = R.sixd_to_quat(np.moveaxis(r6, 0, 1))
        quats = np.where((quats * m.rotations).sum(-1, keepdims=True) < 0, -quats, quats)
        translations = None if m.translations is None else np.moveaxis(positions[1:], 0, 1)
        out.append(replace(m, rotations=quats, translations=translations, labels=dict(m.labels),
                           root_positions=positions[0]))
    return out


def _smooth_groups(groups: list[np.ndarray], weight: float, iters: int, norm: str) -> list[np.ndarray]:
    """(K_i, T_i, C) curve groups → the same, smoothed by one `smooth_curves` call per distinct length T."""
    out: list[np.ndarray] = [np.empty(0)] * len(groups)
    for T in sorted({g.shape[1] for g in groups}):
        idx = [i for i, g in enumerate(groups) if g.shape[1] == T]
        solved = smooth_curves(np.concatenate([groups[i] for i in idx]), weight, iters, norm)
        bounds = np.cumsum([0] + [len(groups[i]) for i in idx])
        for i, a, b in zip(idx, bounds[:-1], bounds[1:]):
            out[i] = solved[a:b]
    return out


# ---- §4.3 floor alignment ---------------------------------------------------------------------------------------
def contact_points(motion: Motion, max_speed: float = 15.0, feet: list[int] | None = None) -> np.ndarray:
    """(N, 3) world positions of the feet (`kinematics.foot_joints`, the toes, unless given) in the frames where
    they are in contact (`kinematics.foot_contacts`) by speed alone: below ``max_speed`` (file units per second;
    15 cm/s by default). "Low" is left to the plane fit: a height threshold needs the up axis the motion may not
    have yet."""
    feet = foot_joints(motion.skeleton) if feet is None else list(feet)
    pos = motion.global_positions()
    slow = foot_contacts(pos, feet, motion.fps, max_speed=max_speed)  # (T, F)
    return pos[:, feet][slow]


def _plane(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares plane through (N, 3) points: unit normal, offset (n·p = offset) and the points' RMS spread
    along their second principal direction (≈ 0 when they lie on a line)."""
    centre = points.mean(0)
    _, s, vt = np.linalg.svd(points - centre, full_matrices=False)
    return vt[2], float(vt[2] @ centre), float(s[1] / np.sqrt(len(points)))


def fit_floor(points: np.ndarray, threshold: float = 10.0, iters: int = 1000,
              rng: np.random.Generator | int | None = 0) -> tuple[np.ndarray, float, np.ndarray]:
    """RANSAC plane through (N, 3) points: the plane through 3 random points with most inliers (distance ≤
    ``threshold``, in the points' unit) over ``iters`` draws, refitted by least squares to its inliers.

    Returns ``(normal (3,), offset, inliers (N,) bool)`` with ``normal · p = offset`` on the plane, the normal unit
    and pointing up (``normal · UP ≥ 0``; `floor_transform` re-orients it towards the body). Deterministic for a
    given seed or generator. Fewer than 3 points, or inliers on (nearly) a line: `MotionsynthError`.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not (np.isfinite(threshold) and threshold > 0):
        raise MotionsynthError(f"the inlier threshold must be finite and positive, got {threshold:g}")
    if iters < 1:
        raise MotionsynthError(f"RANSAC needs at least 1 iteration, got {iters}")
    if len(points) < 3:
        raise MotionsynthError(f"too few foot-contact points for a floor plane: {len(points)} (RANSAC needs 3)")
    rng = np.random.default_rng(rng)
    best, best_count = None, -1
    for start in range(0, iters, 256):  # hypotheses in chunks: (chunk, N) distances at a time
        idx = np.stack([rng.choice(len(points), 3, replace=False) for _ in range(min(256, iters - start))])
        a, b, c = (points[idx[:, k]] for k in range(3))
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n, axis=1)
        ok = norm > 1e-12 * (np.linalg.norm(b - a, axis=1) * np.linalg.norm(c - a, axis=1) + 1e-300)
        if not ok.any():
            continue
        n = n[ok] / norm[ok, None]
        counts = (np.abs(points @ n.T - (n * a[ok]).sum(1)) <= threshold).sum(0)
        k = int(np.argmax(counts))
        if counts[k] > best_count:
            best, best_count = (n[k], float(n[k] @ a[ok][k])), int(counts[k])
    if best is None:
        raise MotionsynthError(f"the {len(points)} foot-contact points lie on a line: the floor plane is undetermined")
    inliers = np.abs(points @ best[0] - best[1]) <= threshold
    for _ in range(3):  # least-squares refit to the inliers (and the inliers of the refit)
        normal, offset, spread = _plane(points[inliers])
        if spread < threshold / 10:
            raise MotionsynthError(f"the {int(inliers.sum())} foot-contact points on the floor lie (nearly) on a "
                                   "line: the floor plane is undetermined (does the motion move?)")
        inliers = np.abs(points @ normal - offset) <= threshold
    sign = -1.0 if normal @ UP < 0 else 1.0
    return sign * normal, sign * offset, inliers


def rodrigues(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking the direction of ``a`` (3,) onto that of ``b`` (3,) about their common perpendicular
    (eq. 4.3–4.4): ``R = I + K + K² (1 − c) / s²`` with ``K`` the cross-product matrix of ``v = â × b̂``, ``c = â·b̂``,
    ``s = ‖v‖``. Parallel: the identity; opposite: a half turn about an axis perpendicular to ``a``."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    s = float(np.linalg.norm(v))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        axis = np.cross(a, np.eye(3)[np.argmin(np.abs(a))])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    K = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + K + K @ K * ((1 - c) / s ** 2)


def transform_motion(motion: Motion, rotation: np.ndarray, origin: np.ndarray) -> Motion:
    """The whole motion moved rigidly in the world: every point ``p`` goes to ``rotation @ (p − origin)``
    (eq. 4.5), by changing only the moving root's position and orientation — its world orientation ``O`` becomes
    ``rotation @ O`` (eq. 4.6 in this project's convention, where ``O`` maps the root's frame to the world). Joints
    above the root (static in every supported dataset) stay; the root's local values are re-expressed under them.
    rotation (3, 3) proper, origin (3,) in the file's unit."""
    sk, root = motion.skeleton, motion.skeleton.root
    g_rot, g_pos = fk(motion.rotations, motion.local_translations(), sk.parents)
    q = R.matrix_to_quat(np.asarray(rotation, dtype=np.float64))
    new_rot = R.quat_mul(q, g_rot[:, root])
    new_pos = R.quat_apply(q, g_pos[:, root] - origin)
    parent = sk.parents[root]
    rotations = motion.rotations.copy()
    if parent < 0:
        rotations[:, root], root_positions = new_rot, new_pos
    else:
        inv = R.quat_inv(g_rot[:, parent])
        rotations[:, root] = R.quat_mul(inv, new_rot)
        root_positions = R.quat_apply(inv, new_pos - g_pos[:, parent])
    rotations[:, root] = R.quat_normalize(rotations[:, root])
    translations = None if motion.translations is None else motion.translations.copy()
    if translations is not None:
        translations[:, root] = root_positions
    return replace(motion, rotations=rotations, root_positions=root_positions, translations=translations,
                   labels=dict(motion.labels))


def floor_transform(motion: Motion, threshold: float = 10.0, iters: int = 1000, seed: int = 0,
                    max_speed: float = 15.0, feet: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The floor of a motion and the rigid move that puts it on the ground plane: ``(rotation (3, 3), origin (3,),
    info)`` for `transform_motion`. The plane is `fit_floor` on `contact_points`, its normal turned towards the
    body (the side the root is on); ``rotation`` = `rodrigues` (normal → `UP`), ``origin`` = the plane's point
    nearest the world origin (eq. 4.5 takes its intercept with the up axis; the two differ by a horizontal shift
    only, and the nearest point exists for any tilt). ``info``: normal, offset, tilt (degrees), points, inliers."""
    points = contact_points(motion, max_speed, feet)
    normal, offset, inliers = fit_floor(points, threshold, iters, seed)
    if (motion.global_positions()[:, motion.skeleton.root] @ normal - offset).mean() < 0:
        normal, offset = -normal, -offset
    tilt = float(np.degrees(np.arccos(np.clip(normal @ UP, -1, 1))))
    info = dict(normal=normal, offset=offset, tilt=tilt, points=len(points), inliers=int(inliers.sum()))
    return rodrigues(normal, UP), normal * offset, info


def align_floor(motion: Motion, threshold: float = 10.0, iters: int = 1000, seed: int = 0, max_speed: float = 15.0,
                feet: list[int] | None = None) -> tuple[Motion, dict]:
    """The motion with its floor (the plane of its foot contacts, `floor_transform`) turned level and moved to
    height 0: contact points end up on ``y ≈ 0`` and the up direction of the capture on `UP`. Same skeleton,
    length and fps; only the root's position and orientation change. Returns ``(motion, info)``, ``info`` as
    `floor_transform`'s (`motionsynth align-floor` reports it)."""
    rotation, origin, info = floor_transform(motion, threshold, iters, seed, max_speed, feet)
    return transform_motion(motion, rotation, origin), info
