"""`motionsynth report IN --task TASK`: the demo's page (`make demo`) for a user's own clip.

The clip (``.bvh`` or ``.npz``) is the ground truth: the task's mask hides part of it (``--keyframes`` for
in-betweening, ``--observe`` [``--frames A:B``] for completion, ``--given N`` for prediction, as the task commands
take them), a baseline and a learned model fill it in, and ``OUT/index.html`` shows the animation (observed parts
grey, synthesised in colour), per-frame error curves against the clip, the numbers, and every motion as BVH. For
``denoise`` the clip is the noisy input and there is no ground truth: the page shows input and outputs, their
smoothness (ACCEL) and how far each output moved from the input.

``--model``: a shipped name, a run folder or a checkpoint folder; without it the demo's shipped model for the task
(`demo.choose_models`), else the baseline alone. Learned-model flags and ``--option`` are those of the task
commands (`cli.tasks`). Bad input is a one-line error (exit code 2) before anything is written; the folder is built
aside and moved into place complete (`viz.report.staged`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError
from .tasks import (
    _frames,
    _In,
    _Init,
    _Iters,
    _iters,
    _Label,
    _method,
    _Option,
    _Restarts,
    _Samples,
    _Seed,
    observed_joints,
    parse_keyframes,
)

REPORT_TASKS = ("inbetween", "complete", "denoise", "predict")


def _default_baseline(task: str, data: Path | None) -> str:
    from ..demo import BASELINE

    if task == "complete" and data is None:
        return "slerp"  # the missing joints at the rest pose: nearest neighbour needs a pose database (--data)
    return BASELINE[task]


def _wants_data(init: str | None, option: list[str]) -> bool:
    """Whether the learned method learns at run time from --data (the prior's --init nearest)."""
    from ..config import parse_key_values

    return init == "nearest" or parse_key_values(option, "--option").get("init") == "nearest"


def _task_mask(task: str, motion, keyframes: str | None, observe: list[str], frames: str | None,
               given: int | None):
    """The task's mask from the same arguments as the task commands (`cli.tasks`)."""
    from ..tasks import denoise_mask, joints_mask, keyframe_mask, predict_mask

    T, J = motion.num_frames, len(motion.skeleton)
    needs = {"inbetween": ("--keyframes", keyframes), "complete": ("--observe", observe or None),
             "predict": ("--given", given)}
    for t, (flag, value) in needs.items():
        if t == task and value is None:
            raise MotionsynthError(f"--task {task} needs {flag}")
        if t != task and value is not None:
            raise MotionsynthError(f"{flag} is for --task {t}, not --task {task}")
    if frames is not None and task != "complete":
        raise MotionsynthError(f"--frames is for --task complete, not --task {task}")
    if task == "inbetween":
        return keyframe_mask(T, J, parse_keyframes(keyframes))
    if task == "complete":
        joints = observed_joints(observe, motion.skeleton)
        return joints_mask(T, motion.skeleton, joints, _frames(frames, T))
    if task == "predict":
        if not 0 < given < T:
            raise MotionsynthError(f"--given {given}: need 1..{T - 1} (the clip's frames; the rest is the truth "
                                   f"the prediction is scored against)")
        return predict_mask(T, J, given)
    return denoise_mask(T, J)


def report_command(
    clip: _In,
    task: Annotated[str, typer.Option("--task", help="inbetween, complete, denoise or predict.", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder: index.html, the animation, the error "
                                                          "plot and the motions as BVH.")] = Path("out/report"),
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model: a shipped name (`motionsynth models`), a training run folder (its best/, else "
                        "model/) or a checkpoint folder. Default: the demo's shipped model for the task, if one "
                        "ships.", show_default=False)] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Baseline beside the model (`motionsynth bench --method` names). Default: slerp "
                           "(inbetween), nearest-neighbour with --data else slerp (complete), smooth (denoise), "
                           "constant-velocity (predict).", show_default=False)] = None,
    keyframes: Annotated[Optional[str], typer.Option("--keyframes", help="inbetween: observed frames, "
                                                                         "comma-separated, e.g. 0,30,60.")] = None,
    observe: Annotated[list[str], typer.Option("--observe", help="complete: observed body part(s) (upper, lower, "
                                                                 "left-arm, … or joint names).")] = [],  # noqa: B006
    frames: Annotated[Optional[str], typer.Option("--frames", help="complete: A:B — complete only frames "
                                                                   "A..B-1.")] = None,
    given: Annotated[Optional[int], typer.Option("--given", help="predict: the first N frames are observed, the "
                                                                 "rest predicted and scored.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="Prepared motion cache whose TRAIN split fits a baseline that learns (nearest-neighbour, "
                       "mean-pose) and the model's --init nearest.")] = None,
    samples: _Samples = 1, seed: _Seed = 0, restarts: _Restarts = None, iters: _Iters = None, init: _Init = None,
    option: _Option = [], label: _Label = None,  # noqa: B006
) -> None:
    """An HTML page for IN: a learned model beside a baseline on one task — animation, error curves against IN,
    numbers, the motions as BVH (OUT/index.html)."""
    from ..bench.protocol import fit_method, hide, make_method, open_cache
    from ..demo import NAMES, Result, choose_models, clip_section, run_method
    from ..io import load_motion
    from ..io.atomic import check_output
    from ..registry import load_checkpoint
    from ..tasks import parse_label
    from ..viz.report import staged, write_page

    if task not in REPORT_TASKS:
        raise MotionsynthError(f"--task must be one of {', '.join(REPORT_TASKS)}, got {task!r}")
    if out.exists() and not out.is_dir():
        raise MotionsynthError(f"{out}: exists and is not a folder; the report is a folder (index.html + files)")
    if samples < 1:
        raise MotionsynthError(f"--samples must be at least 1, got {samples}")
    check_output(out, folder=True)
    motion = load_motion(clip)
    mask = _task_mask(task, motion, keyframes, observe, frames, given)
    warnings: list[str] = []

    # the learned model: given, else the shipped one the demo would use
    ckpt, value = None, None
    if model is not None:
        ckpt, value = load_checkpoint(model), str(model)
        ckpt.check_skeleton(motion.skeleton, what=f"input motion {clip}")
    else:
        choice = choose_models(tasks=(task,))[task]
        if choice.path is None:
            warnings.append(choice.note + "; the baseline is shown alone (give --model)")
        else:
            ckpt, value = load_checkpoint(choice.path), choice.value
            try:
                ckpt.check_skeleton(motion.skeleton, what=f"input motion {clip}")
            except MotionsynthError as e:
                warnings.append(f"the shipped model {value} does not fit this clip ({e}); the baseline is shown "
                                f"alone")
                ckpt = None
    method = None
    if ckpt is not None:
        if task == "denoise":
            window = int(ckpt.config["model"].get("window", 64))
            if motion.num_frames < window:
                raise MotionsynthError(f"{clip}: {motion.num_frames} frames is shorter than the model's window of "
                                       f"{window} frames; denoising needs at least one full window")
            flags = {}
        else:
            flags = {"restarts": restarts, "init": init, **_iters(iters)}
        method = _method(ckpt, data if _wants_data(init, option) else None, seed, flags, option)
    elif option or restarts is not None or iters is not None or init is not None or label is not None:
        raise MotionsynthError("--option, --restarts, --iters, --init and --label set the learned model: give "
                               "--model")
    labels = parse_label(label)

    # the baseline, fitted on --data when it learns
    base_name = baseline or _default_baseline(task, data)
    base = make_method(base_name)
    if base.needs_fit:
        if data is None:
            raise MotionsynthError(f"--baseline {base_name} learns from data: give --data CACHE (a prepared motion "
                                   f"cache; its train split is used)")
        cache = open_cache(data)
        cache.skeleton.check_compatible(motion.skeleton, what=f"input motion {clip}")
        fit_method(base, cache, None, seed)

    truth = None if task == "denoise" else motion
    given_motion = motion if task == "denoise" else hide(motion, mask)
    with staged(out) as folder:
        results: list[Result] = run_method(base_name, base, given_motion, mask, "baseline", seed=seed,
                                                  warm_up=True)
        if method is not None:
            results += run_method(value, method, given_motion, mask, "learned", label=labels, seed=seed,
                                  samples=samples)
        notes = [f"{clip.name}: {motion.num_frames} frames at {motion.fps:g} fps, {len(motion.skeleton)} joints."]
        if truth is None:
            notes.append("Denoising a clip without a ground truth: the input and the outputs are shown; no error "
                         "curves.")
        section = clip_section(task, NAMES[task].capitalize(), folder, "clip", truth, given_motion, mask,
                               results, notes, warnings)
        write_page(folder, f"motionsynth report: {clip.name}", [section],
                   footer=["Made by `motionsynth report`."])
    typer.echo(f"wrote {out / 'index.html'}" + "".join(f"\nnote: {w}" for w in warnings))


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("report")(report_command)
