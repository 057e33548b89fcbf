"""`motionsynth serve`: the web editor's API (Starlette's TestClient and a live uvicorn server) and, marked `browser`,
the page itself in a real headless Chromium driven by Playwright (Debian's /usr/bin/chromium; the test fails, never
skips, when it is missing).

Set MOTIONSYNTH_SERVE_SCREENSHOT=PATH.png to keep screenshots of the page from the browser tests: PATH.png (a result),
PATH_job.png (a long job in progress) and PATH_refused.png (a model refused for a task before Run); the README's are
``MOTIONSYNTH_SERVE_SCREENSHOT=docs/img/serve.png pytest -m browser tests/test_serve.py``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from motionsynth.checkpoint import default_card
from motionsynth.data.features import FeatureStats, encode
from motionsynth.io import load_motion, read_bvh, save_motion
from motionsynth.serve.app import MAX_SAMPLES, TOKEN_HEADER, create_app, find_checkpoints
from motionsynth.serve.server import make_server

from helpers import (
    biped_motion,
    biped_skeleton,
    creature_skeleton,
    load_script,
    other_skeleton,
    run_cli,
    tiny_checkpoint,
)

CHROMIUM = os.environ.get("MOTIONSYNTH_CHROMIUM", "/usr/bin/chromium")
LIMIT = 256 * 1024
KEYS = [0, 20, 45, 59]


# ---- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    sk = biped_skeleton()
    stats = FeatureStats.from_arrays([encode(biped_motion(sk, T=64, seed=i)) for i in range(3)])
    out = {"ckpt": tiny_checkpoint(d / "runs" / "cvae" / "best", "cvae", sk, stats),
           "clip": d / "walk.bvh", "clip2": d / "turn.bvh", "other": d / "other.bvh", "bad": d / "bad.bvh",
           "creature": d / "creature.bvh"}
    save_motion(biped_motion(sk, T=60, seed=1, name="walk"), out["clip"])
    save_motion(biped_motion(sk, T=60, seed=2, name="turn"), out["clip2"])
    save_motion(biped_motion(other_skeleton(), T=30, seed=3), out["other"])
    save_motion(biped_motion(creature_skeleton(), T=30, seed=3), out["creature"])
    text = out["clip"].read_text().splitlines()
    motion_line = text.index("MOTION")
    text[motion_line + 4] = text[motion_line + 4].replace(" ", " x", 1)  # frame 2: a word where a number belongs
    out["bad"].write_text("\n".join(text) + "\n")
    out["bad_line"] = motion_line + 5
    return out


@pytest.fixture
def app(files, tmp_path):
    return create_app([files["ckpt"]], tmp_path / "out", max_upload_bytes=LIMIT)


@pytest.fixture
def client(app):
    with TestClient(app, headers=token(app)) as c:
        yield c


def token(app) -> dict:
    """The header the editor's page sends with every POST."""
    return {TOKEN_HEADER: app.state.token}


def upload(client, path: Path, name: str | None = None):
    with open(path, "rb") as f:
        return client.post("/api/upload", files={"file": (name or path.name, f, "application/octet-stream")})


def positions(encoded) -> np.ndarray:
    """The (T, J, 3) array of a response's ``positions`` (base64 of little-endian float32)."""
    import base64

    assert encoded["dtype"] == "float32"
    return np.frombuffer(base64.b64decode(encoded["data"]), "<f4").reshape(encoded["shape"])


def positions_close(a, b, atol=1e-2):
    a, b = (positions(x) if isinstance(x, dict) else x for x in (a, b))
    return np.allclose(np.asarray(a, float), np.asarray(b, float), atol=atol)


flat_bvh = load_script("serve_hardening").flat_bvh  # the tester's file, as measured there


# ---- models and uploads -----------------------------------------------------------------------------------------
def test_models_are_the_checkpoints_then_the_baselines(client, files):
    info = client.get("/api/models").json()
    models = {m["id"]: m for m in info["models"]}
    ckpt = models[str(files["ckpt"])]
    assert ckpt["kind"] == "checkpoint" and ckpt["family"] == "cvae" and ckpt["name"] == "cvae/best"
    assert "generate" in ckpt["tasks"] and ckpt["window"] == 32
    assert {"slerp", "zero-velocity"} <= set(models)
    assert "inbetween" in models["slerp"]["tasks"] and "generate" not in models["slerp"]["tasks"]
    assert all(not m["id"] in ("mean-pose", "nearest-neighbour") for m in info["models"])  # they need a training set
    assert set(info["tasks"]) == {"inbetween", "complete", "predict", "denoise", "generate"}
    assert info["max_upload_bytes"] == LIMIT


@pytest.mark.slow
def test_upload_returns_the_clip_for_display(client, files, tmp_path):
    r = upload(client, files["clip"])
    assert r.status_code == 200, r.text
    clip = r.json()
    assert clip["frames"] == 60 and clip["fps"] == 30 and clip["name"] == "walk"
    assert positions(clip["positions"]).shape == (60, 20, 3)
    expected = load_motion(files["clip"]).global_positions()
    assert positions_close(clip["positions"], expected)
    sk = clip["skeleton"]
    assert sk["names"][1] == "Hips" and sk["root"] == 1 and 0 not in sk["drawn"]  # the static Root is not drawn
    assert set(sk["groups"]) >= {"upper", "lower", "left_arm", "right_leg"}
    assert str(files["ckpt"]) in clip["models"] and "slerp" in clip["models"]
    assert (tmp_path / "out" / clip["id"] / "input.npz").is_file()


@pytest.mark.slow
def test_oversized_upload_is_refused(client, files, tmp_path):
    big = tmp_path / "big.bvh"
    big.write_bytes(files["clip"].read_bytes() + b" " * LIMIT)
    r = upload(client, big)
    assert r.status_code == 413
    assert "larger than the limit of 256 KiB" in r.json()["error"]
    # also without a Content-Length (chunked): the stream is cut at the limit
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bvh\"\r\n\r\n"
        for _ in range(40):
            yield b"0" * 16384
        yield b"\r\n--b--\r\n"
    r = client.post("/api/upload", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert not any((tmp_path / "out").iterdir())  # nothing written


@pytest.mark.slow
def test_malformed_upload_names_file_and_line(client, files, tmp_path):
    r = upload(client, files["bad"], name="clip.bvh")
    assert r.status_code == 422
    error = r.json()["error"]
    assert error.startswith(f"clip.bvh:{files['bad_line']}:"), error
    r = upload(client, files["clip"], name="notes.txt")
    assert r.status_code == 415 and "only BVH files" in r.json()["error"]
    r = client.post("/api/upload", content=b"HIERARCHY", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/api/upload", files={"other": ("x.bvh", b"x")})
    assert r.status_code == 422 and "field 'file'" in r.json()["error"]
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_a_non_humanoid_is_refused_and_another_humanoid_rig_is_retargeted(client, files, tmp_path):
    r = upload(client, files["creature"])
    assert r.status_code == 422
    assert "not a humanoid" in r.json()["error"] and "creature.bvh" in r.json()["error"]
    assert not any((tmp_path / "out").iterdir())
    r = upload(client, files["other"])  # the model's body with a renamed joint: a humanoid, so retargeted
    assert r.status_code == 200 and len(r.json()["models"]) > 1


def test_baselines_alone_take_any_skeleton(files, tmp_path):
    app = create_app([], tmp_path / "out")
    with TestClient(app, headers=token(app)) as c:
        r = upload(c, files["other"])
        assert r.status_code == 200 and "slerp" in r.json()["models"]


# ---- tasks ------------------------------------------------------------------------------------------------------
ENDED = ("done", "failed", "cancelled")


class Ran:
    """A run followed to its end, read like a response: 200 and the result when done; the job's status and error when
    it failed (499 when cancelled). ``job`` is the last job seen."""

    def __init__(self, status_code: int, body: dict, job: dict):
        self.status_code, self.body, self.job = status_code, body, job

    def json(self) -> dict:
        return self.body

    @property
    def text(self) -> str:
        return json.dumps(self.job)


def wait_job(http, ident: str, states=ENDED) -> dict:
    """Poll ``GET /api/jobs/ID`` until the job is in one of ``states`` (a deadline only against a hung test)."""
    deadline = time.monotonic() + 120
    while True:
        r = http.get(f"/api/jobs/{ident}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job {ident} never reached {states}: {job}"
        time.sleep(0.01)


def follow(http, r):
    """The end of the job a ``POST /api/run`` response started (`Ran`), or the response itself when it was refused."""
    if r.status_code != 202:
        return r
    job = wait_job(http, r.json()["id"])
    if job["state"] == "done":
        return Ran(200, job["result"], job)
    return Ran(job.get("status") or 499, {"error": job.get("error") or job["state"]}, job)


def run(client, **request):
    return follow(client, client.post("/api/run", json=request))


def test_inbetween_with_slerp_writes_the_result(client, files, tmp_path):
    clip = upload(client, files["clip"]).json()
    r = run(client, task="inbetween", model="slerp", upload=clip["id"], keyframes=KEYS)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["frames"] == 60 and len(res["samples"]) == 1 and res["id"] != clip["id"]
    assert [i for i, row in enumerate(res["observed"]) if set(row) == {"1"}] == KEYS
    sample = res["samples"][0]
    pos = positions(sample["positions"])
    assert positions_close(pos[KEYS], positions(clip["positions"])[KEYS])  # keyframes kept
    assert not positions_close(pos[30], positions(clip["positions"])[30], atol=1.0)  # the gap is synthesised
    d = client.get(sample["url"])
    assert d.status_code == 200 and 'filename="walk_inbetween_000.bvh"' in d.headers["content-disposition"]
    saved = tmp_path / "out" / res["id"] / "sample_000.bvh"
    assert d.content == saved.read_bytes()
    assert positions_close(read_bvh(saved).global_positions(), pos)
    record = (tmp_path / "out" / res["id"] / "run.json").read_text()
    assert '"model": "slerp"' in record and '"task": "inbetween"' in record


def test_glb_upload_and_glb_download(client, files, tmp_path):
    """A glTF binary uploads like its BVH (same motion); each result is offered as BVH and as .glb (issue 24)."""
    from motionsynth.io.gltf import parse_glb

    save_motion(load_motion(files["clip"]), tmp_path / "walk.glb")
    clip = upload(client, tmp_path / "walk.glb").json()
    assert clip["filename"] == "walk.glb" and clip["frames"] == 60
    assert positions_close(clip["positions"], upload(client, files["clip"]).json()["positions"], atol=1e-3)
    sample = run(client, task="inbetween", model="slerp", upload=clip["id"], keyframes=KEYS).json()["samples"][0]
    d = client.get(sample["glb_url"])
    assert d.status_code == 200 and 'filename="walk_inbetween_000.glb"' in d.headers["content-disposition"]
    assert sample["glb_download"] == "walk_inbetween_000.glb"
    assert positions_close(parse_glb(d.content).global_positions(), positions(sample["positions"]), atol=1e-3)
    (tmp_path / "bad.glb").write_bytes(d.content[:-64])
    r = upload(client, tmp_path / "bad.glb")
    assert r.status_code == 422 and r.json()["error"].startswith("bad.glb: truncated"), r.text


@pytest.mark.slow
def test_inbetween_with_a_checkpoint_and_samples(client, files):
    clip = upload(client, files["clip"]).json()
    r = run(client, task="inbetween", model=str(files["ckpt"]), upload=clip["id"], keyframes=KEYS, samples=3, seed=1)
    assert r.status_code == 200, r.text
    res = r.json()
    assert [s["file"] for s in res["samples"]] == ["sample_000.bvh", "sample_001.bvh", "sample_002.bvh"]
    for s in res["samples"]:
        motion = read_bvh(httpx_bytes(client, s["url"]))
        assert motion.num_frames == 60 and len(motion.skeleton) == 20


def httpx_bytes(client, url) -> Path:
    import tempfile

    r = client.get(url)
    assert r.status_code == 200
    f = tempfile.NamedTemporaryFile(suffix=".bvh", delete=False)
    f.write(r.content)
    f.close()
    return Path(f.name)


@pytest.mark.slow
@pytest.mark.parametrize("request_, frames", [
    ({"task": "complete", "observe": ["upper"]}, 60),
    ({"task": "predict", "given": 20, "frames": 80}, 80),
    ({"task": "generate", "frames": 40, "samples": 2}, 40),
])
def test_other_tasks_with_a_checkpoint(client, files, request_, frames):
    clip = upload(client, files["clip"]).json()
    body = {"model": str(files["ckpt"]), **request_}
    if body["task"] != "generate":
        body["upload"] = clip["id"]
    r = run(client, **body)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["frames"] == frames and len(res["samples"]) == body.get("samples", 1)
    observed = np.array([[c == "1" for c in row] for row in res["observed"]])
    if body["task"] == "complete":
        upper = clip["skeleton"]["groups"]["upper"]
        assert observed[:, upper].all() and not observed[:, clip["skeleton"]["groups"]["left_leg"]].any()
    if body["task"] == "predict":
        assert observed[:20].all() and not observed[20:].any()
    if body["task"] == "generate":
        assert not observed.any()


@pytest.mark.slow
def test_completion_with_slerp_and_denoising_with_a_filter(client, files):
    clip = upload(client, files["clip"]).json()
    groups = clip["skeleton"]["groups"]
    keep = [j for j in range(20) if j not in groups["left_arm"]]
    r = run(client, task="complete", model="zero-velocity", upload=clip["id"], observe=keep)
    assert r.status_code == 200, r.text
    r = run(client, task="denoise", model="gaussian", upload=clip["id"], samples=3)
    assert r.status_code == 200 and len(r.json()["samples"]) == 1  # denoising gives one result


@pytest.mark.slow
@pytest.mark.parametrize("change, status, message", [
    ({"model": "no-such-model"}, 422, "unknown model 'no-such-model'"),
    ({"task": "dance"}, 422, "unknown task 'dance'"),
    ({"keyframes": [0, 99]}, 422, "out of range for a motion of 60 frames"),
    ({"keyframes": []}, 422, "needs keyframes"),
    ({"upload": None}, 422, "upload a BVH file first"),
    ({"upload": "0" * 32}, 404, "no such upload"),
    ({"upload": "../../etc"}, 404, "no such upload"),
    ({"samples": MAX_SAMPLES + 1}, 422, "samples"),
    ({"label": {"content": "walk"}}, 422, "not conditioned on labels"),
    ({"task": "generate"}, 422, "slerp cannot do generation: it does in-betweening"),
    ({"task": "complete", "observe": ["tail"]}, 422, "no body part or joint named 'tail'"),
    ({"task": "predict", "model": "zero-velocity", "given": 0}, 422, "given must be 1..60"),
    ({"surprise": 1}, 422, "surprise"),
])
def test_bad_requests_are_clear_4xx(client, files, change, status, message):
    clip = upload(client, files["clip"]).json()
    body = {"task": "inbetween", "model": "slerp", "upload": clip["id"], "keyframes": KEYS, **change}
    r = run(client, **body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.mark.slow
def test_downloads_cannot_leave_the_output_folder(client, files, tmp_path):
    clip = upload(client, files["clip"]).json()
    res = run(client, task="inbetween", model="slerp", upload=clip["id"], keyframes=KEYS).json()
    (tmp_path / "secret.bvh").write_text("SECRET")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "sample_000.bvh").write_text("SECRET")
    link = "f" * 32
    (tmp_path / "out" / link).symlink_to(outside)  # a folder in out/ that points outside it
    good = res["id"]
    for url in [f"/api/files/{good}/..%2F..%2Fsecret.bvh", f"/api/files/{good}/../../secret.bvh",
                f"/api/files/..%2F{good}/sample_000.bvh", f"/api/files/{good}/run.json",
                f"/api/files/{good}/upload.json", f"/api/files/{clip['id']}/input.npz",
                f"/api/files/{link}/sample_000.bvh", "/api/files/%2e%2e/secret.bvh", "/api/files/../secret.bvh",
                f"/api/files/{good.upper()}/sample_000.bvh", f"/api/files/{good}/sample_000.bvh%00.txt",
                f"/api/files/{good}/sample_9999.bvh"]:
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"SECRET" not in r.content
    assert client.get(f"/api/files/{good}/sample_000.bvh").status_code == 200


@pytest.mark.slow
def test_concurrent_requests_get_their_own_results(files, tmp_path):
    """Requests at once over a live server: distinct ids and folders, each result from its own clip and keyframes."""
    app = create_app([files["ckpt"]], tmp_path / "out", max_upload_bytes=LIMIT)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=120, headers=token(app)) as http:
        clips = {}
        for key in ("clip", "clip2"):
            with open(files[key], "rb") as f:
                clips[key] = http.post("/api/upload", files={"file": (files[key].name, f)}).json()
        jobs = [(key, model, keys) for key in clips for model in ("slerp", str(files["ckpt"]))
                for keys in ([0, 30, 59], [0, 10, 40, 59])]

        def job(spec):
            key, model, keys = spec
            with httpx.Client(base_url=url, timeout=120, headers=token(app)) as h:
                r = follow(h, h.post("/api/run", json={"task": "inbetween", "model": model,
                                                       "upload": clips[key]["id"], "keyframes": keys, "samples": 2}))
                assert r.status_code == 200, r.text
                res = r.json()
                return spec, res, [h.get(s["url"]).content for s in res["samples"]]

        with ThreadPoolExecutor(len(jobs)) as pool:
            done = list(pool.map(job, jobs))
    ids = [res["id"] for _, res, _ in done]
    assert len(set(ids)) == len(ids) == len(jobs)
    for (key, model, keys), res, contents in done:
        source = positions(clips[key]["positions"])
        assert [i for i, row in enumerate(res["observed"]) if set(row) == {"1"}] == keys
        for sample, content in zip(res["samples"], contents):
            pos = positions(sample["positions"])
            assert positions_close(pos[keys], source[keys], atol=0.5), (key, model, keys)
            path = tmp_path / "out" / res["id"] / sample["file"]
            assert path.read_bytes() == content
            assert positions_close(read_bvh(path).global_positions(), pos)


# ---- the command ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port must be 1..65535"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    (["--max-upload-mb", "inf"], "--max-upload-mb must be positive and finite, got inf"),
    (["--max-upload-mb", "nan"], "--max-upload-mb must be positive and finite, got nan"),
    (["--max-upload-mb", "-5"], "--max-upload-mb must be positive"),
    (["--max-joint-frames", "0"], "--max-joint-frames must be a whole number >= 1"),
    (["--max-joint-frames", "inf"], "--max-joint-frames must be a whole number >= 1"),
    (["--max-result-joint-frames", "2.5"], "--max-result-joint-frames must be a whole number >= 1"),
    (["--keep-hours", "nan"], "--keep-hours must be a finite number > 0"),
    (["--keep-mb", "-1"], "--keep-mb must be a finite number > 0"),
    (["--workers", "0"], "--workers must be a whole number >= 1"),
    (["--body-timeout", "inf"], "--body-timeout must be a finite number > 0"),
    (["--header-timeout", "0"], "--header-timeout must be a finite number > 0"),
    (["--model", "no/such/folder"], "no/such/folder"),
    (["--models", "no/such/folder"], "not a folder"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert run_cli("serve", *args, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1, err


def test_busy_port_is_a_clear_error(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert run_cli("serve", "--port", port, "--out", tmp_path / "out") == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_models_folder_offers_task_checkpoints_only(files, tmp_path):
    root = files["ckpt"].parents[1]  # runs/
    sk = biped_skeleton()
    stats = FeatureStats.from_arrays([encode(biped_motion(sk, T=64, seed=0))])
    tiny_checkpoint(tmp_path / "runs" / "clf" / "model", "classifier", sk, stats)
    tiny_checkpoint(tmp_path / "runs" / "diff" / "best", "diffusion", sk, stats)
    assert find_checkpoints(root) == [files["ckpt"]]
    assert find_checkpoints(tmp_path / "runs") == [tmp_path / "runs" / "diff" / "best"]


# ---- deliberately slow models -------------------------------------------------------------------------------------
def replace_method(app, model: str, mixin: type, **attributes):
    """Make ``model``'s method of ``app`` an instance of ``mixin`` over its own class, with its state (options,
    vocabulary, tasks — everything the editor reads stays the method's) and ``attributes``: ``mixin.complete`` runs
    first and may call ``super().complete``."""
    entry = app.state.editor.models[model]
    inner = entry.method()
    method = object.__new__(type(f"{mixin.__name__}{type(inner).__name__}", (mixin, type(inner)), {}))
    method.__dict__.update(inner.__dict__)
    method.__dict__.update(attributes)
    entry._method = method
    return method


class SteppedMethod:
    """``complete`` first takes ``steps`` steps of `motionsynth.progress` (the editor's progress and Cancel), each
    waiting for `advance` — a deliberately slow model whose progress the test controls."""

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            self.allowed.release()

    def complete(self, *args, **kwargs):
        from motionsynth import progress

        self.started.set()
        for _ in progress.steps(range(self.steps)):
            assert self.allowed.acquire(timeout=60), "never advanced"
        return super().complete(*args, **kwargs)


def stepped(app, model: str, steps: int = 8) -> SteppedMethod:
    """Make ``model`` of ``app`` a `SteppedMethod`."""
    return replace_method(app, model, SteppedMethod, steps=steps, started=threading.Event(),
                          allowed=threading.Semaphore(0))


class FailingMethod:
    """``complete`` fails as a method refusing its input would."""

    def complete(self, *args, **kwargs):
        from motionsynth.errors import MotionsynthError

        raise MotionsynthError("the model ran out of ideas")


# ---- the page in a real browser ---------------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, host: str = "127.0.0.1", **options):
    """The editor's server (`serve.server.make_server`: uvicorn with its timeouts; ``options`` are its keywords)
    serving ``app`` on a free port of ``host`` in a thread; yields the base URL."""
    port = free_port(host)
    server = make_server(app, host, port, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def chromium():
    """Debian's Chromium through Playwright (never Playwright's own browser download), software WebGL."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium; "
                    f".ci/run installs it) or MOTIONSYNTH_CHROMIUM=/path/to/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str = "") -> None:
    """Keep a screenshot of ``page`` when $MOTIONSYNTH_SERVE_SCREENSHOT (PATH.png) asks: PATH.png, or PATH_NAME.png."""
    shot = os.environ.get("MOTIONSYNTH_SERVE_SCREENSHOT")
    if shot:
        path = Path(shot)
        page.screenshot(path=str(path.with_name(f"{path.stem}_{name}{path.suffix}") if name else path))


@pytest.mark.browser
def test_editor_in_a_real_browser(files, tmp_path):
    """Load the page, upload a clip, add a keyframe on the timeline, in-between with SLERP, download the BVH; then
    a checkpoint with two samples; the 3D view draws and the page logs no error."""
    from playwright.sync_api import expect

    app = create_app([files["ckpt"]], tmp_path / "out", max_upload_bytes=LIMIT,
                     allowed_hosts=["127.0.0.1", "localhost"])
    clip = load_motion(files["clip"])
    with chromium() as browser, live_server(app) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 760}, accept_downloads=True)
        problems = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#status")).to_have_text("Load a BVH clip to start.")
        assert page.locator("#view canvas").count() == 1 and page.locator("#webgl-error").is_hidden()

        page.set_input_files("#file", str(files["clip"]))
        expect(page.locator("#clip-info")).to_contain_text("60 frames at 30 fps, 20 joints")
        page.select_option("#task", "inbetween")
        page.click("#key-clear")
        expect(page.locator("#keyframes")).to_contain_text("No keyframes")
        page.fill("#key-every", "59")
        page.click("#key-fill")
        expect(page.locator("#keyframes")).to_have_text("Keyframes: 0, 59")
        box = page.locator("#timeline").bounding_box()  # a click on the timeline's middle adds a keyframe
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.locator("#keyframes")).to_have_text(re.compile(r"Keyframes: 0, (29|30), 59"))
        keys = [int(k) for k in page.inner_text("#keyframes").split(":")[1].split(",")]

        page.select_option("#model", "slerp")
        page.click("#run")
        link = page.locator("a.download")
        expect(link).to_have_count(1, timeout=60_000)
        expect(page.locator("#status")).to_contain_text("Done in")
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == "walk_inbetween_000.bvh"
        saved = tmp_path / "download.bvh"
        download.save_as(saved)
        result = read_bvh(saved)
        assert result.num_frames == clip.num_frames
        assert positions_close(result.global_positions()[keys], clip.global_positions()[keys])
        assert not positions_close(result.global_positions()[15], clip.global_positions()[15], atol=1.0)

        page.select_option("#model", str(files["ckpt"]))
        page.fill("#samples", "2")
        page.click("#run")
        expect(page.locator("a.download")).to_have_count(2, timeout=60_000)
        expect(page.locator("#labels3d div")).to_have_count(3)  # input and two samples
        page.wait_for_timeout(300)
        screenshot(page)
        # a bad upload shows the server's message on the page
        page.set_input_files("#file", str(files["creature"]))
        expect(page.locator("#status")).to_contain_text("not a humanoid")
        long = tmp_path / "long.bvh"  # 0.17 MiB, but 30,000 frames x 22 joints: over the editor's work limit
        long.write_bytes(flat_bvh(30_000))
        page.set_input_files("#file", str(long))
        expect(page.locator("#status")).to_contain_text("660,000 joint-frames")
        problems = [p for p in problems if "422" not in p and "413" not in p]  # the refused uploads' responses
        assert not problems, problems


@pytest.mark.browser
def test_editor_jobs_and_refusals_in_a_real_browser(files, tmp_path):
    """The editor as a tool: models listed by task and a model that cannot do a task refused on the page before Run;
    label pickers only for a model that takes labels; a long job in progress (progress bar, percent, time left) and
    cancelled; a failed run leaves no stale result; the request log; no redraw while paused."""
    from playwright.sync_api import expect

    sk = biped_skeleton()
    stats = FeatureStats.from_arrays([encode(biped_motion(sk, T=64, seed=i)) for i in range(3)])
    labelled = tiny_checkpoint(tmp_path / "models" / "cvae-labelled", "cvae", sk, stats)
    (labelled / "labels.json").write_text(json.dumps({"content": ["walk", "run"], "style": ["calm"]}))
    (labelled / "card.md").write_text(default_card("cvae", {}, data="cache/bandai2", dataset="bandai-namco"))
    prior = tiny_checkpoint(tmp_path / "models" / "hmvae", "hmvae", sk, stats)
    (prior / "labels.json").write_text(json.dumps({"content": ["walk", "run"]}))  # the data's: it takes none
    meva = tiny_checkpoint(tmp_path / "models" / "meva", "meva", sk, stats)
    app = create_app([labelled, prior, meva], tmp_path / "out", allowed_hosts=["127.0.0.1", "localhost"])
    slow = stepped(app, str(labelled), steps=8)
    replace_method(app, "zero-velocity", FailingMethod)
    with chromium() as browser, live_server(app) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        problems = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.set_input_files("#file", str(files["clip"]))
        expect(page.locator("#clip-info")).to_contain_text("60 frames")

        # models by task: MEVA is not offered for in-betweening, and the note says why
        page.select_option("#task", "inbetween")
        expect(page.locator("#model option[value='slerp']")).to_have_count(1)
        expect(page.locator(f"#model option[value='{meva}']")).to_have_count(0)
        expect(page.locator("#model-note")).to_have_text("Not for in-betweening: meva (denoising only).")
        # label pickers only for the model that takes labels
        page.select_option("#model", str(prior))
        expect(page.locator("#labels")).to_be_hidden()
        page.select_option("#model", str(labelled))
        expect(page.locator("#labels select")).to_have_count(2)
        expect(page.locator("#labels select[aria-label='content'] option")).to_have_text(
            ["content: any", "content: walk", "content: run"])
        expect(page.locator("#model-licence")).to_have_text("Licence: CC BY-NC 4.0")
        assert "non-commercial use" in page.get_attribute("#model-licence", "title")

        # denoise with MEVA, then ask it for in-betweening: refused before Run, the stale result gone
        page.select_option("#task", "denoise")
        expect(page.locator(f"#model option[value='{labelled}']")).to_have_count(0)
        page.select_option("#model", str(meva))
        page.click("#run")
        expect(page.locator("#status")).to_contain_text("Done in", timeout=60_000)
        expect(page.locator("#result-section")).to_be_visible()
        page.select_option("#task", "inbetween")
        note = page.locator("#model-note.refused")
        expect(note).to_contain_text("meva cannot do in-betweening: it does denoising. Switched to cvae-labelled")
        expect(page.locator("#result-section")).to_be_hidden()
        expect(page.locator("#labels3d div")).to_have_count(1)  # the input alone
        assert page.input_value("#model") == str(labelled)
        page.wait_for_timeout(300)
        screenshot(page, "refused")

        # a long job: queued/running with a progress bar, the percentage and the time left; then cancelled
        page.click("#run")
        assert slow.started.wait(60)
        expect(page.locator("#job")).to_be_visible()
        expect(page.locator("#job-title")).to_have_text("In-betweening with cvae-labelled")
        expect(page.locator("#run")).to_be_disabled()
        slow.advance(3)
        expect(page.locator("#job-text")).to_contain_text("37 %", timeout=30_000)
        expect(page.locator("#job-text")).to_contain_text("left")
        assert float(page.get_attribute("#job-progress", "value")) == pytest.approx(0.375)
        expect(page.locator("#log li").first).to_contain_text("in-betweening · cvae-labelled · running 37 %")
        page.wait_for_timeout(300)
        screenshot(page, "job")
        page.click("#cancel")
        expect(page.locator("#job-text")).to_contain_text("Cancelling")
        slow.advance(1)
        expect(page.locator("#status")).to_have_text("Cancelled: nothing was kept.", timeout=30_000)
        expect(page.locator("#job")).to_be_hidden()
        expect(page.locator("#log li").first).to_contain_text("cancelled")

        # a run that fails leaves no stale result on screen
        page.select_option("#model", "slerp")
        expect(page.locator("#run")).to_be_enabled()
        page.click("#run")
        expect(page.locator("a.download")).to_have_count(1, timeout=60_000)
        page.select_option("#model", "zero-velocity")
        expect(page.locator("#model")).to_have_value("zero-velocity")
        expect(page.locator("#run")).to_be_enabled()
        page.click("#run")
        expect(page.locator("#status")).to_have_text("the model ran out of ideas", timeout=60_000)
        expect(page.locator("#result-section")).to_be_hidden()
        expect(page.locator("#labels3d div")).to_have_count(1)
        states = page.locator("#log li").all_inner_texts()
        assert [t.split(" · ")[2].split()[0] for t in states] == ["failed", "done", "cancelled", "done"], states
        # "show" in the log brings a result back
        page.locator("#log li", has_text="slerp").locator("button").click()
        expect(page.locator("a.download")).to_have_count(1)
        expect(page.locator("#labels3d div")).to_have_count(2)
        expect(page.locator("#status")).to_contain_text("Showing the")

        # generation: the view and the timeline are sized to the generated motion, without the input
        slow.advance(100)
        page.select_option("#task", "generate")
        expect(page.locator("#labels3d div")).to_have_count(0)
        page.select_option("#model", str(labelled))
        page.fill("#gen-frames", "40")
        page.select_option("#labels select[aria-label='content']", "run")
        page.click("#run")
        expect(page.locator("a.download")).to_have_count(1, timeout=60_000)
        expect(page.locator("#labels3d div")).to_have_count(1)
        expect(page.locator("#frame-label")).to_have_text(re.compile(r"^[0-9]+ / 39$"))

        # paused and untouched, the view is not redrawn; a step of the cursor redraws it
        page.keyboard.press("ArrowRight")  # pauses
        page.wait_for_timeout(300)
        before = int(page.get_attribute("body", "data-renders"))
        page.wait_for_timeout(700)
        assert int(page.get_attribute("body", "data-renders")) == before
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"Number(document.body.dataset.renders) > {before}")
        problems = [p for p in problems if "422" not in p]
        assert not problems, problems


@pytest.mark.browser
@pytest.mark.real_data
def test_the_editor_runs_a_shipped_model_on_a_z_up_rig_of_another_skeleton(data_dir, tmp_path):
    """A fair1 clip (27 joints, Z up, Mixamo names) with the shipped CVAE (the 22-joint Bandai body): uploaded,
    in-betweened through retargeting, downloaded on its own rig with the keyframes exactly as given."""
    from playwright.sync_api import expect

    from motionsynth.checkpoint import resolve_model

    rig = data_dir / "rigs" / "fair1_dab.bvh"
    app = create_app([resolve_model("cvae-bandai")], tmp_path / "out", allowed_hosts=["127.0.0.1", "localhost"])
    clip = load_motion(rig)
    with chromium() as browser, live_server(app) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 760}, accept_downloads=True)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.set_input_files("#file", str(rig))
        expect(page.locator("#clip-info")).to_contain_text("27 joints")
        page.select_option("#task", "inbetween")
        page.click("#key-clear")
        page.fill("#key-every", "30")
        page.click("#key-fill")
        page.select_option("#model", str(resolve_model("cvae-bandai")))
        page.click("#run")
        link = page.locator("a.download")
        expect(link).to_have_count(1, timeout=120_000)
        page.wait_for_timeout(500)
        screenshot(page, "rig")
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "result.bvh"
        info.value.save_as(saved)
    result = read_bvh(saved)
    assert result.skeleton.names == clip.skeleton.names and result.num_frames == clip.num_frames
    keys = [k for k in range(0, clip.num_frames, 30)]
    np.testing.assert_allclose(result.global_positions()[keys], clip.global_positions()[keys], atol=1e-3)
