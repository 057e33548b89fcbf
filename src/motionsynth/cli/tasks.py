"""`motionsynth inbetween / complete / predict / denoise / generate`: a task with a learned model.

Every command reads a motion (``.bvh`` or ``.npz``, any length; ``generate`` starts from the rest pose), builds the
task's `tasks.Mask`, gets the checkpoint's `tasks.Method` from the registry (`registry.load_method`: whatever its
family) and calls ``complete`` on it, then writes the result by OUT's extension (``.bvh`` or ``.npz``,
atomically). Options shared by all:

- ``--model CKPT``: the checkpoint folder; its skeleton must match the input's (else a clear error). A family's
  method refuses a task it cannot do with a clear error (MEVA only denoises).
- ``--option KEY=VALUE``: any option of the model's method (`methods.prior.PriorMethod`,
  `methods.meva.MEVAMethod`), e.g. ``--option lr=0.02``; the named flags (``--restarts``, ``--refine``, …) are
  shortcuts for the common ones.
- ``--samples K``: K > 1 writes ``OUT_000.bvh``, ``OUT_001.bvh``, … (best first).
- ``--preview OUT.gif`` (or ``.mp4`` / ``.png``): a stick-figure rendering, observed parts grey, synthesised parts
  coloured (all samples side by side).
- ``--mask-out MASK.npz``: the task's mask, for ``motionsynth render --observed``.

Lengths: in-betweening, completion and prediction accept any length (a clip shorter than the model's window is padded
by holding its last frame, the padded frames unobserved, and cut back); ``denoise`` refuses a clip shorter than the
model's window (nothing to learn the motion's context from). Any bad input (missing file, other skeleton,
keyframes out of range or unsorted, a label for a model without labels) is a one-line error and exit code 2; no
output is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError

REFINE_MODES = ("window", "overlap")

_Model = Annotated[str, typer.Option("--model", help="Model: a shipped name (`motionsynth models`), a training run "
                                                     "folder (its best/, else model/) or a checkpoint folder.",
                                     show_default=False)]
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
_Init = Annotated[Optional[str], typer.Option(
    "--init", help="Latent initialisation (HM-VAE): sample (from the prior, the paper's), interpolate (the first "
                   "restart from the encoded SLERP fill), nearest (from the encoded nearest-neighbour fill; needs "
                   "--data; the best for completion on our benchmark) or model (from another model's completion, "
                   "--option init_model=cvae-bandai; the best for in-betweening). Default: sample.",
    show_default=False)]
_Data = Annotated[Optional[Path], typer.Option("--data", help="Prepared motion cache (`motionsynth data prepare`) "
                                                               "whose TRAIN split a method that learns at run time "
                                                               "is fitted on (--init nearest's pose database).")]
_Option = Annotated[list[str], typer.Option("--option", help="Option of the model's method, KEY=VALUE (YAML value), "
                                                              "e.g. --option lr=0.02; repeatable.")]
_Label = Annotated[Optional[str], typer.Option("--label", help="Label to condition on, KIND=NAME[,KIND=NAME], e.g. "
                                                               "content=walk (models trained with labels only).")]
_Preview = Annotated[Optional[Path], typer.Option("--preview", help="Also render a preview (.gif, .mp4 or .png).")]
_MaskOut = Annotated[Optional[Path], typer.Option("--mask-out", help="Also write the mask (.npz) for "
                                                                     "`motionsynth render --observed`.")]


# ---- shared steps ---------------------------------------------------------------------------------------------------
def _check_outputs(out: Path, preview: Path | None, mask_out: Path | None) -> None:
    """Fail before any work on an output path of the wrong kind or one that cannot be written."""
    from ..io import MOTION_SUFFIXES
    from ..io.atomic import check_output
    from ..viz.render import FORMATS

    if out.suffix.lower() not in MOTION_SUFFIXES:
        raise MotionsynthError(f"{out}: unknown output type {out.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(MOTION_SUFFIXES)}")
    if preview is not None and preview.suffix.lower() not in FORMATS:
        raise MotionsynthError(f"{preview}: unknown preview format {preview.suffix!r}; use one of "
                               f"{', '.join(FORMATS)}")
    if mask_out is not None and mask_out.suffix.lower() != ".npz":
        raise MotionsynthError(f"{mask_out}: the mask is written as .npz")
    for path in (out, preview, mask_out):
        if path is not None:
            check_output(path)


def _load(path: Path, model: str):
    """(motion, checkpoint), the checkpoint's skeleton checked against the motion's."""
    from ..io import load_motion
    from ..registry import load_checkpoint

    motion = load_motion(path)
    ckpt = load_checkpoint(model)
    ckpt.check_skeleton(motion.skeleton, what=f"input motion {path}")
    return motion, ckpt


def _method(ckpt, data: Path | None, seed: int, flags: dict, option: list[str]):
    """The checkpoint's task method with the given flags (None: the method's default) and ``--option`` values; a
    method that learns at run time (``needs_fit``, e.g. --init nearest) is fitted on ``data``'s train split."""
    from ..config import parse_key_values
    from ..registry import load_method

    options = {k: v for k, v in flags.items() if v is not None}
    options.update(parse_key_values(option, "--option"))
    method = load_method(ckpt, progress=True, **options)
    if not method.needs_fit:
        if data is not None:
            raise MotionsynthError("--data is only used by a method that learns at run time (--init nearest)")
        return method
    if data is None:
        raise MotionsynthError("--init nearest needs --data CACHE: a prepared motion cache whose train split holds "
                               "the poses to retrieve")
    from ..bench.protocol import fit_method, open_cache

    cache = open_cache(data)
    ckpt.check_skeleton(cache.skeleton, what=f"--data {data}")
    info = fit_method(method, cache, None, seed)
    typer.echo(f"pose database: {info['database_frames']} frames from {info['takes']} training takes"
               if "database_frames" in info else f"fitted on {info['takes']} training takes", err=True)
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


def _check_work(samples: int, frames: int, joints: int, flag: str = "--samples") -> None:
    """Refuse, before any work, a result of more joint-frames than the limit: ``samples`` × ``frames`` × ``joints``
    (`limits.check_joint_frames`; ``motionsynth --max-joint-frames N`` raises it)."""
    from .. import limits

    limits.check_joint_frames(samples * frames, joints, f"{flag} {samples} x {frames:,} frames (the result)")


def _finish(method, motion, mask, out: Path, samples: int, seed: int, preview: Path | None,
            mask_out: Path | None, label: str | None = None) -> None:
    """Run the method, then write the outputs, the preview and the mask: all of them or, on an error, none."""
    import time

    from ..io import save_motion
    from ..io.atomic import atomic_paths
    from ..tasks import parse_label, save_mask

    if samples < 1:
        raise MotionsynthError(f"--samples must be at least 1, got {samples}")
    _check_work(samples, motion.num_frames, len(motion.skeleton))
    start = time.perf_counter()
    results = method.complete(motion, mask, label=parse_label(label), n_samples=samples, seed=seed).samples
    seconds = time.perf_counter() - start
    paths = sample_paths(out, samples)
    extra = [p for p in (mask_out, preview) if p is not None]
    with atomic_paths([*paths, *extra]) as tmps:
        for result, tmp in zip(results, tmps):
            result.name = motion.name
            save_motion(result, tmp)
        if mask_out is not None:
            save_mask(mask, tmps[len(paths)])
        if preview is not None:
            from ..viz.render import render

            render(results, tmps[-1], masks=[mask] * len(results), titles=[p.stem for p in paths])
    where = paths[0] if samples == 1 else f"{paths[0]} … {paths[-1].name}"
    typer.echo(f"wrote {where} ({motion.num_frames} frames, {seconds:.1f} s)"
               + (f", preview {preview}" if preview is not None else ""))


# ---- commands -------------------------------------------------------------------------------------------------------
def inbetween_command(
    source: _In, model: _Model, out: _Out,
    keyframes: Annotated[str, typer.Option("--keyframes", help="Observed frames, comma-separated, increasing "
                                                                "(0-based), e.g. 0,30,60.", show_default=False)],
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = None,
    data: _Data = None, option: _Option = [], label: _Label = None, preview: _Preview = None,  # noqa: B006
    mask_out: _MaskOut = None,
) -> None:
    """Fill the frames between keyframes of IN (the keyframes are kept exactly)."""
    from ..tasks import keyframe_mask

    _check_outputs(out, preview, mask_out)
    keys = parse_keyframes(keyframes)
    motion, ckpt = _load(source, model)
    mask = keyframe_mask(motion.num_frames, len(motion.skeleton), keys)
    method = _method(ckpt, data, seed, {"restarts": restarts, "init": init, **_iters(iters)}, option)
    _finish(method, motion, mask, out, samples, seed, preview, mask_out, label)


def complete_command(
    source: _In, model: _Model, out: _Out,
    observe: Annotated[list[str], typer.Option(
        "--observe", help="Observed body part: upper, lower, left-arm, right-arm, left-leg, right-leg, torso, head, or "
                          "joint names (repeat or comma-separate). The rest is synthesised.", show_default=False)],
    frames: Annotated[Optional[str], typer.Option("--frames", help="A:B — complete only frames A..B-1 (elsewhere the "
                                                                   "whole body is observed).")] = None,
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = None,
    data: _Data = None, option: _Option = [], label: _Label = None, preview: _Preview = None,  # noqa: B006
    mask_out: _MaskOut = None,
) -> None:
    """Synthesise the body parts of IN that are not observed (the observed ones are kept exactly)."""
    from ..tasks import joints_mask

    _check_outputs(out, preview, mask_out)
    motion, ckpt = _load(source, model)
    joints = observed_joints(observe, motion.skeleton)
    mask = joints_mask(motion.num_frames, motion.skeleton, joints, _frames(frames, motion.num_frames))
    method = _method(ckpt, data, seed, {"restarts": restarts, "init": init, **_iters(iters)}, option)
    _finish(method, motion, mask, out, samples, seed, preview, mask_out, label)


def parse_keyframes(text: str) -> list[int]:
    """``--keyframes`` "0,30,60" → [0, 30, 60] (order and range are checked by `tasks.keyframe_mask`)."""
    try:
        return [int(k) for k in text.replace(" ", "").split(",") if k != ""]
    except ValueError:
        raise MotionsynthError(f"--keyframes must be comma-separated frame numbers, got {text!r}") from None


def observed_joints(observe: list[str], skeleton) -> list[int]:
    """``--observe`` values (body parts or joint names, repeated or comma-separated) → joint indices."""
    spec = [s for part in observe for s in part.replace(",", " ").split()]
    try:
        joints = skeleton.joints(spec)
    except (KeyError, IndexError) as e:
        raise MotionsynthError(f"--observe: {e.args[0] if e.args else e}") from None
    if not joints:
        raise MotionsynthError(f"--observe {' '.join(observe)!r} selects no joints")
    return joints


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
    refine: Annotated[Optional[str], typer.Option("--refine", help="HM-VAE models: window (the paper's sliding "
                                                                   "window: exact, slow) or overlap (windows every "
                                                                   "--stride frames, cross-faded). Default: "
                                                                   "window.")] = None,
    stride: Annotated[Optional[int], typer.Option("--stride", help="Hop of --refine overlap (default: half the "
                                                                   "window).")] = None,
    refine_iters: Annotated[Optional[int], typer.Option("--refine-iters", help="Latent-optimisation iterations per "
                                                                               "window against the input (HM-VAE "
                                                                               "models; default 0).")] = None,
    root: Annotated[Optional[str], typer.Option("--root", help="Root trajectory: smooth (the input's path and "
                                                               "heading, median- then Gaussian-smoothed; the model's "
                                                               "height) or model (integrated from the model's root "
                                                               "velocities). Default: smooth.")] = None,
    root_sigma: Annotated[Optional[float], typer.Option("--root-sigma", help="Gaussian sigma in frames of --root "
                                                                             "smooth (after a 5-frame running "
                                                                             "median). Default: the method's.")] = None,
    despike: Annotated[Optional[int], typer.Option("--despike", help="Running median over the input, in frames "
                                                                     "(odd; 1: off). Default: the method's.")] = None,
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Gaussian filter over the result, sigma in "
                                                                     "frames (0: off). Default: the method's.")] = None,
    option: _Option = [], preview: _Preview = None, mask_out: _MaskOut = None,  # noqa: B006
) -> None:
    """Clean a noisy motion (e.g. a pose estimator's output) with a learned model (HM-VAE prior or MEVA)."""
    from ..tasks import denoise_mask

    _check_outputs(out, preview, mask_out)
    if refine is not None and refine not in REFINE_MODES:
        raise MotionsynthError(f"--refine must be one of {', '.join(REFINE_MODES)}, got {refine!r}")
    motion, ckpt = _load(source, model)
    window = int(ckpt.config["model"].get("window", 64))
    if motion.num_frames < window:
        raise MotionsynthError(f"{source}: {motion.num_frames} frames is shorter than the model's window of "
                               f"{window} frames; denoising needs at least one full window")
    flags = {"refine": refine, "stride": stride, "refine_iters": refine_iters, "root": root, "root_sigma": root_sigma,
             "despike": despike, "smooth_sigma": smooth}
    method = _method(ckpt, None, 0, flags, option)
    mask = denoise_mask(motion.num_frames, len(motion.skeleton))
    _finish(method, motion, mask, out, 1, 0, preview, mask_out)


def predict_command(
    source: _In, model: _Model, out: _Out,
    given: Annotated[int, typer.Option("--given", help="The first N frames of IN are observed.",
                                       show_default=False)],
    frames: Annotated[Optional[int], typer.Option("--frames", help="Frames of the output (default: IN's length; "
                                                                   "more extends the motion).")] = None,
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = None,
    data: _Data = None, option: _Option = [], label: _Label = None, preview: _Preview = None,  # noqa: B006
    mask_out: _MaskOut = None,
) -> None:
    """Continue the first N frames of IN (the given frames are kept exactly)."""
    from ..ops import pad
    from ..tasks import predict_mask

    _check_outputs(out, preview, mask_out)
    motion, ckpt = _load(source, model)
    total = motion.num_frames if frames is None else int(frames)
    if not 0 < given <= motion.num_frames:
        raise MotionsynthError(f"--given {given}: need 1..{motion.num_frames} (the input's frames)")
    _check_work(samples, total, len(motion.skeleton))
    mask = predict_mask(total, len(motion.skeleton), given)
    work = pad(motion[:given], total)  # unobserved frames: the last given one held
    method = _method(ckpt, data, seed, {"restarts": restarts, "init": init, **_iters(iters)}, option)
    _finish(method, work, mask, out, samples, seed, preview, mask_out, label)


def generate_command(
    model: _Model,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder: sample_000.bvh, sample_000.npz, …",
                                      show_default=False)],
    n: Annotated[int, typer.Option("--n", help="Number of motions.")] = 1,
    frames: Annotated[Optional[int], typer.Option("--frames", help="Frames per motion (default: the model's "
                                                                   "window).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    label: _Label = None, option: _Option = [],  # noqa: B006
) -> None:
    """Generate motions from nothing (the task with nothing observed); one BVH and one npz per sample.

    A motion longer than the model's window is made of windows cross-faded by the model's method (for the HM-VAE:
    independent draws, so the motion changes character at each seam).
    """
    from ..io import save_motion
    from ..io.atomic import atomic_paths, check_output
    from ..ops import rest_motion
    from ..registry import load_checkpoint
    from ..tasks import generate_mask, parse_label

    if n < 1:
        raise MotionsynthError(f"--n must be at least 1, got {n}")
    check_output(out, folder=True)
    ckpt = load_checkpoint(model)
    frames = int(ckpt.config["model"].get("window", 64)) if frames is None else frames
    if frames < 1:
        raise MotionsynthError(f"--frames must be positive, got {frames}")
    _check_work(n, frames, len(ckpt.skeleton), "--n")
    start = rest_motion(ckpt.skeleton, frames, float(ckpt.fps or 30.0))
    method = _method(ckpt, None, seed, {}, option)
    mask = generate_mask(frames, len(ckpt.skeleton))
    motions = method.complete(start, mask, label=parse_label(label), n_samples=n, seed=seed).samples
    names = [f"sample_{i:03d}" for i in range(len(motions))]
    with atomic_paths([out / f"{name}{ext}" for name in names for ext in (".bvh", ".npz")]) as tmps:
        for k, (motion, name) in enumerate(zip(motions, names)):
            motion.name = name
            save_motion(motion, tmps[2 * k])
            save_motion(motion, tmps[2 * k + 1])
    typer.echo(f"wrote {len(motions)} motions of {frames} frames to {out}")


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("inbetween")(inbetween_command)
    app.command("complete")(complete_command)
    app.command("denoise")(denoise_command)
    app.command("predict")(predict_command)
    app.command("generate")(generate_command)
