"""`motionsynth report IN --task TASK`: the demo's page (`make demo`) for a user's own clip.

The clip (``.bvh`` or ``.npz``) is the ground truth: the task's request hides part of it (the task's input flags, as
the task commands take them: ``--keyframes`` [``--extrapolate``] for in-betweening, ``--observe`` [``--frames A:B``,
``--synthesise-root``] for completion, ``--given N`` for prediction; `tasks.Task.make` builds the mask), a baseline and a learned model fill it in, and
``OUT/index.html`` shows the animation (observed parts grey, synthesised in colour), per-frame error curves against the
clip, the numbers, and every motion as BVH. For a task that cleans a noisy clip (denoising) the clip is the noisy
input and there is no ground truth: the page shows input and outputs, their smoothness (ACCEL) and how far each output
moved from the input. Every task of the demo that reads a motion can be reported (`report_tasks`).

``--model``: a shipped name, a run folder, a checkpoint folder or a baseline; without it the demo's shipped model for
the task (`demo.choose_models`), else the baseline alone. The option shortcuts and ``--option`` are those of the task
commands (`cli.tasks`). Bad input is a one-line error (exit code 2) before anything is written; the folder is built
aside and moved into place complete (`viz.report.staged`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import MotionsynthError
from ..tasks import TASKS, RequestError
from .tasks import _FILL_SHORTCUTS, _options, _request, flag_error, open_task_method

if TYPE_CHECKING:  # the options' value types (typer reads the Annotated forms below)
    _Restarts = Optional[int]
    _Iters = Optional[str]
    _Init = Optional[str]
else:
    _Restarts, _Iters, _Init = (_FILL_SHORTCUTS[k] for k in ("restarts", "iters", "init"))


def report_tasks() -> list[str]:
    """The tasks a report can show: those of the demo (`demo.demo_tasks`: a protocol with a demo plan says how to
    show them) that read an observed motion."""
    from ..demo import demo_tasks

    return [t for t in demo_tasks() if TASKS[t].needs_motion]


def _check_inputs(task, request) -> None:
    """Refuse flags of another task's inputs (e.g. --keyframes with --task predict), naming the task they are for."""
    from .tasks import INPUT_FLAGS

    for name in task.unused(request):
        owners = [t.name for t in TASKS.values() if name in t.inputs]
        raise MotionsynthError(f"{INPUT_FLAGS[name][0]} is for --task {' or '.join(owners)}, not --task {task.name}")


def _default_baseline(task, data: Path | None) -> str:
    """The task's best baseline; one that learns from data (nearest neighbour) only with --data, else the next best
    that needs none."""
    from ..methods.baselines import BASELINES

    for name in (task.baseline, *reversed(task.baselines), "slerp"):
        if name is not None and (data is not None or not BASELINES[name].needs_fit) and task.name in \
                BASELINES[name].tasks:
            return name
    return task.baseline or "slerp"


def _learned(task, model: str | None, values: dict, options: dict, data, seed: int, motion, clip: Path):
    """(the learned method, its name, warnings): ``--model`` if given, else the shipped model the demo would use —
    or none, with a warning (the baseline is then shown alone)."""
    from ..demo import choose_models

    if model is None:
        choice = choose_models(tasks=(task.name,))[task.name]
        if choice.path is None:
            if options or values.get("label") is not None:
                raise MotionsynthError("--option, --restarts, --iters, --init and --label set the learned model: "
                                       "give --model")
            return None, None, [choice.note + "; the baseline is shown alone (give --model)"]
        model = str(choice.path)
        value = choice.value
    else:
        value = str(model)
    from ..methods.rig import on_skeleton

    method = open_task_method(task, model, options, data, seed, data_elsewhere=True)
    try:
        method = on_skeleton(method, motion.skeleton, task.name, motion.fps)  # another rig or fps: converted
    except MotionsynthError as e:
        if value == str(model):
            raise
        return None, None, [f"the shipped model {value} does not fit this clip ({e}); the baseline is shown alone"]
    return method, value, []


def report_command(
    clip: Annotated[Path, typer.Argument(metavar="IN", help="Input motion: .bvh, .npz, .pkl (SMPL) or .glb.",
                                         show_default=False)],
    task: Annotated[str, typer.Option("--task", help="The task: one of the task commands that read IN.",
                                      show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder: index.html, the animation, the error "
                                                          "plot and the motions as BVH.")] = Path("out/report"),
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model: a shipped name (`motionsynth models`), a training run folder (its best/, else "
                        "model/), a checkpoint folder or a baseline. Default: the demo's shipped model for the task, "
                        "if one ships.", show_default=False)] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Baseline beside the model (`motionsynth bench --method` names). Default: the task's best "
                           "on the benchmark (one that learns from data only with --data).",
        show_default=False)] = None,
    keyframes: Annotated[Optional[str], typer.Option(
        "--keyframes", help="inbetween: observed frames, comma-separated; 'end' is the last frame, e.g. "
                            "0,30,60,end. The first and the last frame must be keyframes (else "
                            "--extrapolate).")] = None,
    extrapolate: Annotated[bool, typer.Option(
        "--extrapolate", help="inbetween: also fill the frames before the first and after the last keyframe "
                              "(prediction, not in-betweening: the error grows with the distance from a "
                              "keyframe).")] = False,
    observe: Annotated[Optional[list[str]], typer.Option(
        "--observe", help="complete: observed body part(s) by the editor's names (upper body, lower body, left arm, "
                          "…; spaces, hyphens or underscores alike) or joint names.")] = None,
    frames: Annotated[Optional[str], typer.Option("--frames", help="complete: A:B — complete only frames "
                                                                   "A..B-1.")] = None,
    synthesise_root: Annotated[bool, typer.Option(
        "--synthesise-root", help="complete: synthesise the root path (position and heading) too; by default the "
                                  "clip's root trajectory is kept.")] = False,
    given: Annotated[Optional[int], typer.Option("--given", help="predict: the first N frames are observed, the "
                                                                 "rest predicted and scored.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="Prepared motion cache whose TRAIN split fits a method that learns at run time (the "
                       "nearest-neighbour and mean-pose baselines, the model's --init nearest).")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Number of results K of the model (best first).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    restarts: _Restarts = None,
    iters: _Iters = None,
    init: _Init = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="Option of the model's method, KEY=VALUE (YAML value); repeatable.")] = None,
    label: Annotated[Optional[str], typer.Option(
        "--label", help="Label to condition on, KIND=NAME[,KIND=NAME] (models trained with labels only).")] = None,
) -> None:
    """An HTML page for IN: a learned model beside a baseline on one task — animation, error curves against IN,
    numbers, the motions as BVH (OUT/index.html)."""
    from ..bench.protocol import fit_method, hide, make_method, open_cache
    from ..demo import Result, clip_section, run_method
    from ..io import load_motion
    from ..io.atomic import check_output
    from ..registry import check_serves
    from ..viz.report import staged, write_page

    if task not in report_tasks():
        raise MotionsynthError(f"--task must be one of {', '.join(report_tasks())}, got {task!r}")
    the_task = TASKS[task]
    if out.exists() and not out.is_dir():
        raise MotionsynthError(f"{out}: exists and is not a folder; the report is a folder (index.html + files)")
    if samples < 1:
        raise MotionsynthError(f"--samples must be at least 1, got {samples}")
    check_output(out, folder=True)
    values = {"keyframes": keyframes, "extrapolate": extrapolate, "observe": observe or [], "span": frames,
              "synthesise_root": synthesise_root, "given": given, "label": label,
              "restarts": restarts, "iters": iters, "init": init, "option": option or []}
    try:
        inputs = _all_inputs(values)
        _check_inputs(the_task, inputs)
        the_task.check_inputs(inputs)
        motion = load_motion(clip)
        request = _request(the_task, values, motion)
        options = _options(the_task, values)
        method, value, warnings = _learned(the_task, model, values, options, data, seed, motion, clip)
        request.window = method.window if method is not None else None
        work = the_task.make(request)
    except RequestError as e:
        raise flag_error(e, clip) from None

    # the baseline, fitted on --data when it learns
    base_name = baseline or _default_baseline(the_task, data)
    base = make_method(base_name)
    check_serves(base_name, task)
    if base.needs_fit:
        if data is None:
            raise MotionsynthError(f"--baseline {base_name} learns from data: give --data CACHE (a prepared motion "
                                   f"cache; its train split is used)")
        cache = open_cache(data)
        cache.skeleton.check_compatible(motion.skeleton, what=f"input motion {clip}")
        fit_method(base, cache, None, seed)

    noisy = work.mask.noisy
    truth = None if noisy else motion[:work.motion.num_frames]
    given_motion = work.motion if noisy else hide(work.motion, work.mask)
    with staged(out) as folder:
        results: list[Result] = run_method(base_name, base, given_motion, work.mask, "baseline", seed=seed,
                                           warm_up=True)
        if method is not None:
            results += run_method(value, method, given_motion, work.mask, "learned", label=work.label, seed=seed,
                                  samples=samples)
        notes = [f"{clip.name}: {motion.num_frames} frames at {motion.fps:g} fps, {len(motion.skeleton)} joints."]
        if truth is None:
            notes.append(f"{the_task.title} of a clip without a ground truth: the input and the outputs are shown; no "
                         "error curves.")
        section = clip_section(task, the_task.title, folder, "clip", truth, given_motion, work.mask, results, notes,
                               warnings)
        write_page(folder, f"motionsynth report: {clip.name}", [section], footer=["Made by `motionsynth report`."])
    typer.echo(f"wrote {out / 'index.html'}" + "".join(f"\nnote: {w}" for w in warnings))


def _all_inputs(values: dict):
    """Every input flag of the report as a `tasks.Request` (the motion comes later), to refuse another task's."""
    from ..tasks import Request, parse_label
    from .tasks import observed_parts, parse_keyframes, parse_span

    return Request(keyframes=parse_keyframes(values["keyframes"]) if values["keyframes"] is not None else None,
                   extrapolate=values["extrapolate"], observe=observed_parts(values["observe"]) or None,
                   span=parse_span(values["span"]), synthesise_root=values["synthesise_root"],
                   given=values["given"], label=parse_label(values["label"]))


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("report")(report_command)
