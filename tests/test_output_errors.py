"""Outputs that cannot be written, odd ``--model`` values, damaged checkpoint configs and damaged ``last.ckpt``: one
``error:`` line, exit code 2, no traceback, nothing written (issue 22, item 3); exported folders get the umask's
permissions."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motionsynth.checkpoint import PRETRAINED_ENV, resolve_model
from motionsynth.errors import MotionsynthError
from motionsynth.io import save_motion
from motionsynth.io.atomic import atomic_open, check_output, os_error_message
from motionsynth.registry import load_checkpoint

from helpers import cli_output, feature_batch, make_motion, make_skeleton, names_per_split, save_tiny, tiny_checkpoint

FAST = ["--restarts", "1", "--iters", "1,1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A clip, a tiny HM-VAE (window 32), a folder of BVH takes and a prepared cache of them."""
    from motionsynth.data.cache import prepare
    from test_postprocess import stepping_motion

    d = tmp_path_factory.mktemp("outputs")
    sk = make_skeleton()
    save_motion(make_motion(sk, 40, seed=1), d / "clip.bvh")
    save_motion(stepping_motion(60), d / "stepping.bvh")  # feet on a floor: align-floor has something to fit
    (d / "takes").mkdir()
    for i, name in enumerate(n for names in names_per_split(1).values() for n in names):
        save_motion(make_motion(sk, 70, seed=i), d / "takes" / f"{name}.bvh")
    prepare(d / "takes", "bvh-folder", d / "cache", workers=1, progress=False)
    return {"clip": d / "clip.bvh", "stepping": d / "stepping.bvh", "model": save_tiny(d / "model"),
            "takes": d / "takes", "cache": d / "cache"}


def _snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its kind, size and modification time."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _refused(capsys, args: list, where: Path) -> str:
    """Run ``motionsynth ARGS``: exit 2, one ``error:`` line, no traceback, nothing under ``where`` changed."""
    before = _snapshot(where)
    code, _, err = cli_output(capsys, *args)
    assert code == 2, err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]  # progress bars may come first
    assert "Traceback" not in err and [x for x in lines if "error" in x.lower()] == lines[-1:], err
    assert lines[-1].startswith("error:"), err
    assert _snapshot(where) == before
    return lines[-1]


# ---- every command with an output -----------------------------------------------------------------------------------
FILE_OUTPUTS = {  # command → its arguments, OUT the output file (its name decides the format)
    "convert": lambda w: ["convert", w["clip"], "OUT.npz"],
    "smooth": lambda w: ["smooth", w["clip"], "-o", "OUT.bvh"],
    "align-floor": lambda w: ["align-floor", w["stepping"], "-o", "OUT.bvh"],
    "inbetween": lambda w: ["inbetween", w["clip"], "--model", w["model"], "--keyframes", "0,39", *FAST, "-o",
                            "OUT.bvh"],
    "complete": lambda w: ["complete", w["clip"], "--model", w["model"], "--observe", "upper", *FAST, "-o",
                           "OUT.npz"],
    "predict": lambda w: ["predict", w["clip"], "--model", w["model"], "--given", "10", *FAST, "-o", "OUT.bvh"],
    "denoise": lambda w: ["denoise", w["clip"], "--model", w["model"], "--refine", "overlap", "-o", "OUT.bvh"],
    "--samples 2": lambda w: ["inbetween", w["clip"], "--model", w["model"], "--keyframes", "0,39", *FAST,
                              "--samples", "2", "-o", "OUT.bvh"],
    "--preview": lambda w: ["inbetween", w["clip"], "--model", w["model"], "--keyframes", "0,39", *FAST,
                            "-o", "GOOD/ok.bvh", "--preview", "OUT.png"],
    "--mask-out": lambda w: ["predict", w["clip"], "--model", w["model"], "--given", "10", *FAST,
                             "-o", "GOOD/ok.bvh", "--mask-out", "OUT.npz"],
    "render": lambda w: ["render", w["clip"], "-o", "OUT.png"],
    "bench --json": lambda w: ["bench", "inbetween", "--data", w["cache"], "--method", "slerp", "--split", "val",
                               "--limit", "1", "--no-progress", "--json", "OUT.json"],
}
FOLDER_OUTPUTS = {  # command → its arguments, OUT the output folder
    "generate": lambda w: ["generate", "--model", w["model"], "--n", "2", "-o", "OUT"],
    "synthesize": lambda w: ["synthesize", "--model", w["model"], "--count", "2", "--no-progress", "-o", "OUT"],
    "train": lambda w: ["train", "hmvae", "--data", w["cache"], "--max-steps", "1", "--no-progress", "--out", "OUT"],
    "data prepare": lambda w: ["data", "prepare", w["takes"], "--dataset", "bvh-folder", "--workers", "1",
                               "--no-progress", "--out", "OUT"],
    "data download": lambda w: ["data", "download", "bandai-namco", "--from", w["takes"] / "none.zip", "--no-progress",
                                "--out", "OUT"],
    "report": lambda w: ["report", w["clip"], "--task", "inbetween", "--keyframes", "0,39", "--model", w["model"],
                         *FAST, "-o", "OUT"],
}


def _args(template, world: dict, out: Path, good: Path) -> list[str]:
    """The command's arguments with OUT at ``out`` (keeping OUT's suffix) and GOOD at a writable folder."""
    def place(a):
        a = str(a)
        if a.startswith("OUT"):
            return str(out.with_name(out.name + a[3:]))
        return a.replace("GOOD", str(good))
    return [place(a) for a in template(world)]


def _unwritable_folder(tmp_path: Path) -> tuple[Path, Path]:
    """(a folder this process cannot write into, the tree to watch). A folder made read-only (0555) — unless this
    process writes there anyway (root): then a regular file stands where the folder would be, which no process can
    write under."""
    box = tmp_path / "box"
    box.mkdir()
    folder = box / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder.chmod(0o755)
        folder.rmdir()
        folder.write_text("a regular file, not a folder\n")
    return folder, box


@pytest.fixture()
def unwritable(tmp_path):
    folder, box = _unwritable_folder(tmp_path)
    yield folder, box
    if folder.is_dir():
        folder.chmod(0o755)


@pytest.mark.parametrize("command", list(FILE_OUTPUTS) + list(FOLDER_OUTPUTS))
def test_output_in_a_read_only_folder(world, command, unwritable, tmp_path, capsys):
    folder, box = unwritable
    template = FILE_OUTPUTS.get(command) or FOLDER_OUTPUTS[command]
    (tmp_path / "good").mkdir()
    err = _refused(capsys, _args(template, world, folder / "out", tmp_path / "good"), box)
    assert "read-only" in err and "/.out" not in err  # it names the folder (or the file in its place), no temporary
    assert list((tmp_path / "good").iterdir()) == []  # the other outputs of the command were not written either


@pytest.mark.parametrize("command", list(FILE_OUTPUTS) + list(FOLDER_OUTPUTS))
def test_output_under_a_regular_file(world, command, tmp_path, capsys):
    box = tmp_path / "box"
    box.mkdir()
    (box / "somefile.txt").write_text("not a folder\n")
    template = FILE_OUTPUTS.get(command) or FOLDER_OUTPUTS[command]
    (tmp_path / "good").mkdir()
    err = _refused(capsys, _args(template, world, box / "somefile.txt" / "sub" / "out", tmp_path / "good"), box)
    assert "somefile.txt" in err
    assert list((tmp_path / "good").iterdir()) == []


@pytest.mark.parametrize("command", ["convert", "inbetween", "--preview", "render", "bench --json"])
def test_file_output_that_is_a_folder(world, command, tmp_path, capsys):
    box = tmp_path / "box"
    box.mkdir()
    out = box / "taken"
    (tmp_path / "good").mkdir()
    args = _args(FILE_OUTPUTS[command], world, out, tmp_path / "good")
    Path(next(a for a in args if a.startswith(str(out)))).mkdir()  # a folder where the file would go
    _refused(capsys, args, box)


@pytest.mark.parametrize("command", list(FOLDER_OUTPUTS))
def test_folder_output_that_is_a_file(world, command, tmp_path, capsys):
    box = tmp_path / "box"
    box.mkdir()
    (box / "out").write_text("a file where the folder would go\n")
    err = _refused(capsys, _args(FOLDER_OUTPUTS[command], world, box / "out", tmp_path), box)
    assert str(box / "out") in err


def test_a_run_that_never_starts_leaves_no_folder(world, tmp_path, capsys):
    """train: a refusal while setting up (here Lightning's, an unknown precision) removes the run folder it made."""
    err = _refused(capsys, ["train", "hmvae", "--data", world["cache"], "--out", tmp_path / "runs" / "r",
                            "--max-steps", "1", "--precision", "bogus", "--no-progress"], tmp_path)
    assert "precision" in err and not (tmp_path / "runs").exists()


def test_models_export_into_an_unwritable_folder(world, unwritable, monkeypatch, capsys):
    folder, box = unwritable
    monkeypatch.setenv(PRETRAINED_ENV, str(folder / "pretrained"))
    _refused(capsys, ["models", "export", world["model"], "--name", "tiny"], box)


def test_a_full_disk_leaves_no_temporary_file(world, tmp_path, monkeypatch, capsys):
    """A write that fails half-way (no space left: no file name in the error) is one line, and the temporary file
    is gone."""
    import motionsynth.io

    def half_written(motion, path, layout=None):
        with atomic_open(path) as f:
            f.write("HIERARCHY\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(motionsynth.io, "save_motion", half_written)
    err = _refused(capsys, ["convert", world["clip"], tmp_path / "out.bvh"], tmp_path)
    assert "no space left" in err


def test_a_failing_preview_leaves_no_motion(world, tmp_path, monkeypatch, capsys):
    """The outputs of one task command are written together: a preview that fails after the motion was written
    leaves neither."""
    import importlib

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[1]))

    monkeypatch.setattr(importlib.import_module("motionsynth.viz.render"), "render", broken)
    _refused(capsys, ["inbetween", world["clip"], "--model", world["model"], "--keyframes", "0,39", *FAST,
                      "-o", tmp_path / "out" / "a.bvh", "--samples", "2", "--preview", tmp_path / "out" / "p.gif"],
             tmp_path)
    assert not (tmp_path / "out").exists()  # the folder made for the outputs is gone too


def test_os_errors_about_paths_become_one_line_and_others_stay_bugs(tmp_path):
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/x/y.bvh")) == \
        "/x/y.bvh: permission denied"
    assert os_error_message(OSError(errno.EROFS, "Read-only file system", "/ro/o.npz")) == \
        "/ro/o.npz: read-only file system"
    assert "x" * 80 + "…" in os_error_message(OSError(errno.ENAMETOOLONG, "File name too long", "x" * 5000))
    assert "no space left" in os_error_message(OSError(errno.ENOSPC, "No space left on device"))
    assert os_error_message(OSError(errno.EIO, "Input/output error", "/x")) is None  # not the user's doing
    assert os_error_message(OSError(errno.EACCES, "Permission denied")) is None  # no path: nothing to name
    assert os_error_message(FileNotFoundError(errno.ENOENT, "No such file", "/x")) is None  # commands check inputs
    assert os_error_message(RuntimeError("a bug")) is None
    (tmp_path / "f").write_text("x")
    assert os_error_message(FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "f"))).endswith(
        "exists and is not a folder")


def test_main_keeps_the_traceback_of_other_errors(world, tmp_path, monkeypatch):
    import motionsynth.io
    from motionsynth.cli import main

    def bug(motion, path, layout=None):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(motionsynth.io, "save_motion", bug)
    with pytest.raises(OSError, match="Input/output"):
        main(["convert", str(world["clip"]), str(tmp_path / "o.bvh")])


def test_check_output_accepts_what_can_be_written(tmp_path):
    assert check_output(tmp_path / "new" / "deeper" / "o.bvh") == tmp_path / "new" / "deeper" / "o.bvh"
    assert check_output(tmp_path, folder=True) == tmp_path
    assert not (tmp_path / "new").exists()  # checking makes nothing
    with pytest.raises(MotionsynthError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(MotionsynthError, match="NUL|null"):
        check_output("a\0b.bvh")


# ---- odd --model values --------------------------------------------------------------------------------------------
def _odd_models(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "file.txt").write_text("not a model\n")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    return {"empty": "", "blank": "  ", "no such user": "~nosuchuser-motionsynth/x", "too long": "m" * 5000,
            "too long in a folder": str(tmp_path / ("m" * 300) / "x"), "NUL": "a\0b",
            "a file": str(tmp_path / "file.txt"),
            "no config": str(tmp_path / "no-config"), "symlink loop": str(tmp_path / "loop"),
            "dangling symlink": str(tmp_path / "dangling"), "missing": str(tmp_path / "missing"),
            "a .ckpt": str(tmp_path / "last.ckpt")}


@pytest.mark.parametrize("case", ["empty", "blank", "no such user", "too long", "too long in a folder", "NUL",
                                  "a file", "no config", "symlink loop", "dangling symlink", "missing", "a .ckpt"])
def test_odd_model_values_are_one_line(world, case, tmp_path, pretrained, capsys):
    value = _odd_models(tmp_path)[case]
    with pytest.raises(MotionsynthError) as info:
        resolve_model(value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    if case != "NUL":  # a command line cannot carry a NUL byte
        out = tmp_path / "out"
        out.mkdir()
        _refused(capsys, ["generate", "--model", value, "-o", out / "g"], out)
        _refused(capsys, ["inbetween", world["clip"], "--model", value, "--keyframes", "0,1",
                          "-o", out / "o.bvh"], out)


# ---- damaged or out-of-range checkpoint configs --------------------------------------------------------------------
def _deep(n: int) -> str:
    return "model: " + "[" * n + "]" * n + "\n"


CONFIG_CASES = {  # what is done to config.yaml → words of the message
    "fps: fast": (lambda c: {**c, "fps": "fast"}, "fps"),
    "fps: -30": (lambda c: {**c, "fps": -30.0}, "fps"),
    "fps: .inf": (lambda c: {**c, "fps": float("inf")}, "fps"),
    "fps: true": (lambda c: {**c, "fps": True}, "fps"),
    "unknown section": (lambda c: {**c, "weights": "elsewhere"}, "unknown section"),
    "train is a list": (lambda c: {**c, "train": [1, 2]}, "train"),
    "negative size": (lambda c: {**c, "model": {**c["model"], "kernel": -3}}, "kernel"),
    "zero size": (lambda c: {**c, "model": {**c["model"], "global_latent": 0}}, "global_latent"),
    "huge size": (lambda c: {**c, "model": {**c["model"], "global_latent": 10**9}}, "global_latent"),
    "huge list entry": (lambda c: {**c, "model": {**c["model"], "channels": [8, 8, 16, 10**7]}}, "channels"),
    "list for a number": (lambda c: {**c, "model": {**c["model"], "kernel": [3, 3]}}, "kernel"),
    "string for an int": (lambda c: {**c, "model": {**c["model"], "window": "32"}}, "window"),
    "bool for an int": (lambda c: {**c, "model": {**c["model"], "kernel": True}}, "kernel"),
    "string for a float": (lambda c: {**c, "model": {**c["model"], "beta": "small"}}, "beta"),
    "nan float": (lambda c: {**c, "model": {**c["model"], "beta": float("nan")}}, "beta"),
    "nested wrong type": (lambda c: {**c, "model": {**c["model"], "traj": {"kernel": "seven"}}}, "traj.kernel"),
    "unknown setting": (lambda c: {**c, "model": {**c["model"], "wings": 2}}, "wings"),
    "model is a list": (lambda c: {**c, "model": [1]}, "model"),
    "bigger than the weights": (lambda c: {**c, "model": {**c["model"], "global_latent": 64}}, "do not fit"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONFIG_CASES) + ["deep YAML", "deep JSON labels", "deep JSON skeleton",
                                                        "stats truncated", "labels not JSON"])
def test_damaged_checkpoint_config_is_one_line(case, tmp_path, capsys):
    folder = save_tiny(tmp_path / "ckpt")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    words = "config.yaml"
    if case in CONFIG_CASES:
        change, words = CONFIG_CASES[case]
        (folder / "config.yaml").write_text(yaml.safe_dump(change(config)))
    elif case == "deep YAML":
        (folder / "config.yaml").write_text("family: hmvae\n" + _deep(100_000))
        words = "nested too deeply"
    elif case.startswith("deep JSON"):
        name = "labels.json" if "labels" in case else "skeleton.json"
        (folder / name).write_text("[" * 100_000 + "]" * 100_000)
        words = name
    elif case == "stats truncated":
        data = (folder / "stats.npz").read_bytes()
        (folder / "stats.npz").write_bytes(data[: len(data) // 2])
        words = "stats.npz"
    else:
        (folder / "labels.json").write_text("{content: [walk")
        words = "labels.json"
    with pytest.raises(MotionsynthError, match=words.replace(".", r"\.")) as info:
        load_checkpoint(folder)
    assert "\n" not in str(info.value)
    out = tmp_path / "out"
    out.mkdir()
    _refused(capsys, ["generate", "--model", folder, "-o", out / "g"], out)


def test_configured_network_is_checked_before_it_is_allocated(tmp_path, monkeypatch):
    """A config asking for a network far beyond its weights is refused from the meta device: no real tensor of
    that size is ever made."""
    folder = save_tiny(tmp_path / "ckpt")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["model"]["channels"] = [4096, 4096, 8192, 8192]  # some 10^10 parameters
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(MotionsynthError, match="more than the"):
        load_checkpoint(folder)
    monkeypatch.setattr("motionsynth.registry.MAX_PARAMETERS", 10**12)
    with pytest.raises(MotionsynthError, match="do not fit"):
        load_checkpoint(folder)


@pytest.mark.slow
def test_every_family_still_loads(tmp_path):
    from motionsynth.registry import FAMILIES

    sk = make_skeleton()
    _, stats = feature_batch(sk, 2, 32)
    for family in FAMILIES:
        assert load_checkpoint(tiny_checkpoint(tmp_path / family, family, sk, stats)).family == family


# ---- train --resume on a damaged last.ckpt -------------------------------------------------------------------------
class Payload:
    """Anything but plain data: what a pickle payload would carry."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    """A finished 2-step run (checkpoints/last.ckpt written)."""
    from helpers import run_cli

    run = tmp_path_factory.mktemp("run") / "r"
    assert run_cli("train", "hmvae", "--data", world["cache"], "--out", run, "--max-steps", "2", "--no-progress",
                   "--set", "train.ckpt_every=1", "--set", "train.window=32", "--set", "train.val_every=0",
                   "--set", "model.channels=[4,4,8,8]", "--set", "model.traj.channels=[2,2,4,4]") == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("damage,words", [
    ("truncated", "damaged checkpoint"),
    ("empty", "damaged checkpoint"),
    ("pickle payload", "not a plain checkpoint"),
    ("not a dict", "not a training checkpoint"),
    ("config.yaml damaged", "config.yaml"),
])
def test_resume_from_a_damaged_run_is_one_line(world, run, damage, words, tmp_path, capsys):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    if damage == "truncated":
        data = last.read_bytes()
        last.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    elif damage == "pickle payload":
        torch.save({"state_dict": {}, "payload": Payload()}, last)
    elif damage == "not a dict":
        torch.save([torch.zeros(2)], last)
    else:
        (copy / "config.yaml").write_text("family: hmvae\nmodel: " + "[" * 100_000 + "\n")
    err = _refused(capsys, ["train", "hmvae", "--data", world["cache"], "--out", copy, "--resume", "--max-steps", "3",
                            "--no-progress"], copy)
    assert words in err and (damage == "config.yaml damaged" or "last.ckpt" in err)


# ---- exported folders get the umask's permissions ----------------------------------------------------------------
def _modes(folder: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.rglob("*")]}


def test_exported_folders_follow_the_umask(world, tmp_path, monkeypatch):
    from motionsynth.checkpoint import export_model

    before = os.umask(0o022)
    try:
        saved = save_tiny(tmp_path / "saved")
        exported = export_model(world["model"], "tiny", root=tmp_path / "pretrained")
        assert _modes(saved) == _modes(exported) == {("dir", 0o755), ("file", 0o644)}
        os.umask(0o077)
        again = export_model(world["model"], "tiny", root=tmp_path / "pretrained", fp16=True)
        assert _modes(again) == {("dir", 0o700), ("file", 0o600)}
    finally:
        os.umask(before)
    assert np.isfinite(load_checkpoint(exported).stats.mean).all()
