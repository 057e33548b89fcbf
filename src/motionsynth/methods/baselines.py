"""Non-learned baselines for every task, all implementing `tasks.Method`.

=====================  ===================  ==========================================================================
name                   class                task
=====================  ===================  ==========================================================================
``zero-velocity``      `ZeroVelocity`       in-betweening, prediction, completion: hold the last observed value
``slerp``              `Interpolation`      in-betweening, completion: SLERP rotations / LERP root between observations
``constant-velocity``  `ConstantVelocity`   prediction: extrapolate the last observed (angular) velocity
``savgol``             `SavitzkyGolay`      denoising: Savitzky–Golay filter over time
``gaussian``           `Gaussian`           denoising: Gaussian filter over time
``one-euro``           `OneEuro`            denoising: One-Euro filter (Casiez et al. 2012) over time
``smooth``             `Smooth`             denoising: the thesis's constant-velocity smoother (eq. 4.1)
``mean-pose``          `MeanPose`           completion: missing joints take the training mean rotation (needs `fit`)
``nearest-neighbour``  `NearestNeighbour`   completion: missing joints copied from the nearest training pose (`fit`)
=====================  ===================  ==========================================================================

Every method works per joint column of ``mask.joints`` and on ``mask.root`` separately, so it accepts any mask.
Deterministic methods return ``n_samples`` identical copies. Observed parts are kept (`tasks.keep_observed`) unless
``mask.noisy``. A joint (or the root) that is never observed falls back to the identity rotation (root: the rest
offset, or the training mean for fitted methods).

Filters (`SavitzkyGolay`, `Gaussian`, `OneEuro`) smooth root positions component-wise and rotations as
sign-continuous quaternions filtered component-wise then renormalised; `Smooth` is `postprocess.smooth_motion` (root
trajectory and 6D rotations per joint). They expect a complete (noisy) motion; given a
mask with missing parts, they first fill them by `Interpolation`. Each has ``params`` and a class-level ``grid`` of
candidate settings for tuning on a validation split.

Methods that learn from data have ``needs_fit = True`` and a ``fit(motions)`` method. Baselines are not conditioned
on labels: a label is an error (`tasks.check_label`), and so is a mask that observes nothing (they cannot generate).
Each is a `tasks.BaseMethod` (its checks run before any work); ``tasks`` names the tasks it is meant for (what the
commands and the editor offer it for), though it accepts any mask with something observed; ``Options`` its
parameters (`config.Options`), which `make_baseline` checks.
"""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from .. import rotations as R
from ..config import Options, option
from ..errors import MotionsynthError, SkeletonMismatchError
from ..kinematics import heading_angle, heading_quat
from ..motion import Motion
from ..postprocess import NORMS, smooth_motion
from ..skeleton import Skeleton
from ..tasks import BaseMethod, Completion, Mask, keep_observed

__all__ = [
    "ZeroVelocity", "Interpolation", "ConstantVelocity", "SavitzkyGolay", "Gaussian", "OneEuro", "Smooth",
    "MeanPose", "NearestNeighbour", "BASELINES", "make_baseline",
]


# ---- helpers -----------------------------------------------------------------------------------------------------
def _neighbours(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a (T, C) bool array, per frame and column: the last observed frame ≤ t, the observed frame before that,
    and the first observed frame ≥ t; -1 where there is none. All (T, C) int64."""
    T = observed.shape[0]
    t = np.arange(T)[:, None]
    prev = np.maximum.accumulate(np.where(observed, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(observed, t, T)[::-1], axis=0)[::-1]
    nxt = np.where(nxt == T, -1, nxt)
    strictly_before = np.concatenate([np.full((1, observed.shape[1]), -1), prev[:-1]], axis=0)
    cols = np.arange(observed.shape[1])[None, :]
    prev2 = np.where(prev >= 0, strictly_before[np.maximum(prev, 0), cols], -1)
    return prev, prev2, nxt


def _gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x (T, C, ...) and idx (T, C) frame indices ≥ 0 → x[idx[t, c], c]."""
    return x[idx, np.arange(x.shape[1])[None, :]]


def _columns(motion: Motion, mask: Mask):
    """Rotations (T, J, 4) and root (T, 1, 3), with the observation masks (T, J) and (T, 1)."""
    return motion.rotations, mask.joints, motion.root_positions[:, None, :], mask.root[:, None]


def _fallback_root(motion: Motion, default: np.ndarray | None = None) -> np.ndarray:
    return motion.skeleton.offsets[motion.skeleton.root] if default is None else default


def _finish(method, motion: Motion, rotations: np.ndarray, root: np.ndarray, mask: Mask, n_samples: int
            ) -> Completion:
    out = motion.copy()
    out.rotations = R.quat_normalize(np.asarray(rotations, dtype=np.float64))
    out.root_positions = np.asarray(root, dtype=np.float64).copy()
    out = keep_observed(out, motion, mask)
    return Completion([out] + [out.copy() for _ in range(n_samples - 1)], options=dict(method.params))


def _hold(values: np.ndarray, observed: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Zero-velocity fill of (T, C, D) ``values``: last observed value before t, else the first after, else
    ``default`` (D,)."""
    prev, _, nxt = _neighbours(observed)
    src = np.where(prev >= 0, prev, nxt)
    out = _gather(values, np.maximum(src, 0))
    out[src < 0] = default
    return out


def _interpolate(values: np.ndarray, observed: np.ndarray, default: np.ndarray, rotation: bool) -> np.ndarray:
    """Fill (T, C, D) ``values`` between observations: SLERP (``rotation``) or LERP between the nearest observed
    frames before and after; hold at the ends; ``default`` where a column is never observed."""
    prev, _, nxt = _neighbours(observed)
    a = np.where(prev >= 0, prev, nxt)
    b = np.where(nxt >= 0, nxt, prev)
    t = np.arange(observed.shape[0])[:, None]
    span = b - a
    w = np.where(span > 0, (t - a) / np.where(span > 0, span, 1), 0.0)
    va, vb = _gather(values, np.maximum(a, 0)), _gather(values, np.maximum(b, 0))
    out = R.slerp(va, vb, w) if rotation else va + (vb - va) * w[..., None]
    out[a < 0] = default
    return out


def _extrapolate(values: np.ndarray, observed: np.ndarray, default: np.ndarray, rotation: bool) -> np.ndarray:
    """Constant-velocity fill of (T, C, D) ``values``: from the last two observed frames p < l ≤ t, continue at the
    same rate, v(t) = v(p) ⊕ (v(l) ⊖ v(p)) · (t − p) / (l − p) (SLERP with weight > 1 for rotations); hold where
    only one frame is observed before t; hold the first observation before it; ``default`` if never observed."""
    prev, prev2, nxt = _neighbours(observed)
    t = np.arange(observed.shape[0])[:, None]
    has2 = (prev >= 0) & (prev2 >= 0)
    p = np.where(has2, prev2, np.where(prev >= 0, prev, nxt))
    l = np.where(has2, prev, p)
    w = np.where(has2, (t - p) / np.where(has2, l - p, 1), 0.0)
    vp, vl = _gather(values, np.maximum(p, 0)), _gather(values, np.maximum(l, 0))
    out = R.slerp(vp, vl, w) if rotation else vp + (vl - vp) * w[..., None]
    out[p < 0] = default
    return out


_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


class _Baseline(BaseMethod):
    """What the baselines share (`tasks.BaseMethod`): any skeleton, no checkpoint, no labels, any mask with
    something observed (noisy or not); ``grid``: candidate ``params`` for tuning (none by default)."""

    masks = ("part", "noisy")
    grid: list[dict[str, Any]] = []

    def fill_joints(self, motion: Motion, mask: Mask, joints: np.ndarray) -> np.ndarray:
        """(T, len(joints), 4) the local rotations this baseline gives ``joints`` of ``motion`` under ``mask``
        (a model's result on another rig takes the joints the model lacks from here: `methods.rig`)."""
        return self.complete(motion, mask).samples[0].rotations[:, joints]


# ---- in-betweening / prediction ------------------------------------------------------------------------------------
class _ColumnFill(_Baseline, abc.ABC):
    """Shared body of the fills that work column by column (each joint's rotation, the root position) from that
    column's observed frames alone."""

    tasks: tuple[str, ...] = ("inbetween", "complete", "predict")

    def __init__(self):
        self.params: dict[str, Any] = {}

    @abc.abstractmethod
    def _fill(self, values: np.ndarray, observed: np.ndarray, default: np.ndarray, rotation: bool) -> np.ndarray:
        """(T, C, D) ``values`` observed where (T, C) ``observed`` → filled; ``default`` (D,) where never observed;
        ``rotation``: the values are quaternions."""

    def fill_joints(self, motion: Motion, mask: Mask, joints: np.ndarray) -> np.ndarray:
        """Column by column: only ``joints`` are computed."""
        return R.quat_normalize(self._fill(motion.rotations[:, joints], mask.joints[:, joints], _IDENTITY, True))

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed) -> Completion:
        rot, obs, root, robs = _columns(motion, mask)
        return _finish(self, motion, self._fill(rot, obs, _IDENTITY, True),
                       self._fill(root, robs, _fallback_root(motion), False)[:, 0], mask, n_samples)


class ZeroVelocity(_ColumnFill):
    """Every missing value copies the last observed one before it (the first observed one if none is before):
    the zero-velocity baseline of in-betweening (LAFAN1) and prediction (Martinez et al. 2017)."""

    name = "zero-velocity"

    def _fill(self, values, observed, default, rotation):
        return _hold(values, observed, default)


class Interpolation(_ColumnFill):
    """SLERP of each joint's local rotation and LERP of the root position between the nearest observed frames
    before and after; holds the nearest observation at the ends (the LAFAN1 interpolation baseline)."""

    name = "slerp"

    def _fill(self, values, observed, default, rotation):
        return _interpolate(values, observed, default, rotation)


class ConstantVelocity(_ColumnFill):
    """Prediction by constant velocity: the root continues with the velocity between the last two observed frames
    and each joint keeps rotating with the rotation between them (``q_l · (q_p⁻¹ q_l)^k``, shortest arc). With one
    observed frame it holds it; frames before the first observation hold that observation."""

    name = "constant-velocity"
    tasks = ("predict",)

    def _fill(self, values, observed, default, rotation):
        return _extrapolate(values, observed, default, rotation)


# ---- denoising -----------------------------------------------------------------------------------------------------
class _Filter(_Baseline, abc.ABC):
    """Shared body of the denoisers: fill gaps by interpolation, smooth the complete motion, renormalise; ``params``:
    the `Options` they run with."""

    tasks = ("denoise",)
    params: dict[str, Any]

    def __init__(self, **values):
        self.params = self.build_options(values).to_dict()

    @abc.abstractmethod
    def _smooth(self, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
        """A complete motion → its smoothed rotations (T, J, 4) and root positions (T, 3)."""

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed) -> Completion:
        filled = motion
        if not (mask.joints.all() and mask.root.all()):
            filled = Interpolation().complete(motion, mask)[0]
        return _finish(self, motion, *self._smooth(filled), mask, n_samples)


class _SignalFilter(_Filter):
    """A filter of (T, C) signals, applied to the sign-continuous quaternion components and the root position."""

    @abc.abstractmethod
    def _filter(self, x: np.ndarray, fps: float) -> np.ndarray:
        """(T, C) signal sampled at ``fps`` → (T, C) filtered."""

    def _smooth(self, motion):
        T, J = motion.rotations.shape[:2]
        q = R.quat_continuous(motion.rotations, dim=0)
        rot = self._filter(q.reshape(T, J * 4), motion.fps).reshape(T, J, 4)
        return rot, self._filter(motion.root_positions, motion.fps)


class SavitzkyGolay(_SignalFilter):
    """Savitzky–Golay smoothing (``scipy.signal.savgol_filter``, mode "interp") of each channel over time.

    ``window`` (odd, frames) shrinks to the clip length for short clips; clips not longer than ``order`` are
    returned unchanged."""

    @dataclass
    class Options(Options):
        window: int = option(9, "frames of the filter (odd)")
        order: int = option(2, "order of the fitted polynomial (< window)")

        def check(self) -> None:
            w, o = self.window, self.order
            if w < 1 or w % 2 == 0 or o < 0 or o >= w:
                raise MotionsynthError(f"savgol needs an odd window > order ≥ 0, got window={w}, order={o}")

    name = "savgol"
    grid = [{"window": w, "order": o} for w in (5, 9, 15, 21, 31) for o in (2, 3) if w > o]

    def __init__(self, window: int = 9, order: int = 2):
        super().__init__(window=window, order=order)

    def _filter(self, x, fps):
        from scipy.signal import savgol_filter

        window, order = self.params["window"], self.params["order"]
        T = x.shape[0]
        window = min(window, T if T % 2 else T - 1)
        if window <= order:
            return x.copy()
        return savgol_filter(x, window, order, axis=0, mode="interp")


class Gaussian(_SignalFilter):
    """Gaussian smoothing (``scipy.ndimage.gaussian_filter1d``, mode "nearest") with ``sigma`` in frames."""

    @dataclass
    class Options(Options):
        sigma: float = option(2.0, "standard deviation in frames")

        def check(self) -> None:
            if not self.sigma > 0:
                raise MotionsynthError(f"gaussian needs sigma > 0 (frames), got {self.sigma}")
            self.sigma = float(self.sigma)

    name = "gaussian"
    grid = [{"sigma": s} for s in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)]

    def __init__(self, sigma: float = 2.0):
        super().__init__(sigma=sigma)

    def _filter(self, x, fps):
        from scipy.ndimage import gaussian_filter1d

        return gaussian_filter1d(x, self.params["sigma"], axis=0, mode="nearest")


class OneEuro(_SignalFilter):
    """One-Euro filter (Casiez et al. 2012), causal, on every channel independently.

    Per channel, with sampling period ``te = 1 / fps`` and ``α(c) = 1 / (1 + 1 / (2π c te))``:
    ``dx̂_t = dx̂_{t-1} + α(d_cutoff) ((x_t − x̂_{t-1}) / te − dx̂_{t-1})``, cutoff ``c_t = min_cutoff + beta |dx̂_t|``,
    ``x̂_t = x̂_{t-1} + α(c_t) (x_t − x̂_{t-1})``. Cutoffs in Hz; ``beta`` in s/unit, so it acts on quaternion
    components (unitless) and root positions (cm) at different scales.
    """

    name = "one-euro"
    grid = [{"min_cutoff": c, "beta": b, "d_cutoff": 1.0} for c in (0.5, 1.0, 2.0, 4.0)
            for b in (0.0, 0.001, 0.01, 0.1, 1.0)]

    @dataclass
    class Options(Options):
        min_cutoff: float = option(1.0, "cutoff at rest, Hz")
        beta: float = option(0.01, "speed coefficient, s/unit")
        d_cutoff: float = option(1.0, "cutoff of the derivative, Hz")

        def check(self) -> None:
            if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
                raise MotionsynthError(f"one-euro needs min_cutoff > 0, d_cutoff > 0, beta ≥ 0; got "
                                       f"{self.min_cutoff}, {self.d_cutoff}, {self.beta}")
            self.min_cutoff, self.beta, self.d_cutoff = float(self.min_cutoff), float(self.beta), float(self.d_cutoff)

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.01, d_cutoff: float = 1.0):
        super().__init__(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)

    def _filter(self, x, fps):
        te = 1.0 / fps

        def alpha(cutoff):
            return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * te))

        out = np.empty_like(x)
        out[0] = x_hat = x[0]
        dx_hat = np.zeros_like(x[0])
        a_d = alpha(self.params["d_cutoff"])
        for t in range(1, len(x)):
            dx_hat = dx_hat + a_d * ((x[t] - x_hat) / te - dx_hat)
            a = alpha(self.params["min_cutoff"] + self.params["beta"] * np.abs(dx_hat))
            x_hat = x_hat + a * (x[t] - x_hat)
            out[t] = x_hat
        return out


class Smooth(_Filter):
    """The thesis's trajectory smoother (eq. 4.1, `postprocess.smooth_motion`): each curve — the root trajectory and
    every joint's local rotation as 6D — pulled towards constant velocity, with ``weight`` × the distance to the
    input as the regulariser (animated joint translations are left as they are, like the other filters).

    ``norm="l2"``: the document's unsquared norms, solved by ≤ ``iters`` IRLS steps; ``weight`` is unit-free, ≥ 4
    returns the input, → 0 a straight line; the result keeps the input except where a kink in velocity is cheaper.
    ``norm="squared"``: a Whittaker–Henderson smoother (one linear solve; ``iters`` unused) with frequency response
    ``1 / (1 + (2 sin(ω/2))⁴ / weight)``, so its weight has another scale: the response halves where
    ``2 sin(ω/2) = weight^¼``, as a Gaussian (`Gaussian`) of σ ≈ 0.5, 1.1, 3.7, 6.5 frames does for weight 10, 1,
    0.01, 0.001."""

    name = "smooth"
    grid = ([{"weight": w, "norm": "l2"} for w in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0)]
            + [{"weight": w, "norm": "squared"} for w in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)])

    @dataclass
    class Options(Options):
        weight: float = option(0.3, "the weight of the distance to the input (l2: unit-free, >= 4 returns the input)")
        norm: str = option("l2", "l2 (the document's unsquared norms, IRLS) or squared (Whittaker-Henderson)")
        iters: int = option(50, "IRLS steps of norm=l2")

        def check(self) -> None:
            if self.norm not in NORMS:
                raise MotionsynthError(f"smooth needs norm in {', '.join(NORMS)}, got {self.norm!r}")
            if not (np.isfinite(self.weight) and self.weight > 0) or self.iters < 1:
                raise MotionsynthError(f"smooth needs a finite weight > 0 and iters ≥ 1, got weight={self.weight}, "
                                       f"iters={self.iters}")
            self.weight = float(self.weight)

    def __init__(self, weight: float = 0.3, norm: str = "l2", iters: int = 50):
        super().__init__(weight=weight, norm=norm, iters=iters)

    def _smooth(self, motion):
        out = smooth_motion(replace(motion, translations=None), self.params["weight"], self.params["iters"],
                            self.params["norm"])
        return out.rotations, out.root_positions


# ---- completion of body parts ----------------------------------------------------------------------------------------
def _quat_average(outer: np.ndarray) -> np.ndarray:
    """(..., 4, 4) accumulated Σ q qᵀ → (..., 4) the principal eigenvector (sign w ≥ 0): the rotation average of
    Markley et al. (2007), insensitive to the sign of each q."""
    _, vecs = np.linalg.eigh(outer)
    q = vecs[..., :, -1]
    return np.where(q[..., 3:] < 0, -q, q)


class _Fitted(_Baseline):
    """A baseline that learns from training motions (`fit`) before use; meant for completion."""

    needs_fit = True
    tasks = ("complete",)
    root_mean: np.ndarray | None

    def check_skeleton(self, skeleton, what: str = "motion") -> None:
        if self.skeleton is None:
            raise MotionsynthError(f"baseline {self.name!r} must be fit on training motions before use")
        if len(skeleton) != len(self.skeleton):
            raise SkeletonMismatchError(f"{self.name}: fit on {len(self.skeleton)} joints, motion has "
                                        f"{len(skeleton)}")
        self.skeleton.check_compatible(skeleton, what=what)

    def _fill_root(self, motion: Motion, mask: Mask) -> np.ndarray:
        assert self.root_mean is not None  # check_call: fit first
        return _interpolate(motion.root_positions[:, None], mask.root[:, None], self.root_mean, False)[:, 0]


class MeanPose(_Fitted):
    """Missing joint rotations take the training set's mean local rotation of that joint (the principal eigenvector
    of Σ q qᵀ); missing root positions are interpolated from observed ones (the training mean if none)."""

    name = "mean-pose"

    def __init__(self):
        self.params: dict[str, Any] = {}
        self.mean_rotations: np.ndarray | None = None
        self.root_mean: np.ndarray | None = None

    def fit(self, motions: Iterable[Motion]) -> MeanPose:
        outer, root_sum, n = None, np.zeros(3), 0
        for m in motions:
            if outer is None:
                self.skeleton, outer = m.skeleton, np.zeros((len(m.skeleton), 4, 4))
            elif len(m.skeleton) != len(cast(Skeleton, self.skeleton)):  # set with outer
                raise SkeletonMismatchError(f"mean-pose: training motions with {len(cast(Skeleton, self.skeleton))} "
                                            f"and {len(m.skeleton)} joints")
            outer += np.einsum("tji,tjk->jik", m.rotations, m.rotations)
            root_sum += m.root_positions.sum(0)
            n += m.num_frames
        if outer is None or n == 0:
            raise MotionsynthError("mean-pose: no training frames to fit on")
        self.mean_rotations = _quat_average(outer)
        self.root_mean = root_sum / n
        return self

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed) -> Completion:
        assert self.mean_rotations is not None  # check_call: fit first
        rot = np.where(mask.joints[..., None], motion.rotations, self.mean_rotations[None])
        return _finish(self, motion, rot, self._fill_root(motion, mask), mask, n_samples)


class NearestNeighbour(_Fitted):
    """Missing joints are copied from the training pose whose OBSERVED joints are nearest.

    Features are the 6D local rotations (Zhou et al. 2019) of the observed joints, with the moving root's heading
    (twist about +Y) removed so matching ignores where the character faces; the distance is Euclidean. The observed
    joint set differs per call (and per frame), so the feature matrix of each set is built on first use and cached
    (the ``cache_size`` most recent sets). Search is brute force in chunks: ``||a||² + ||b||² − 2ab`` in float32 picks
    ``refine`` candidates, re-ranked by their direct distance (so an exact match is always found).

    A missing moving-root rotation gets the neighbour's heading-free rotation turned to the heading interpolated from
    the root rotations observed elsewhere in the clip (the neighbour's own rotation if the root is never observed).
    Frames with no observed joint keep the `Interpolation` fill; missing root positions are interpolated (training
    mean if never observed). The database is stored in float32 (copied rotations are
    exact to ~1e-7).
    """

    name = "nearest-neighbour"

    def __init__(self, cache_size: int = 4, chunk: int = 256, refine: int = 8):
        self.params: dict[str, Any] = {}
        self.cache_size, self.chunk, self.refine = cache_size, chunk, refine
        self.rotations: np.ndarray | None = None  # (N, J, 4) float32 local rotations as in the data
        self.features: np.ndarray | None = None  # (N, J, 6) float32, root heading removed
        self.root_mean: np.ndarray | None = None
        self._cache: OrderedDict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def fit(self, motions: Iterable[Motion], max_frames: int = 200_000, rng=None) -> NearestNeighbour:
        """Build the pose database from ``motions``; if they hold more than ``max_frames`` frames, keep a uniform
        random subset of that many (priority sampling, so memory stays bounded while streaming)."""
        g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        rots: list[np.ndarray] = []
        keys: list[np.ndarray] = []
        held = 0
        root_sum, n = np.zeros(3), 0

        def prune():
            r, k = np.concatenate(rots), np.concatenate(keys)
            if len(k) > max_frames:
                keep = np.sort(np.argpartition(k, max_frames)[:max_frames])
                r, k = r[keep], k[keep]
            return [r], [k], len(k)

        for m in motions:
            if self.skeleton is None:
                self.skeleton = m.skeleton
            elif len(m.skeleton) != len(self.skeleton):
                raise SkeletonMismatchError(f"nearest-neighbour: training motions with {len(self.skeleton)} and "
                                            f"{len(m.skeleton)} joints")
            rots.append(m.rotations.astype(np.float32))
            keys.append(g.random(m.num_frames))
            held += m.num_frames
            if held > 2 * max_frames:  # amortised: prune only when twice over budget
                rots, keys, held = prune()
            root_sum += m.root_positions.sum(0)
            n += m.num_frames
        if n == 0:
            raise MotionsynthError("nearest-neighbour: no training frames to fit on")
        database: np.ndarray = prune()[0][0]
        self.rotations = database
        self.features = self._features(database.astype(np.float64)).astype(np.float32)
        self.root_mean = root_sum / n
        self._cache.clear()
        return self

    def _features(self, rotations: np.ndarray) -> np.ndarray:
        """(N, J, 4) local rotations → (N, J, 6) with the moving root's heading removed."""
        assert self.skeleton is not None  # fit sets it first
        q = rotations.copy()
        r = self.skeleton.root
        q[:, r] = R.quat_mul(heading_quat(-heading_angle(q[:, r])), q[:, r])
        return R.quat_to_6d(q)

    def _index(self, joints: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if joints in self._cache:
            self._cache.move_to_end(joints)
            return self._cache[joints]
        assert self.features is not None  # check_call: fit first
        feats = np.ascontiguousarray(self.features[:, list(joints)].reshape(len(self.features), -1))
        entry = (feats, (feats.astype(np.float64) ** 2).sum(1))
        self._cache[joints] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _nearest(self, joints: tuple[int, ...], query: np.ndarray) -> np.ndarray:
        """(Q, len(joints)*6) float32 → (Q,) database indices."""
        feats, norms = self._index(joints)
        k = min(self.refine, len(feats))
        out = np.empty(len(query), np.int64)
        for s in range(0, len(query), self.chunk):
            q = query[s:s + self.chunk]
            d = norms[None] - 2.0 * (q @ feats.T)
            cand = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(feats) else np.tile(np.arange(len(feats)),
                                                                                           (len(q), 1))
            exact = ((feats[cand].astype(np.float64) - q[:, None].astype(np.float64)) ** 2).sum(-1)
            out[s:s + self.chunk] = cand[np.arange(len(q)), exact.argmin(1)]
        return out

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed) -> Completion:
        assert self.skeleton is not None and self.rotations is not None  # check_call: fit first
        r = self.skeleton.root
        fill = Interpolation().complete(motion, mask)[0]
        rot = fill.rotations.copy()
        query = self._features(np.where(mask.joints[..., None], motion.rotations, _IDENTITY)).astype(np.float32)
        patterns, which = np.unique(mask.joints, axis=0, return_inverse=True)
        which = np.asarray(which).reshape(-1)
        for k, pattern in enumerate(patterns):
            if pattern.all() or not pattern.any():
                continue
            frames = np.flatnonzero(which == k)
            joints = tuple(np.flatnonzero(pattern).tolist())
            idx = self._nearest(joints, query[frames][:, list(joints)].reshape(len(frames), -1))
            missing = np.flatnonzero(~pattern)
            src = self.rotations[idx].astype(np.float64)
            if not pattern[r] and mask.joints[:, r].any():
                free = R.quat_mul(heading_quat(-heading_angle(src[:, r])), src[:, r])
                src[:, r] = R.quat_mul(heading_quat(heading_angle(fill.rotations[frames, r])), free)
            rot[np.ix_(frames, missing)] = src[:, missing]
        return _finish(self, motion, rot, self._fill_root(motion, mask), mask, n_samples)


# ---- registry ------------------------------------------------------------------------------------------------------
BASELINES: dict[str, type[_Baseline]] = {
    cls.name: cls for cls in (ZeroVelocity, Interpolation, ConstantVelocity, SavitzkyGolay, Gaussian, OneEuro,
                              Smooth, MeanPose, NearestNeighbour)
}


def make_baseline(name: str, **params):
    """A baseline by registry name with its parameters (its `Options`, checked first); `MotionsynthError` naming the
    known ones otherwise."""
    if name not in BASELINES:
        raise MotionsynthError(f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}")
    cls = BASELINES[name]
    cls.Options.build(params, f"the {name} method")
    return cls(**params)
