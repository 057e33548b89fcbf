"""`motionsynth serve` as a real tool (issue 23, item 5): runs are jobs (queued → running → done, progress from the
method, an estimate of the time left, cancel), models offered by task and refused before any work in the user's
words, label vocabularies only for models that take labels, the shipped models with their licence when no --model
is named, and one log line per request.

Slow models are deliberate (`test_serve.SteppedMethod`: each progress step waits for the test), so that nothing here
depends on timing: each test asserts states, never durations.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from motionsynth import progress, tasks
from motionsynth.checkpoint import default_card, export_model
from motionsynth.data.features import FeatureStats, encode
from motionsynth.io import save_motion
from motionsynth.registry import load_method
from motionsynth.serve.app import create_app, shipped_task_models
from test_serve import FailingMethod, follow, free_port, replace_method, run, stepped, token, upload, wait_job

from helpers import LABELS, biped_motion, biped_skeleton, run_cli, tiny_checkpoint

KEYS = [0, 20, 45, 59]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clip and three tiny checkpoints of the biped: a CVAE that takes labels, an HM-VAE prior whose folder lists
    the data's labels but which takes none, and MEVA (denoising only)."""
    d = tmp_path_factory.mktemp("serve_jobs")
    sk = biped_skeleton()
    stats = FeatureStats.from_arrays([encode(biped_motion(sk, T=64, seed=i)) for i in range(3)])
    out = {"clip": d / "walk.bvh"}
    for family in ("cvae", "hmvae", "meva"):
        out[family] = tiny_checkpoint(d / family, family, sk, stats)
    for family in ("cvae", "hmvae"):
        (out[family] / "labels.json").write_text(json.dumps(LABELS))
    save_motion(biped_motion(sk, T=60, seed=1, name="walk"), out["clip"])
    return out


@pytest.fixture
def app(files, tmp_path):
    return create_app([files["cvae"], files["hmvae"], files["meva"]], tmp_path / "out")


@pytest.fixture
def client(app):
    with TestClient(app, headers=token(app)) as c:
        yield c


def folders(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def submit(client, **request) -> dict:
    r = client.post("/api/run", json=request)
    assert r.status_code == 202, r.text
    return r.json()


def slerp_job(clip_id: str) -> dict:
    return {"task": "inbetween", "model": "slerp", "upload": clip_id, "keyframes": KEYS}


def wait_progress(client, ident: str, at_least: float) -> dict:
    """The running job once its progress has reached ``at_least`` (a deadline only against a hung test)."""
    deadline = time.monotonic() + 120
    while (job := wait_job(client, ident, states=("running",)))["progress"] < at_least:
        assert time.monotonic() < deadline, job
        time.sleep(0.01)
    return job


# ---- jobs -------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_job_is_queued_then_runs_with_progress_then_is_done(app, client, files, tmp_path):
    """Two runs of a slow model: the second waits (queued, one job ahead) while the first runs; each reports the
    method's progress and an estimate of the time left, and ends done with progress 1 and its result."""
    slow = stepped(app, "slerp", steps=4)
    clip = upload(client, files["clip"]).json()
    first = submit(client, **slerp_job(clip["id"]))
    assert first["state"] in ("queued", "running") and first["progress"] == 0
    assert slow.started.wait(30)
    second = submit(client, **slerp_job(clip["id"]))  # answered at once, although the model is busy
    assert second["state"] == "queued" and second["ahead"] == 1
    assert client.get("/api/models").status_code == 200  # and everything else is answered too

    slow.advance(2)
    job = wait_progress(client, first["id"], 0.5)
    assert job["progress"] == 0.5 and job["eta"] is not None and job["eta"] >= 0
    assert client.get(f"/api/jobs/{second['id']}").json()["state"] == "queued"

    slow.advance(8)  # the rest of both
    done = wait_job(client, first["id"])
    assert done["state"] == "done" and done["progress"] == 1 and done["eta"] is None
    result = done["result"]
    assert result["id"] == done["run"] and len(result["samples"]) == 1 and result["frames"] == 60
    assert (tmp_path / "out" / result["id"] / "sample_000.bvh").is_file()
    later = wait_job(client, second["id"])
    assert later["state"] == "done" and later["run"] != done["run"]


@pytest.mark.slow
def test_a_queued_job_is_cancelled_at_once(app, client, files, tmp_path):
    slow = stepped(app, "slerp", steps=1)
    clip = upload(client, files["clip"]).json()
    first = submit(client, **slerp_job(clip["id"]))
    assert slow.started.wait(30)
    second = submit(client, **slerp_job(clip["id"]))
    r = client.post(f"/api/jobs/{second['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"  # at once, while the first still works
    assert client.get(f"/api/jobs/{first['id']}").json()["state"] == "running"
    slow.advance(2)
    assert wait_job(client, first["id"])["state"] == "done"
    assert wait_job(client, second["id"])["state"] == "cancelled"
    assert len(folders(tmp_path / "out")) == 2  # the upload and the first run: nothing of the cancelled one


@pytest.mark.slow
def test_a_running_job_is_cancelled_at_its_next_progress_step(app, client, files, tmp_path):
    slow = stepped(app, "slerp", steps=4)
    clip = upload(client, files["clip"]).json()
    job = submit(client, **slerp_job(clip["id"]))
    slow.advance(1)
    wait_progress(client, job["id"], 0.25)
    r = client.post(f"/api/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "running" and r.json()["cancel_requested"]
    slow.advance(1)  # the method's next step stops it
    ended = wait_job(client, job["id"])
    assert ended["state"] == "cancelled" and 0.25 <= ended["progress"] < 1 and "result" not in ended
    assert folders(tmp_path / "out") == [clip["id"]]  # nothing written
    slow.advance(4)
    assert run(client, **slerp_job(clip["id"])).status_code == 200  # the model is free again


@pytest.mark.slow
def test_a_method_without_progress_is_cancelled_when_its_call_returns(app, client, files, tmp_path):
    """A method that reports no step cannot stop half-way: its result is dropped when its call returns."""
    from test_serve_limits import slow_slerp

    slow = slow_slerp(app)
    clip = upload(client, files["clip"]).json()
    job = submit(client, **slerp_job(clip["id"]))
    assert slow.started.wait(30)
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["cancel_requested"]
    slow.release.set()
    assert wait_job(client, job["id"])["state"] == "cancelled"
    assert folders(tmp_path / "out") == [clip["id"]]


@pytest.mark.slow
def test_stopping_the_editor_cancels_its_jobs(app, files):
    """A long model call stops at its next step when the server stops, rather than hold its exit."""
    slow = stepped(app, "slerp", steps=4)
    with TestClient(app, headers=token(app)) as c:
        clip = upload(c, files["clip"]).json()
        running = submit(c, **slerp_job(clip["id"]))
        assert slow.started.wait(30)
        queued = submit(c, **slerp_job(clip["id"]))
    jobs = app.state.editor.jobs
    assert jobs.get(queued["id"]).state == "cancelled" and jobs.get(running["id"]).cancel_requested
    slow.advance(1)
    while jobs.get(running["id"]).state == "running":
        time.sleep(0.01)
    assert jobs.get(running["id"]).state == "cancelled"


@pytest.mark.slow
def test_a_job_that_ended_before_its_answer_carries_its_result(app, client, files, monkeypatch):
    """A quick job can be done before POST /api/run (or a cancel) answers: that answer then carries the result, as
    GET /api/jobs/ID does (the page read `result` of a done job that had none)."""
    editor = app.state.editor
    monkeypatch.setattr(editor.jobs.pool, "submit", lambda fn, *args: fn(*args))  # the job runs before the answer
    clip = upload(client, files["clip"]).json()
    job = submit(client, **slerp_job(clip["id"]))
    assert job["state"] == "done" and len(job["result"]["samples"]) == 1
    again = client.post(f"/api/jobs/{job['id']}/cancel").json()  # too late to cancel: still done, with its result
    assert again["state"] == "done" and again["result"]["id"] == job["result"]["id"]


def test_jobs_submitted_at_once_all_run():
    """Many submitters at once, fewer workers than jobs: each job waits for its turn on a worker, so the line of
    turns and the pool's queue must hold the jobs in one order (else workers wait for a job queued behind them)."""
    import threading

    from motionsynth.serve.jobs import Jobs
    from motionsynth.serve.work import WorkPool

    jobs = Jobs(WorkPool("runs", workers=2, queue=64), errors=lambda e: (500, str(e)))

    def work(job):
        with jobs.turn(job):
            return "run"

    start, made = threading.Barrier(24), []

    def submit():
        start.wait()
        made.append(jobs.submit("inbetween", "slerp", work))

    threads = [threading.Thread(target=submit) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 60  # only against a hung test: a deadlock never ends
    while any(j.state != "done" for j in made):
        assert time.monotonic() < deadline, [j.state for j in made]
        time.sleep(0.01)


def test_unknown_jobs_are_404(client):
    for ident in ["0" * 32, "../etc", "x"]:
        assert client.get(f"/api/jobs/{ident}").status_code == 404
        assert client.post(f"/api/jobs/{ident}/cancel").status_code == 404


@pytest.mark.slow
def test_a_failed_job_says_why(app, client, files):
    replace_method(app, "slerp", FailingMethod)
    clip = upload(client, files["clip"]).json()
    job = wait_job(client, submit(client, **slerp_job(clip["id"]))["id"])
    assert job["state"] == "failed" and job["status"] == 422 and job["error"] == "the model ran out of ideas"


@pytest.mark.slow
def test_a_real_method_reports_progress_and_stops_when_cancelled(files):
    """The HM-VAE prior reports its windows and optimisation steps (`progress.steps` in the windowed loop and its
    phases); a listener that raises `Cancelled` stops it at the next step."""
    method = load_method(files["hmvae"])
    motion = biped_motion(biped_skeleton(), T=60, seed=1)
    mask = tasks.keyframe_mask(60, len(motion.skeleton), KEYS)
    seen = []

    def listener(fraction):
        seen.append(fraction)
        if fraction >= 0.2:
            raise progress.Cancelled()

    with pytest.raises(progress.Cancelled), progress.listen(listener):
        method.complete(motion, mask)
    assert len(seen) > 3 and seen == sorted(seen) and 0 < seen[-2] < 0.2 <= seen[-1] < 1


def test_progress_steps_nest_and_share():
    seen = []

    def phases():
        for _ in progress.bar(range(4), False, "first"):  # the first loop of a step fills half of it
            pass
        for _ in progress.bar(range(2), False, "second"):  # the next one half of what is left
            pass

    with progress.listen(seen.append):
        for _ in progress.steps(range(2)):
            phases()
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert {0.125, 0.25, 0.375, 0.5, 0.75, 1.0} <= set(seen)
    assert list(progress.steps(range(3))) == [0, 1, 2]  # no listener: plain iteration


# ---- models by task, refusals before any work -------------------------------------------------------------------
@pytest.mark.slow
def test_models_are_offered_for_the_tasks_they_serve(client, files):
    models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert models[str(files["meva"])]["tasks"] == ["denoise"]
    assert "denoise" not in models[str(files["cvae"])]["tasks"]
    assert {"inbetween", "complete", "predict"} <= set(models[str(files["cvae"])]["tasks"])
    assert "denoise" in models[str(files["hmvae"])]["tasks"]
    assert "generate" not in models["slerp"]["tasks"]


@pytest.mark.slow
def test_a_model_that_cannot_do_the_task_is_refused_before_any_work(app, client, files, tmp_path, caplog):
    clip = upload(client, files["clip"]).json()
    with caplog.at_level(logging.INFO, "motionsynth.serve"):
        r = client.post("/api/run", json={"task": "inbetween", "model": str(files["meva"]), "upload": clip["id"],
                                          "keyframes": KEYS})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error.startswith("meva cannot do in-betweening: it does denoising. For in-betweening: cvae, hmvae, "), error
    assert "slerp" in error and "noisy" not in error  # the user's words, not the API's
    assert app.state.editor.jobs._jobs == {} and folders(tmp_path / "out") == [clip["id"]]
    assert any("/api/run refused (422): meva cannot do in-betweening" in m for m in caplog.messages)


# ---- labels -----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_labels_only_for_models_that_take_them(client, files):
    models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert models[str(files["cvae"])]["labels"] == LABELS
    assert models[str(files["hmvae"])]["labels"] == {}  # its folder lists the data's labels; it takes none
    assert models[str(files["meva"])]["labels"] == {} and models["slerp"]["labels"] == {}
    clip = upload(client, files["clip"]).json()
    body = {"task": "inbetween", "upload": clip["id"], "keyframes": KEYS}
    r = client.post("/api/run", json={**body, "model": str(files["hmvae"]), "label": {"content": "walk"}})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == ("hmvae is not conditioned on labels: drop the label, or use a model that takes "
                                 "labels: cvae")
    r = client.post("/api/run", json={**body, "model": str(files["cvae"]), "label": {"content": "fly"}})
    assert r.status_code == 422 and "knows no content 'fly'" in r.json()["error"]
    assert follow(client, client.post("/api/run", json={**body, "model": str(files["cvae"]),
                                                        "label": {"content": "walk"}})).status_code == 200


# ---- shipped models, licence, log ---------------------------------------------------------------------------------
@pytest.fixture
def shipped(files, pretrained, tmp_path):
    """Tiny models exported as shipped ones (into the test's own pretrained folder): a CVAE with the Bandai licence
    on its card, MEVA, and a classifier (an evaluator: not offered)."""
    sk = biped_skeleton()
    stats = FeatureStats.from_arrays([encode(biped_motion(sk, T=64, seed=0))])
    src = tiny_checkpoint(tmp_path / "src-cvae", "cvae", sk, stats)
    (src / "card.md").write_text(default_card("cvae", {}, data="cache/bandai2", dataset="bandai-namco"))
    export_model(src, "cvae-tiny", purpose="in-betweening in one forward pass")
    export_model(files["meva"], "meva-tiny", purpose="denoising")
    export_model(tiny_checkpoint(tmp_path / "src-clf", "classifier", sk, stats), "classifier-tiny")
    return pretrained


@pytest.mark.slow
def test_shipped_models_are_offered_when_no_model_is_named(shipped, tmp_path, monkeypatch):
    import motionsynth.serve.server as server

    served = {}

    class NoServer:
        def run(self):
            pass

    def make_server(app, *args, **kwargs):
        served["app"] = app
        return NoServer()

    log = logging.getLogger("motionsynth.serve")
    for name in ("handlers", "propagate", "level"):  # the command sets up its log on stderr: undone after
        monkeypatch.setattr(log, name, getattr(log, name))
    monkeypatch.setattr(server, "make_server", make_server)
    assert shipped_task_models() == ["cvae-tiny", "meva-tiny"]
    assert run_cli("serve", "--port", free_port(), "--out", tmp_path / "out") == 0
    models = {m["id"]: m for m in (m.describe() for m in served["app"].state.editor.models.values())}
    assert [i for i, m in models.items() if m["kind"] == "checkpoint"] == ["cvae-tiny", "meva-tiny"]
    cvae = models["cvae-tiny"]
    assert cvae["shipped"] and cvae["summary"] == "in-betweening in one forward pass"
    assert cvae["licence"] == "CC BY-NC 4.0" and "non-commercial use" in cvae["licence_text"]
    assert models["meva-tiny"]["tasks"] == ["denoise"]
    # a named model replaces them
    assert run_cli("serve", "--port", free_port(), "--out", tmp_path / "out", "--model", "meva-tiny") == 0
    assert [m.id for m in served["app"].state.editor.models.values() if m.checkpoint is not None] == ["meva-tiny"]
    assert run_cli("serve", "--port", free_port(), "--out", tmp_path / "out", "--no-shipped") == 0
    assert all(m.checkpoint is None for m in served["app"].state.editor.models.values())  # the baselines alone


@pytest.mark.slow
def test_one_log_line_per_request(client, files, caplog):
    with caplog.at_level(logging.INFO, "motionsynth.serve"):
        clip = upload(client, files["clip"]).json()
        done = run(client, **slerp_job(clip["id"]))
        client.post("/api/run", json={**slerp_job(clip["id"]), "model": "nothing"})
    lines = caplog.messages
    assert any(m.startswith(f"upload {clip['id'][:8]}: walk.bvh, 60 frames x 20 joints") for m in lines), lines
    assert any(" inbetween with slerp queued" in m for m in lines), lines
    ended = [m for m in lines if " inbetween with slerp done after " in m]
    assert len(ended) == 1 and done.job["run"] in ended[0], lines
    assert any("/api/run refused (422): unknown model 'nothing'" in m for m in lines), lines
