"""`motionsynth inbetween / complete / denoise / predict`: complete a motion file with a learned model.

Every command reads a motion (``.bvh`` or ``.npz``, any length), builds the task's `tasks.Mask`, asks the model's
`tasks.Method` to complete it and writes the result by OUT's extension (``.bvh`` or ``.npz``, atomically). Options
shared by all:

- ``--model CKPT``: the checkpoint folder; its skeleton must match the input's (else a clear error).
  ``inbetween``, ``complete`` and ``predict`` need an HM-VAE-family model (`models.prior.PriorMethod`: latent
  optimisation); ``denoise`` takes one too (``--method window|overlap``) or a MEVA model (``--method meva``).
- ``--samples K`` (inbetween, complete, predict): K > 1 writes ``OUT_000.bvh``, ``OUT_001.bvh``, … (best first).
- ``--preview OUT.gif`` (or ``.mp4`` / ``.png``): a stick-figure rendering, observed parts grey, synthesised parts
  coloured (all samples side by side).
- ``--mask-out MASK.npz``: the task's mask, for ``motionsynth render --observed``.

Lengths: in-betweening, completion and prediction accept any length (a clip shorter than the model's window is padded
by holding its last frame, the padded frames unobserved, and cut back); ``denoise`` refuses a clip shorter than the
model's window (nothing to learn the motion's context from). Any bad input (missing file, other skeleton,
keyframes out of range or unsorted, nothing observed) is a one-line error and exit code 2; no output is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError

DENOISE_METHODS = ("window", "overlap", "meva")

_Model = Annotated[Path, typer.Option("--model", help="Checkpoint folder (RUN/model).", show_default=False)]
_Out = Annotated[Path, typer.Option("-o", "--out", help="Output motion: .bvh or .npz (K > 1 samples: "
                                                          "OUT_000.bvh, OUT_001.bvh, …).", show_default=False)]
_In = Annotated[Path, typer.Argument(metavar="IN", help="Input motion: .bvh or .npz.", show_default=False)]
_Samples = Annotated[int, typer.Option("--samples", help="Number of completions K (best first).")]
_Seed = Annotated[int, typer.Option("--seed", help="Random seed of the latent initialisations.")]
_Restarts = Annotated[Optional[int], typer.Option(
    "--restarts", help="Latent initialisations per window (the best is kept). Default: 16 in-betweening, "
                       "64 completion (1 with --init nearest).")]
_Iters = Annotated[Optional[str], typer.Option(
    "--iters", help="Iterations 'PHASE1,PHASE2' of latent optimisation and decoder fine-tuning (default: 50,100 "
                    "for in-betweening and prediction, 100,200 for completion, 0,0 for completion with --init "
                    "nearest).")]
_Init = Annotated[str, typer.Option("--init", help="Latent initialisation: sample (from the prior, the paper's), "
                                                    "interpolate (the first restart from the encoded SLERP fill) or "
                                                    "nearest (from the encoded nearest-neighbour fill; needs --data; "
                                                    "the best for completion on our benchmark).")]
_Data = Annotated[Optional[Path], typer.Option("--data", help="Prepared motion cache (`motionsynth data prepare`) "
                                                               "whose TRAIN split is the pose database of --init "
                                                               "nearest.")]
_Preview = Annotated[Optional[Path], typer.Option("--preview", help="Also render a preview (.gif, .mp4 or .png).")]
_MaskOut = Annotated[Optional[Path], typer.Option("--mask-out", help="Also write the mask (.npz) for "
                                                                     "`motionsynth render --observed`.")]


# ---- shared steps ---------------------------------------------------------------------------------------------------
def _check_outputs(out: Path, preview: Path | None, mask_out: Path | None) -> None:
    """Fail before any work on an output path of the wrong kind."""
    from ..io import MOTION_SUFFIXES
    from ..viz.render import FORMATS

    if out.suffix.lower() not in MOTION_SUFFIXES:
        raise MotionsynthError(f"{out}: unknown output type {out.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(MOTION_SUFFIXES)}")
    if preview is not None and preview.suffix.lower() not in FORMATS:
        raise MotionsynthError(f"{preview}: unknown preview format {preview.suffix!r}; use one of "
                               f"{', '.join(FORMATS)}")
    if mask_out is not None and mask_out.suffix.lower() != ".npz":
        raise MotionsynthError(f"{mask_out}: the mask is written as .npz")


def _load(path: Path, model: Path):
    """(motion, checkpoint), the checkpoint's skeleton checked against the motion's."""
    from ..checkpoint import load_checkpoint
    from ..io import load_motion

    motion = load_motion(path)
    ckpt = load_checkpoint(model)
    ckpt.check_skeleton(motion.skeleton, what=f"input motion {path}")
    return motion, ckpt


def _prior(ckpt, data: Path | None, seed: int, **options):
    """The `PriorMethod`; with ``init="nearest"`` its pose database is built from ``data``'s train split."""
    from ..models.prior import PriorMethod

    method = PriorMethod(ckpt, progress=True, **options)
    if not method.needs_fit:
        if data is not None:
            raise MotionsynthError("--data is only used with --init nearest")
        return method
    if data is None:
        raise MotionsynthError("--init nearest needs --data CACHE: a prepared motion cache whose train split holds "
                               "the poses to retrieve")
    from ..bench.protocol import fit_method, open_cache

    cache = open_cache(data)
    ckpt.check_skeleton(cache.skeleton, what=f"--data {data}")
    info = fit_method(method, cache, None, seed)
    typer.echo(f"pose database: {len(method.retrieval.rotations)} frames from {info['takes']} training takes",
               err=True)
    return method


def _iters(text: str | None) -> dict:
    if text is None:
        return {}
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2 or min(values) < 0:
        raise MotionsynthError(f"--iters must be two non-negative integers 'PHASE1,PHASE2', got {text!r}")
    return {"phase1_iters": values[0], "phase2_iters": values[1]}


def sample_paths(out: Path, k: int) -> list[Path]:
    """``[OUT]`` for one sample; ``OUT_000.ext, OUT_001.ext, …`` for more."""
    if k == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i:03d}{out.suffix}") for i in range(k)]


def _finish(method, motion, mask, out: Path, samples: int, seed: int, preview: Path | None,
            mask_out: Path | None) -> None:
    """Run the method, then write the outputs, the preview and the mask."""
    import time

    from ..io import save_motion
    from ..tasks import save_mask

    if samples < 1:
        raise MotionsynthError(f"--samples must be at least 1, got {samples}")
    start = time.perf_counter()
    results = method.complete(motion, mask, n_samples=samples, seed=seed)
    seconds = time.perf_counter() - start
    paths = sample_paths(out, samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    for result, path in zip(results, paths):
        result.name = motion.name
        save_motion(result, path)
    if mask_out is not None:
        mask_out.parent.mkdir(parents=True, exist_ok=True)
        save_mask(mask, mask_out)
    if preview is not None:
        from ..viz.render import render

        preview.parent.mkdir(parents=True, exist_ok=True)
        render(results, preview, masks=[mask] * len(results), titles=[p.stem for p in paths])
    where = paths[0] if samples == 1 else f"{paths[0]} … {paths[-1].name}"
    typer.echo(f"wrote {where} ({motion.num_frames} frames, {seconds:.1f} s)"
               + (f", preview {preview}" if preview is not None else ""))


# ---- commands -------------------------------------------------------------------------------------------------------
def inbetween_command(
    source: _In, model: _Model, out: _Out,
    keyframes: Annotated[str, typer.Option("--keyframes", help="Observed frames, comma-separated, increasing "
                                                                "(0-based), e.g. 0,30,60.", show_default=False)],
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = "sample",
    data: _Data = None, preview: _Preview = None, mask_out: _MaskOut = None,
) -> None:
    """Fill the frames between keyframes of IN (the keyframes are kept exactly)."""
    from ..tasks import keyframe_mask

    _check_outputs(out, preview, mask_out)
    try:
        keys = [int(k) for k in keyframes.replace(" ", "").split(",") if k != ""]
    except ValueError:
        raise MotionsynthError(f"--keyframes must be comma-separated frame numbers, got {keyframes!r}") from None
    motion, ckpt = _load(source, model)
    mask = keyframe_mask(motion.num_frames, len(motion.skeleton), keys)
    method = _prior(ckpt, data, seed, restarts=restarts, init=init, **_iters(iters))
    _finish(method, motion, mask, out, samples, seed, preview, mask_out)


def complete_command(
    source: _In, model: _Model, out: _Out,
    observe: Annotated[list[str], typer.Option(
        "--observe", help="Observed body part: upper, lower, left-arm, right-arm, left-leg, right-leg, torso, head, or "
                          "joint names (repeat or comma-separate). The rest is synthesised.", show_default=False)],
    frames: Annotated[Optional[str], typer.Option("--frames", help="A:B — complete only frames A..B-1 (elsewhere the "
                                                                   "whole body is observed).")] = None,
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = "sample",
    data: _Data = None, preview: _Preview = None, mask_out: _MaskOut = None,
) -> None:
    """Synthesise the body parts of IN that are not observed (the observed ones are kept exactly)."""
    from ..tasks import joints_mask

    _check_outputs(out, preview, mask_out)
    motion, ckpt = _load(source, model)
    spec = [s for part in observe for s in part.replace(",", " ").split()]
    try:
        joints = motion.skeleton.joints(spec)
    except (KeyError, IndexError) as e:
        raise MotionsynthError(f"--observe: {e.args[0] if e.args else e}") from None
    if not joints:
        raise MotionsynthError(f"--observe {' '.join(observe)!r} selects no joints")
    mask = joints_mask(motion.num_frames, motion.skeleton, joints, _frames(frames, motion.num_frames))
    method = _prior(ckpt, data, seed, restarts=restarts, init=init, **_iters(iters))
    _finish(method, motion, mask, out, samples, seed, preview, mask_out)


def _frames(text: str | None, T: int) -> slice | None:
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a = int(parts[0]) if parts[0].strip() else 0
        b = int(parts[1]) if parts[1].strip() else T
    except ValueError:
        raise MotionsynthError(f"--frames must be A:B (frame numbers), got {text!r}") from None
    if not 0 <= a < b <= T:
        raise MotionsynthError(f"--frames {text}: need 0 <= A < B <= {T} (the motion's frames)")
    return slice(a, b)


def denoise_command(
    source: _In, model: _Model, out: _Out,
    method: Annotated[str, typer.Option("--method", help="window (the HM-VAE paper's sliding window: exact, slow), "
                                                         "overlap (windows every --stride frames, cross-faded) or "
                                                         "meva (a MEVA checkpoint).")] = "window",
    stride: Annotated[Optional[int], typer.Option("--stride", help="Hop of --method overlap (default: half the "
                                                                   "window).")] = None,
    refine_iters: Annotated[int, typer.Option("--refine-iters", help="Latent-optimisation iterations per window "
                                                                     "against the input (HM-VAE methods).")] = 0,
    root: Annotated[str, typer.Option("--root", help="Root trajectory: smooth (the input's path and heading, "
                                                     "median- then Gaussian-smoothed; the model's height) or model "
                                                     "(integrated from the model's root velocities).")] = "smooth",
    root_sigma: Annotated[Optional[float], typer.Option("--root-sigma", help="Gaussian sigma in frames of --root "
                                                                             "smooth (after a 5-frame running "
                                                                             "median). Default: the method's.")] = None,
    despike: Annotated[Optional[int], typer.Option("--despike", help="Running median over the input, in frames "
                                                                     "(odd; 1: off). Default: the method's.")] = None,
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Gaussian filter over the result, sigma in "
                                                                     "frames (0: off). Default: the method's.")] = None,
    preview: _Preview = None, mask_out: _MaskOut = None,
) -> None:
    """Clean a noisy motion (e.g. a pose estimator's output) with a learned prior."""
    from ..tasks import denoise_mask

    _check_outputs(out, preview, mask_out)
    if method not in DENOISE_METHODS:
        raise MotionsynthError(f"--method must be one of {', '.join(DENOISE_METHODS)}, got {method!r}")
    motion, ckpt = _load(source, model)
    window = int(ckpt.config["model"].get("window", 64))
    if motion.num_frames < window:
        raise MotionsynthError(f"{source}: {motion.num_frames} frames is shorter than the model's window of "
                               f"{window} frames; denoising needs at least one full window")
    options = {k: v for k, v in (("root_sigma", root_sigma), ("despike", despike), ("smooth_sigma", smooth))
               if v is not None}
    if method == "meva":
        from ..models.meva import MEVAMethod

        if ckpt.family != "meva":
            raise MotionsynthError(f"--method meva needs a MEVA checkpoint; {model} is a {ckpt.family} model "
                                   f"(use --method window or overlap)")
        m = MEVAMethod(ckpt, root=root, **options)
    else:
        if ckpt.family == "meva":
            raise MotionsynthError(f"{model} is a MEVA checkpoint: use --method meva")
        m = _prior(ckpt, None, 0, refine=method, stride=stride, refine_iters=refine_iters, root=root, **options)
    mask = denoise_mask(motion.num_frames, len(motion.skeleton))
    _finish(m, motion, mask, out, 1, 0, preview, mask_out)


def predict_command(
    source: _In, model: _Model, out: _Out,
    given: Annotated[int, typer.Option("--given", help="The first N frames of IN are observed.",
                                       show_default=False)],
    frames: Annotated[Optional[int], typer.Option("--frames", help="Frames of the output (default: IN's length; "
                                                                   "more extends the motion).")] = None,
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = "sample",
    data: _Data = None, preview: _Preview = None, mask_out: _MaskOut = None,
) -> None:
    """Continue the first N frames of IN (the given frames are kept exactly)."""
    import numpy as np

    from ..tasks import predict_mask

    _check_outputs(out, preview, mask_out)
    motion, ckpt = _load(source, model)
    total = motion.num_frames if frames is None else int(frames)
    if not 0 < given <= motion.num_frames:
        raise MotionsynthError(f"--given {given}: need 1..{motion.num_frames} (the input's frames)")
    mask = predict_mask(total, len(motion.skeleton), given)
    work = motion[:given]
    extra = total - given  # unobserved frames: hold the last given one
    work.rotations = np.concatenate([work.rotations, np.repeat(work.rotations[-1:], extra, 0)])
    work.root_positions = np.concatenate([work.root_positions, np.repeat(work.root_positions[-1:], extra, 0)])
    if work.translations is not None:
        work.translations = np.concatenate([work.translations, np.repeat(work.translations[-1:], extra, 0)])
    method = _prior(ckpt, data, seed, restarts=restarts, init=init, **_iters(iters))
    _finish(method, work, mask, out, samples, seed, preview, mask_out)


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("inbetween")(inbetween_command)
    app.command("complete")(complete_command)
    app.command("denoise")(denoise_command)
    app.command("predict")(predict_command)
