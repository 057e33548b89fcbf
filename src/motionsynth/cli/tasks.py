"""The task commands — one per task of the task table (`tasks.TASKS`: ``motionsynth inbetween``, ``complete``,
``predict``, ``denoise``, ``generate``, and any task registered before `register` runs).

Each command is made from its `tasks.Task` (`task_command`): its help is the task's, its flags are those of the
task's `tasks.Request` inputs (`INPUT_FLAGS`) and the common ones below. It reads IN (``.bvh`` or ``.npz``, any
length; a task without a motion, generation, starts from the model's rest pose), gets the method of ``--model``
(`registry.open_method`: a learned model or a baseline; one that does not serve the task is refused before any
work), makes the request's working motion and mask (`tasks.Task.make`) and calls ``complete``, then writes the
result by OUT's extension (``.bvh`` or ``.npz``, atomically; generation: a folder of ``sample_000.bvh`` and ``.npz``).

- ``--model``: a shipped name, a training run folder, a checkpoint folder, or a baseline name (``slerp``, …);
  its skeleton must match the input's (else a clear error).
- ``--option KEY=VALUE``: an option of the method (its ``Options``; ``--option help`` lists them). The named
  shortcuts (``--restarts``, ``--iters``, ``--init`` for the tasks that fill in, ``--refine``, ``--smooth``, … for
  cleaning) are the same options: a method without them refuses them, naming the options it takes.
- ``--data CACHE``: the training split a method that learns at run time is fitted on (nearest-neighbour,
  mean-pose, the prior's ``init=nearest``).
- ``--samples K``: K > 1 writes ``OUT_000.bvh``, ``OUT_001.bvh``, … (best first).
- ``--preview OUT.gif`` (or ``.mp4`` / ``.png``): a stick-figure rendering, observed parts grey, synthesised parts
  coloured (all samples side by side); ``--mask-out MASK.npz``: the task's mask, for ``motionsynth render``.

Lengths follow the task (`tasks.Task`): any length for the tasks that fill in (a clip shorter than the model's
window is padded and cut back); cleaning refuses a clip shorter than the model's window. Library errors name the
request's fields; here they name the flags (`flag_error`). Any bad input is a one-line error and exit code 2; no
output is written.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Optional, cast

import typer

from ..errors import MotionsynthError, ParamError
from ..tasks import TASKS, Request, RequestError, Task

# ---- the flags ---------------------------------------------------------------------------------------------------
_MODEL_HELP = ("Model: a shipped name (`motionsynth models`), a training run folder (its best/, else model/), a "
               "checkpoint folder, or a baseline (`motionsynth bench --method` names, e.g. slerp).")
_COMMON = {
    "model": Annotated[str, typer.Option("--model", help=_MODEL_HELP, show_default=False)],
    "seed": Annotated[int, typer.Option("--seed", help="Random seed.")],
    "data": Annotated[Optional[Path], typer.Option(
        "--data", help="Prepared motion cache (`motionsynth data prepare`) whose TRAIN split a method that learns at "
                       "run time is fitted on (nearest-neighbour, mean-pose, --init nearest).")],
    "layout": Annotated[Optional[str], typer.Option(
        "--layout", help="IN and OUT of .npy, .npz, .json or .csv are 3D keypoints of this layout: h36m, coco, smpl24 "
                         "or mediapipe (metres, +Y up; a skeleton is fitted to them, results are written in the same "
                         "layout).", show_default=False)],
    "rig": Annotated[Optional[Path], typer.Option(
        "--rig", help="A motion file (.bvh, .npz, .glb …) whose skeleton the results are on: any humanoid rig, "
                      "retargeted from the model's (default: the model's own skeleton).")],
    "option": Annotated[list[str], typer.Option(
        "--option", help="Option of the method, KEY=VALUE (YAML value), e.g. --option lr=0.02; repeatable. "
                         "--option help lists the options of --model.")],
}
_FILE_OUTPUTS = {
    "out": Annotated[Optional[Path], typer.Option("-o", "--out", help="Output motion: .bvh, .npz or .glb, or keypoints "
                                                                      "with --layout (K > 1 samples: OUT_000.bvh, "
                                                                      "OUT_001.bvh, …; required).",
                                                  show_default=False)],
    "preview": Annotated[Optional[Path], typer.Option("--preview", help="Also render a preview (.gif, .mp4 or "
                                                                       ".png).")],
    "mask_out": Annotated[Optional[Path], typer.Option("--mask-out", help="Also write the mask (.npz) for "
                                                                          "`motionsynth render --observed`.")],
}
INPUT_FLAGS = {
    "keyframes": ("--keyframes", Annotated[Optional[str], typer.Option(
        "--keyframes", help="Observed frames, comma-separated, increasing (0-based); 'end' is the last frame of IN, "
                            "e.g. 0,30,60,end. The first and the last frame must be keyframes (else --extrapolate).",
        show_default=False)]),
    "extrapolate": ("--extrapolate", Annotated[bool, typer.Option(
        "--extrapolate", help="Also fill the frames before the first and after the last keyframe. That is "
                              "prediction, not in-betweening: the error grows with the distance from a keyframe.")]),
    "observe": ("--observe", Annotated[list[str], typer.Option(
        "--observe", help="Observed body part, by the editor's names: upper body, lower body, left arm, right arm, "
                          "left leg, right leg, torso, head (spaces, hyphens or underscores alike: upper, left-arm, "
                          "left_arm), or joint names; repeat or comma-separate. The rest is synthesised.",
        show_default=False)]),
    "span": ("--frames", Annotated[Optional[str], typer.Option(
        "--frames", help="A:B — complete only frames A..B-1 (elsewhere the whole body is observed).")]),
    "synthesise_root": ("--synthesise-root", Annotated[bool, typer.Option(
        "--synthesise-root", help="Synthesise the root path (position and heading) too. By default the root "
                                  "trajectory of IN is kept, whatever is observed.")]),
    "given": ("--given", Annotated[Optional[int], typer.Option(
        "--given", help="The first N frames of IN are observed.", show_default=False)]),
    "length": ("--frames", Annotated[Optional[int], typer.Option(
        "--frames", help="Frames of the output (default: the input's length, else the model's window).")]),
    "label": ("--label", Annotated[Optional[str], typer.Option(
        "--label", help="Label to condition on, KIND=NAME[,KIND=NAME], e.g. content=walk (models trained with "
                        "labels only).")]),
}
"""`tasks.Request` field → (its flag, its Typer parameter): what a task's ``inputs`` become on the command line."""
_INPUT_DEFAULTS = {"observe": [], "extrapolate": False, "synthesise_root": False}  # else None

# Shortcut flags for common method options, by the kind of mask a task makes (`tasks.Task.mask`). Each is only a
# name for the option: its value goes through the method's Options like any ``--option``.
_FILL_SHORTCUTS = {
    "restarts": Annotated[Optional[int], typer.Option(
        "--restarts", help="HM-VAE: latent initialisations per window, the best kept (--option restarts; default 16 "
                           "in-betweening, 64 completion, 1 with --init nearest).")],
    "iters": Annotated[Optional[str], typer.Option(
        "--iters", help="HM-VAE: iterations 'PHASE1,PHASE2' of latent optimisation and decoder fine-tuning "
                        "(--option phase1_iters, phase2_iters).")],
    "init": Annotated[Optional[str], typer.Option(
        "--init", help="HM-VAE: latent initialisation, sample, interpolate, nearest (needs --data) or model "
                       "(--option init_model=cvae-bandai) (--option init).", show_default=False)],
}
_CLEAN_SHORTCUTS = {
    "refine": Annotated[Optional[str], typer.Option(
        "--refine", help="HM-VAE: window (the paper's sliding window: exact, slow) or overlap (--option refine).")],
    "stride": Annotated[Optional[int], typer.Option("--stride", help="HM-VAE: hop of --refine overlap (--option "
                                                                     "stride; default: half the window).")],
    "refine_iters": Annotated[Optional[int], typer.Option(
        "--refine-iters", help="HM-VAE: latent-optimisation iterations per window (--option refine_iters).")],
    "root": Annotated[Optional[str], typer.Option(
        "--root", help="Root trajectory: smooth (the input's, smoothed) or model (--option root).")],
    "root_sigma": Annotated[Optional[float], typer.Option(
        "--root-sigma", help="Gaussian sigma in frames of --root smooth (--option root_sigma).")],
    "despike": Annotated[Optional[int], typer.Option(
        "--despike", help="Running median over the input, frames (odd; 1: off) (--option despike).")],
    "smooth": Annotated[Optional[float], typer.Option(
        "--smooth", help="Gaussian filter over the result, sigma in frames (0: off) (--option smooth_sigma).")],
}
SHORTCUTS = {"part": _FILL_SHORTCUTS, "noisy": _CLEAN_SHORTCUTS, "nothing": {}}
_OPTION_OF = {"smooth": "smooth_sigma"}  # shortcut → option, where the names differ (--iters: two options)


_FLAGS = {"span": "--frames", "length": "--frames", "n_samples": "--samples"}
"""Library parameters whose flag is not ``--name-with-dashes`` (beside `INPUT_FLAGS`)."""


def flag_for(param: str) -> str:
    """The command line's flag for a library parameter (a `tasks.Request` field or a function's argument)."""
    return _FLAGS.get(param) or (INPUT_FLAGS[param][0] if param in INPUT_FLAGS else "--" + param.replace("_", "-"))


def flag_error(e: ParamError, source: Path | None = None) -> MotionsynthError:
    """A library `errors.ParamError` in the command line's words: each parameter it names (written `` `name` ``)
    becomes its flag, the motion IN's path — e.g. "in-betweening needs `keyframes`" → "in-betweening needs
    --keyframes"; a message naming none is prefixed with its first parameter's flag."""
    import re

    def flag(param: str) -> str:
        return str(source) if param == "motion" and source is not None else flag_for(param)

    text, named = re.subn(r"`([a-z_]+)`", lambda m: flag(m.group(1)), str(e))
    if not named and e.params:
        text = f"{flag(e.params[0])}: {text}"
    return MotionsynthError(text)


# ---- reading the flags ---------------------------------------------------------------------------------------------
def parse_keyframes(text: str, frames: int | None = None) -> list[int]:
    """``--keyframes`` "0,30,60" → [0, 30, 60]; ``end`` is the last of ``frames`` (the motion's; unknown yet: -1),
    once (order and range are checked by `tasks.keyframe_mask`)."""
    end = -1 if frames is None else frames - 1
    try:
        keys = [end if k.lower() in ("end", "last") else int(k) for k in text.replace(" ", "").split(",") if k != ""]
    except ValueError:
        raise MotionsynthError(f"--keyframes must be comma-separated frame numbers (or end), got {text!r}") from None
    return keys if len(keys) < 2 or keys[-1] != end or keys[-2] != end else keys[:-1]  # "…,60,end" of 61 frames


def parse_span(text: str | None) -> tuple[int, int] | None:
    """``--frames`` "A:B" (either end may be left out: 0, the end) → (A, B); the range is the task's to check."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return (int(parts[0]) if parts[0].strip() else 0), (int(parts[1]) if parts[1].strip() else 2**62)
    except ValueError:
        raise MotionsynthError(f"--frames must be A:B (frame numbers), got {text!r}") from None


def observed_parts(observe: list[str]) -> list[str]:
    """``--observe`` values (body parts or joint names, repeated or comma-separated) → names, as typed ("left arm"
    stays one: `skeleton.Skeleton.joints` reads body parts by any of their names)."""
    return [s.strip() for part in observe for s in part.split(",") if s.strip()]


def _request(task: Task, values: dict, motion) -> Request:
    """The `tasks.Request` of the task's input flags."""
    from ..tasks import parse_label

    given: dict[str, Any] = {name: values.get(name) for name in task.inputs}
    span = parse_span(given.get("span"))
    if span is not None and motion is not None:
        span = (span[0], min(span[1], motion.num_frames))
    frames = motion.num_frames if motion is not None else None
    return Request(motion=motion,
                   keyframes=parse_keyframes(given["keyframes"], frames) if given.get("keyframes") is not None
                   else None, extrapolate=bool(given.get("extrapolate")),
                   observe=observed_parts(given["observe"]) if given.get("observe") else None,
                   span=span, synthesise_root=bool(given.get("synthesise_root")), given=given.get("given"),
                   length=given.get("length"), label=parse_label(given.get("label")))


def _options(task: Task, values: dict) -> dict:
    """The method options of the shortcut flags and ``--option`` (which wins)."""
    from ..config import parse_key_values

    out = {}
    for flag in SHORTCUTS[task.mask]:
        value = values.get(flag)
        if value is None:
            continue
        if flag == "iters":
            out.update(_iters(value))
        else:
            out[_OPTION_OF.get(flag, flag)] = value
    out.update(parse_key_values([o for o in values.get("option") or [] if o != "help"], "--option"))
    return out


def _iters(text: str) -> dict:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2 or min(values) < 0:
        raise MotionsynthError(f"--iters must be two non-negative integers 'PHASE1,PHASE2', got {text!r}")
    return {"phase1_iters": values[0], "phase2_iters": values[1]}


# ---- shared steps --------------------------------------------------------------------------------------------------
def _check_outputs(out: Path, preview: Path | None, mask_out: Path | None, layout: str | None = None) -> None:
    """Fail before any work on an output path of the wrong kind or one that cannot be written."""
    from ..io import check_save_suffix
    from ..io.atomic import check_output
    from ..viz.render import FORMATS

    check_save_suffix(out, keypoints=layout is not None)
    if preview is not None and preview.suffix.lower() not in FORMATS:
        raise MotionsynthError(f"{preview}: unknown preview format {preview.suffix!r}; use one of "
                               f"{', '.join(FORMATS)}")
    if mask_out is not None and mask_out.suffix.lower() != ".npz":
        raise MotionsynthError(f"{mask_out}: the mask is written as .npz")
    for path in (out, preview, mask_out):
        if path is not None:
            check_output(path)


def open_task_method(task: Task, model: str, options: dict, data: Path | None, seed: int,
                     data_elsewhere: bool = False):
    """The method of ``--model`` for ``task`` (refused before its weights are built when it does not serve the
    task), with ``options``; a method that learns at run time (``needs_fit``) is fitted on ``data``'s train split.
    ``data_elsewhere``: ``--data`` serves something else too (the report's baseline), so a method that does not
    learn is no error."""
    from ..registry import open_method

    method = open_method(model, task.name, progress=True, **options)
    if not method.needs_fit:
        if data is not None and not data_elsewhere:
            raise MotionsynthError(f"--data is only used by a method that learns at run time (nearest-neighbour, "
                                   f"mean-pose, --init nearest); the {method.name} method does not")
        return method
    if data is None:
        raise MotionsynthError(f"the {method.name} method learns from data at run time: give --data CACHE, a "
                               f"prepared motion cache whose train split holds the poses to retrieve")
    from ..bench.protocol import fit_method, open_cache

    cache = open_cache(data)
    if method.skeleton is not None:  # a learned method's (a baseline takes the data's skeleton when fitted)
        method.check_skeleton(cache.skeleton, what=f"--data {data}")
    info = fit_method(method, cache, None, seed)
    typer.echo(f"pose database: {info['database_frames']} frames from {info['takes']} training takes"
               if "database_frames" in info else f"fitted on {info['takes']} training takes", err=True)
    return method


def print_options(model: str) -> None:
    """``--option help``: the options of ``--model``'s method, one per line (name, type, default, help)."""
    from ..checkpoint import read_config, resolve_model
    from ..registry import BASELINES, method_class

    name = model if model in BASELINES and not Path(model).exists() else \
        read_config(resolve_model(model) / "config.yaml").get("family")
    described = method_class(cast(str, name)).Options.describe()
    typer.echo(f"options of the {name} method (--option KEY=VALUE):" if described else
               f"the {name} method takes no options")
    for o in described:
        choices = f" ({' | '.join(map(str, o['choices']))})" if o["choices"] else ""
        typer.echo(f"  {o['name']} = {o['default']!r}  [{o['type']}{choices}]\n      {o['help']}")


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


def _write_motions(results, name: str, out: Path, preview, mask_out, mask, layout: str | None = None) -> list[Path]:
    """The samples as OUT (or OUT_000, …), the preview and the mask: all of them or, on an error, none."""
    from ..io import save_motion
    from ..io.atomic import atomic_paths
    from ..tasks import save_mask

    paths = sample_paths(out, len(results))
    extra = [p for p in (mask_out, preview) if p is not None]
    with atomic_paths([*paths, *extra]) as tmps:
        for result, tmp in zip(results, tmps):
            result.name = name
            save_motion(result, tmp, layout=layout)
        if mask_out is not None:
            save_mask(mask, tmps[len(paths)])
        if preview is not None:
            from ..viz.render import render

            render(results, tmps[-1], masks=[mask] * len(results), titles=[p.stem for p in paths])
    return paths


def _write_folder(results, out: Path) -> None:
    """Generated samples as ``OUT/sample_000.bvh`` and ``.npz``, …: all of them or, on an error, none."""
    from ..io import save_motion
    from ..io.atomic import atomic_paths

    names = [f"sample_{i:03d}" for i in range(len(results))]
    with atomic_paths([out / f"{name}{ext}" for name in names for ext in (".bvh", ".npz")]) as tmps:
        for k, (motion, name) in enumerate(zip(results, names)):
            motion.name = name
            save_motion(motion, tmps[2 * k])
            save_motion(motion, tmps[2 * k + 1])


# ---- one command per task -------------------------------------------------------------------------------------------
def run_task(task: Task, values: dict) -> None:
    """A task command: ``values`` are its flags by parameter name (`task_command`)."""
    import time

    from ..io import load_motion
    from ..io.atomic import check_output
    from ..methods.rig import on_skeleton

    source, out, samples = values.get("source"), values["out"], values.get("samples", 1)
    if "option" in values and "help" in (values["option"] or []):
        print_options(values["model"])
        return
    _check_given(task, values)
    layout = parse_layout(values.get("layout"))
    if task.needs_motion:
        _check_outputs(out, values.get("preview"), values.get("mask_out"), layout)
    else:
        check_output(out, folder=True)
    if samples < 1:
        raise MotionsynthError(f"{'--samples' if task.needs_motion else '--n'} must be at least 1, got {samples}")
    try:
        request = _request(task, values, None)  # the flags' syntax first, before any file is read
        motion = load_motion(cast(str, source), layout) if task.needs_motion else None  # a required argument
        rig = _rig(values.get("rig"))
        method = open_task_method(task, values["model"], _options(task, values), values.get("data"),
                                  values.get("seed", 0))
        body = motion.skeleton if motion is not None else rig
        if body is not None:  # a motion of another rig: into the model's body and back (`methods.rig`)
            method = on_skeleton(method, body, task.name, motion.fps if motion is not None else None)
        request = _request(task, values, motion)
        request.window, request.skeleton, request.fps = method.window, method.skeleton, method.fps
        if task.one_sample:
            samples = 1
        frames = task.frames(request)
        joints = len(motion.skeleton if motion is not None else method.skeleton or [])
        _check_work(samples, frames, joints, "--samples" if task.needs_motion else "--n")
        work = task.make(request)
        start = time.perf_counter()
        results = method.complete(work.motion, work.mask, label=work.label, n_samples=samples,
                                  seed=values.get("seed", 0)).samples
        seconds = time.perf_counter() - start
    except RequestError as e:
        raise flag_error(e, source) from None
    if not task.needs_motion:
        _write_folder(results, out)
        typer.echo(f"wrote {len(results)} motions of {frames} frames to {out}")
        return
    assert motion is not None  # loaded: the task needs one
    paths = _write_motions(results, motion.name, out, values.get("preview"), values.get("mask_out"), work.mask,
                           layout)
    where = paths[0] if len(paths) == 1 else f"{paths[0]} … {paths[-1].name}"
    preview = values.get("preview")
    typer.echo(f"wrote {where} ({work.motion.num_frames} frames, {seconds:.1f} s)"
               + (f", preview {preview}" if preview is not None else ""))


def parse_layout(name: str | None) -> str | None:
    """``--layout``: a keypoint layout name (`io.keypoints.LAYOUTS`), checked, or None."""
    if name is None:
        return None
    from ..io.keypoints import LAYOUTS

    if name not in LAYOUTS:
        raise MotionsynthError(f"--layout must be one of {', '.join(LAYOUTS)}, got {name!r}")
    return name


def _rig(path: Path | None):
    """``--rig FILE``: the skeleton of a motion file (its rest pose), or None."""
    if path is None:
        return None
    from ..io import load_motion

    return load_motion(path).skeleton


def _check_given(task: Task, values: dict) -> None:
    """Refuse IN, -o or a required input flag left out. They are optional to Typer so that ``--option help`` needs
    only --model."""
    missing = ["argument IN"] if task.needs_motion and values.get("source") is None else []
    missing += ["option -o / --out"] if values.get("out") is None else []
    missing += [f"option {flag_for(name)}" for name in task.required if values.get(name) is None]
    if missing:
        raise MotionsynthError(f"missing {missing[0]} (motionsynth {task.name} --help)")


def task_command(task: Task):
    """The Typer command of ``task``: its signature is made from the task (IN when it reads a motion; its input flags;
    the common flags; the option shortcuts of its kind of mask), its help is the task's."""
    P = inspect.Parameter
    params = []

    def add(name, annotation, default=P.empty):
        params.append(P(name, P.KEYWORD_ONLY, default=default, annotation=annotation))

    # IN, -o and the required inputs are checked by `_check_given`, so that `--option help` needs only --model
    if task.needs_motion:
        add("source", Annotated[Optional[Path], typer.Argument(
            metavar="IN", help="Input motion: .bvh, .npz (motionsynth, AMASS or SMPL), .pkl (SMPL), .glb, or "
                               "keypoints with --layout (required).", show_default=False)], None)
        add("out", _FILE_OUTPUTS["out"], None)
    else:
        add("out", Annotated[Optional[Path], typer.Option(
            "-o", "--out", help="Output folder: sample_000.bvh, sample_000.npz, … (required).",
            show_default=False)], None)
    add("model", _COMMON["model"])
    for name in task.inputs:
        add(name, INPUT_FLAGS[name][1], None if name in task.required else _INPUT_DEFAULTS.get(name))
    if not task.one_sample:
        names = ("--samples",) if task.needs_motion else ("--n", "--samples")
        add("samples", Annotated[int, typer.Option(*names, help="Number of results K (best first).")], 1)
    add("seed", _COMMON["seed"], 0)
    for name, annotation in SHORTCUTS[task.mask].items():
        add(name, annotation, None)
    if task.mask != "nothing":  # nothing learns from data to make motion out of nothing
        add("data", _COMMON["data"], None)
    else:
        add("rig", _COMMON["rig"], None)
    add("option", _COMMON["option"], [])
    if task.needs_motion:
        add("layout", _COMMON["layout"], None)
        add("preview", _FILE_OUTPUTS["preview"], None)
        add("mask_out", _FILE_OUTPUTS["mask_out"], None)

    def command(**values) -> None:
        run_task(task, values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # read by typer
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = f"{task.name}_command"
    command.__doc__ = task.help
    return command


def register(app) -> None:
    """Add one command per task of `tasks.TASKS` to the main app."""
    for task in TASKS.values():
        app.command(task.name)(task_command(task))
