"""`motionsynth serve` under load and abuse (issue 22, "Hardening II"): an outside tester's cases rerun as tests.

Work is bounded by frames × joints (checked from a BVH header and a run's numbers before any array is built), the
event loop never waits for parsing or a model, slow clients are cut off, POSTs need the page's token and the editor's
own origin, bad numbers are one-line 422s on a connection that stays open, and request folders expire. Every server
here listens on a loopback address with short timeouts; loops are a handful of sockets or requests. No timed
assertions: each test asserts what happened (status, files, which request answered while another was at work).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from motionsynth.errors import MotionsynthError
from motionsynth.io import save_motion
from motionsynth.serve.app import (
    DEFAULT_MAX_JOINT_FRAMES,
    DEFAULT_MAX_RESULT_JOINT_FRAMES,
    TOKEN_HEADER,
    EditorLimits,
    allowed_hosts_for,
    create_app,
    declared_size,
)
from test_serve import flat_bvh, follow, live_server, positions, replace_method, token, upload, wait_job

from helpers import biped_motion, biped_skeleton

KEYS = [0, 20, 45, 59]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve_limits") / "walk.bvh"
    save_motion(biped_motion(biped_skeleton(), T=60, seed=1, name="walk"), path)
    return path


def folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.is_dir()] if out.exists() else []


def client_for(app) -> TestClient:
    return TestClient(app, headers=token(app))


def multipart_stream(path: Path, name: str = "long.bvh", chunk: int = 256 * 1024):
    """A multipart body streamed from ``path`` (the client never holds the file), and its content type."""
    def body():
        yield (f'--b\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
               f"Content-Type: application/octet-stream\r\n\r\n").encode()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                yield block
        yield b"\r\n--b--\r\n"
    return body(), "multipart/form-data; boundary=b"


# ---- work limits ------------------------------------------------------------------------------------------------
def test_declared_size_reads_only_the_header():
    data = flat_bvh(1234, joints=7)
    frames, joints, end = declared_size(data)
    assert (frames, joints) == (1234, 7) and data[end - 6:end] == b"MOTION"
    assert declared_size(data.replace(b"\n", b"\r")) is not None  # classic Mac line ends
    assert declared_size(b"HIERARCHY\nROOT a\n{\n") is None  # no MOTION yet: the reader names the problem
    assert declared_size(data.replace(b"Frames: 1234", b"Frames: 1e9")) is None


@pytest.mark.parametrize("frames", [100_000, 1_000_000, 3_490_000])  # 0.57, 5.7 and 19.97 MiB, under 20 MiB
def test_long_uploads_are_refused_from_the_header(frames, tmp_path):
    """The tester's uploads (20–30 s and +1.3 GB, then 500 MemoryError): now 413 from the header, with a small peak
    of memory (the body streams to a temporary file; only its first MiB is read) and nothing left on disk."""
    path = tmp_path / "long.bvh"
    path.write_bytes(flat_bvh(frames))
    assert path.stat().st_size < 20 * 1024 * 1024
    out = tmp_path / "out"
    app = create_app([], out)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60, headers=token(app)) as http:
        body, kind = multipart_stream(path)
        tracemalloc.start()
        try:
            r = http.post("/api/upload", content=body, headers={"Content-Type": kind})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert f"{frames:,} frames x 22 joints" in error and "--max-joint-frames" in error and "\n" not in error
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"  # parsing it took GBs
    assert folders(out) == []


def test_the_reader_refuses_what_the_header_check_missed(clip, tmp_path, monkeypatch):
    """The reader is given the editor's limit too (`parse_bvh(max_joint_frames=)`): a header the app's quick look
    cannot read is still refused before its frames are parsed."""
    import motionsynth.serve.app as app_module

    monkeypatch.setattr(app_module, "declared_size", lambda data: None)
    app = create_app([], tmp_path / "out", limits=EditorLimits(max_joint_frames=1_000))
    with client_for(app) as c:
        r = upload(c, clip)  # 60 frames x 20 joints
    assert r.status_code == 413 and "the editor's limit of 1,000 joint-frames" in r.json()["error"]
    assert folders(tmp_path / "out") == []


def test_an_upload_with_more_lines_than_its_header_declares(tmp_path):
    data = flat_bvh(50_000).replace(b"Frames: 50000", b"Frames: 10")
    app = create_app([], tmp_path / "out")
    with client_for(app) as c:
        r = c.post("/api/upload", files={"file": ("liar.bvh", data)})
    assert r.status_code == 422 and "far more lines after MOTION than the 10 frames" in r.json()["error"]
    assert folders(tmp_path / "out") == []


def test_runs_are_refused_by_their_size_before_they_run(clip, tmp_path):
    """frames x joints of the task's motion and samples x frames x joints of the result, from the request's
    numbers: the tester's predict of 20,000 frames x 16 samples (84 s, 3.4 GB) is a 422 before any work."""
    app = create_app([], tmp_path / "out", limits=EditorLimits(max_joint_frames=5_000, max_result_joint_frames=8_000))
    entry = app.state.editor.models["zero-velocity"]
    calls, inner = [], entry.method()

    class Counting:
        def complete(self, *args, **kwargs):
            calls.append(1)
            return inner.complete(*args, **kwargs)

        def __getattr__(self, name):  # the rest of the method (window, Options, …) is the wrapped one's
            return getattr(inner, name)

    entry._method = Counting()
    with client_for(app) as c:
        clip_id = upload(c, clip).json()["id"]
        body = {"task": "predict", "model": "zero-velocity", "upload": clip_id, "given": 30}
        r = c.post("/api/run", json={**body, "frames": 20_000, "samples": 16})
        assert r.status_code == 422 and "--max-joint-frames" in r.json()["error"]  # 20,000 x 20 > 5,000
        r = c.post("/api/run", json={**body, "frames": 200, "samples": 3})  # 4,000 joint-frames; 12,000 in all
        assert r.status_code == 422, r.text
        assert "the result (3 samples of 200 frames)" in r.json()["error"]
        assert "--max-result-joint-frames" in r.json()["error"]
        assert calls == []
        r = follow(c, c.post("/api/run", json={**body, "frames": 200, "samples": 2}))
        assert r.status_code == 200 and calls == [1]
        assert positions(r.json()["samples"][1]["positions"]).shape == (200, 20, 3)
        tiny = create_app([], tmp_path / "out2", limits=EditorLimits(max_joint_frames=1_000))
        with client_for(tiny) as c2:
            r = upload(c2, clip)  # 60 frames x 20 joints
            assert r.status_code == 413 and "1,200 joint-frames" in r.json()["error"]


def test_the_limits_are_offered_to_the_page(tmp_path):
    with client_for(create_app([], tmp_path / "out")) as c:
        info = c.get("/api/models").json()
    assert info["max_joint_frames"] == DEFAULT_MAX_JOINT_FRAMES
    assert info["max_result_joint_frames"] == DEFAULT_MAX_RESULT_JOINT_FRAMES


def test_the_command_defaults_are_the_apps():
    from motionsynth.cli import serve

    assert serve.DEFAULT_MAX_JOINT_FRAMES == DEFAULT_MAX_JOINT_FRAMES
    assert serve.DEFAULT_MAX_RESULT_JOINT_FRAMES == DEFAULT_MAX_RESULT_JOINT_FRAMES


# ---- never blocking ---------------------------------------------------------------------------------------------
class SlowMethod:
    """``complete`` signals ``started``, then waits for ``release`` (a deliberately slow model over a real one, whose
    options, vocabulary and tasks stay: `test_serve.replace_method`)."""

    def complete(self, *args, **kwargs):
        self.started.set()
        assert self.release.wait(60), "never released"
        return super().complete(*args, **kwargs)


def slow_slerp(app) -> SlowMethod:
    return replace_method(app, "slerp", SlowMethod, started=threading.Event(), release=threading.Event())


def test_other_clients_are_answered_while_a_run_works(clip, tmp_path):
    """The event loop never waits for a model: while a run is inside the model, the model list and an upload are
    answered (before, GET /api/models took 15 s behind a long upload)."""
    app = create_app([], tmp_path / "out")
    slow = slow_slerp(app)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60, headers=token(app)) as http:
        clip_id = http.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).json()["id"]
        result = {}

        def run():
            with httpx.Client(base_url=url, timeout=60, headers=token(app)) as h:
                result["r"] = follow(h, h.post("/api/run", json={"task": "inbetween", "model": "slerp",
                                                                 "upload": clip_id, "keyframes": KEYS}))

        worker = threading.Thread(target=run)
        worker.start()
        try:
            assert slow.started.wait(30)
            assert http.get("/api/models").status_code == 200
            assert http.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).status_code == 200
            assert http.get("/").status_code == 200
            assert worker.is_alive() and "r" not in result  # all of it answered while the run was in the model
        finally:
            slow.release.set()
            worker.join(60)
    assert result["r"].status_code == 200, result["r"].text


def test_a_full_pool_answers_busy(clip, tmp_path):
    """One worker and no queue: a second run while the first works is a 503 at once; uploads have their own pool."""
    app = create_app([], tmp_path / "out", limits=EditorLimits(workers=1, queue=0))
    slow = slow_slerp(app)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60, headers=token(app)) as http:
        clip_id = http.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).json()["id"]
        body = {"task": "inbetween", "model": "slerp", "upload": clip_id, "keyframes": KEYS}
        first = http.post("/api/run", json=body)
        assert first.status_code == 202, first.text
        try:
            assert slow.started.wait(30)
            r = http.post("/api/run", json=body)
            assert r.status_code == 503 and "busy" in r.json()["error"] and r.headers["retry-after"]
            assert http.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).status_code == 200
        finally:
            slow.release.set()
        assert wait_job(http, first.json()["id"])["state"] == "done"
        pool = app.state.editor.runs
        while pool.taken:  # the worker gives its slot back just after the job's end
            time.sleep(0.01)
        assert follow(http, http.post("/api/run", json=body)).status_code == 200  # the slot was given back


# ---- slow and greedy clients --------------------------------------------------------------------------------------
def raw_request(method: str, path: str, host: str, body: bytes = b"", headers: dict | None = None,
                send_body: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body if send_body else b"")


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response (with Content-Length) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data[:80]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (h.split(":", 1) for h in header_lines))
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (and sends nothing more); a timeout (10 s) raises."""
    return read_all(sock) == b""


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes ``sock`` (the socket's timeout bounds the wait)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:  # closed with our bytes unread
        pass
    return data


def connect(url: str, timeout: float = 10) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


@pytest.mark.slow
def test_a_slow_body_is_cut_off(tmp_path):
    """Five bytes a second no longer hold a request for 60 s: 408 at the body deadline, and the connection closed."""
    app = create_app([], tmp_path / "out", limits=EditorLimits(body_timeout=1.0))
    with live_server(app) as url, connect(url) as sock:
        host = url.removeprefix("http://")
        sock.sendall(raw_request("POST", "/api/run", host, b"x" * 1000, token(app), send_body=False))
        answered = threading.Event()

        def dribble():
            for _ in range(50):  # at most 10 s; the server answers after about 1 s
                if answered.wait(0.2):
                    return
                try:
                    sock.sendall(b"{")
                except OSError:
                    return

        feeder = threading.Thread(target=dribble)
        feeder.start()
        try:
            status, headers, body = read_response(sock)
        finally:
            answered.set()
            feeder.join(10)
        assert status == 408, status
        assert headers.get("connection") == "close" and b"did not arrive within 1 s" in body
        assert closed(sock)


@pytest.mark.slow
def test_half_sent_headers_are_dropped(tmp_path):
    """Connections that never complete their headers (or send nothing) are answered 408 and closed after the header
    timeout (before: all held for 60 s); beyond ``max_connections`` a new connection closes the one that has waited
    longest, so that a real client is served during a flood."""
    app = create_app([], tmp_path / "out")
    with live_server(app, header_timeout=1.0, max_connections=8) as url:
        host = url.removeprefix("http://")
        socks = [connect(url) for _ in range(12)]
        try:
            for i, sock in enumerate(socks):
                if i % 3:
                    sock.sendall(f"GET /api/models HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
            assert httpx.get(url + "/api/models", timeout=10).status_code == 200  # a real client, during the flood
            answers = [read_all(sock) for sock in socks]  # the sockets' 10 s timeout bounds the wait
        finally:
            for sock in socks:
                sock.close()
        assert all(a.startswith(b"HTTP/1.1 408") or a == b"" for a in answers), answers
        assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) >= 8
        assert httpx.get(url + "/api/models", timeout=10).status_code == 200


def test_a_flood_makes_room_for_a_real_client(tmp_path):
    """With every slot held by connections that send nothing, a new client is still served at once (the longest
    waiting one is closed for it), well before the header timeout would free a slot."""
    app = create_app([], tmp_path / "out")
    with live_server(app, header_timeout=60.0, max_connections=4) as url:
        socks = [connect(url) for _ in range(4)]
        try:
            with httpx.Client(base_url=url, timeout=10) as h:
                for _ in range(3):
                    assert h.get("/api/models").status_code == 200
            assert read_all(socks[0]).startswith(b"HTTP/1.1 408")  # the oldest made room
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.slow
def test_a_complete_request_is_not_cut_by_the_header_timeout(clip, tmp_path):
    """The header clock stops once the headers are complete; keep-alive requests each get their own clock."""
    app = create_app([], tmp_path / "out")
    slow = slow_slerp(app)
    with live_server(app, header_timeout=0.5) as url, httpx.Client(base_url=url, timeout=60, headers=token(app)) as h:
        clip_id = h.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).json()["id"]
        threading.Timer(1.5, slow.release.set).start()  # the run outlasts the header timeout three times
        r = follow(h, h.post("/api/run", json={"task": "inbetween", "model": "slerp", "upload": clip_id,
                                               "keyframes": KEYS}))
        assert r.status_code == 200, r.text
        assert h.get("/api/models").status_code == 200


def test_json_bodies_have_a_limit(tmp_path):
    """The tester's 114 MiB JSON body (parsed, then 1.2 GB kept): refused from Content-Length before it is read, and
    cut at 1 MiB when it streams without one."""
    app = create_app([], tmp_path / "out")
    with live_server(app) as url, connect(url) as sock:
        host = url.removeprefix("http://")
        sock.sendall(f"POST /api/run HTTP/1.1\r\nHost: {host}\r\nContent-Length: {114 * 2**20}\r\n"
                     f"{TOKEN_HEADER}: {app.state.token}\r\n\r\n[[[[".encode())
        status, headers, body = read_response(sock)
        assert status == 413 and b"larger than the limit of 1 MiB" in body and headers["connection"] == "close"
        assert closed(sock)
    with client_for(app) as c:
        r = c.post("/api/run", content=(b"[" * 65536 for _ in range(40)), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/api/run", content=b"[" * 500_000)  # deep nesting under the limit: a 422, not a crash
        assert r.status_code == 422 and r.json()["error"].startswith("bad request:")


# ---- other sites ------------------------------------------------------------------------------------------------
def test_other_sites_cannot_post(clip, tmp_path):
    """A page of another site cannot upload or run (before: Origin evil.example → 200, files written)."""
    out = tmp_path / "out"
    app = create_app([], out)
    files = {"file": (clip.name, clip.read_bytes())}
    with TestClient(app) as c:
        assert c.get("/api/models").status_code == 200  # reading needs no token
        page = c.get("/").text
        assert app.state.token in page and c.get("/").headers["cache-control"] == "no-store"
        good = token(app)
        for headers, message in [
            ({**good, "Origin": "http://evil.example"}, "another origin"),
            ({**good, "Origin": "null"}, "another origin"),
            ({**good, "Sec-Fetch-Site": "cross-site"}, "another site"),
            ({**good, "Sec-Fetch-Site": "same-site"}, "another site"),
            ({}, TOKEN_HEADER),
            ({TOKEN_HEADER: "guess"}, TOKEN_HEADER),
        ]:
            r = c.post("/api/upload", files=files, headers=headers)
            assert r.status_code == 403 and message in r.json()["error"], (headers, r.text)
            r = c.post("/api/run", json={"task": "inbetween"}, headers=headers)
            assert r.status_code == 403, headers
        assert folders(out) == []
        own = {**good, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        assert c.post("/api/upload", files=files, headers=own).status_code == 200


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.2:8000", True), ("127.0.0.2", True), ("localhost:8000", True), ("LOCALHOST", True),
    ("127.0.0.1:9", True), ("[::1]:8000", True), ("evil.example", False), ("127.0.0.2.evil.example:8000", False),
    ("127.0.0.2:80x", False), ("", False),
])
def test_any_loopback_host_is_accepted(host, allowed, tmp_path):
    assert allowed_hosts_for("127.0.0.2") == ["127.0.0.1", "127.0.0.2", "::1", "localhost"]
    assert allowed_hosts_for("[::1]") == ["127.0.0.1", "::1", "localhost"]
    assert allowed_hosts_for("0.0.0.0") is None and allowed_hosts_for("192.168.1.5") is None
    app = create_app([], tmp_path / "out", allowed_hosts=allowed_hosts_for("127.0.0.2"))
    with TestClient(app) as c:
        r = c.get("/api/models", headers={"Host": host})
    assert r.status_code == (200 if allowed else 400), r.text


def test_a_server_on_another_loopback_address_answers(tmp_path):
    """--host 127.0.0.2 answered every request 400 (only the names 127.0.0.1/localhost/::1 were allowed)."""
    app = create_app([], tmp_path / "out", allowed_hosts=allowed_hosts_for("127.0.0.2"))
    with live_server(app, host="127.0.0.2") as url:
        assert url.startswith("http://127.0.0.2:")
        assert httpx.get(url + "/api/models", timeout=10).status_code == 200
        assert httpx.get(url + "/", timeout=10, headers={"Host": "evil.example"}).status_code == 400


# ---- bad numbers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, field", [
    ({"keyframes": [0, 10**30]}, "keyframes.1"),
    ({"keyframes": [-1, 20]}, "keyframes.0"),
    ({"seed": 2**64}, "seed"),
    ({"seed": -1}, "seed"),
    ({"samples": 10**30}, "samples"),
    ({"task": "predict", "model": "zero-velocity", "given": 10**30}, "given"),
    ({"task": "predict", "model": "zero-velocity", "given": 5, "frames": 10**9}, "frames"),
    ({"task": "complete", "observe": [10**30]}, "observe"),
    ({"seed": 1e400}, "seed"),
    ({"keyframes": [0.5]}, "keyframes.0"),
])
def test_bad_numbers_are_one_line_422s_on_a_connection_that_stays_open(clip, change, field, tmp_path):
    """keyframe 10**30 or seed 2**64 were a 500 and a dropped keep-alive connection: now a 422 naming the field, and
    the same connection serves the next request."""
    app = create_app([], tmp_path / "out")
    with live_server(app) as url, connect(url) as sock:
        host = url.removeprefix("http://")
        with httpx.Client(base_url=url, headers=token(app)) as h:
            clip_id = h.post("/api/upload", files={"file": (clip.name, clip.read_bytes())}).json()["id"]
        request = {"task": "inbetween", "model": "slerp", "upload": clip_id, "keyframes": KEYS, **change}
        text = json.dumps(request).replace("Infinity", "1e400")
        json_headers = {**token(app), "Content-Type": "application/json"}
        sock.sendall(raw_request("POST", "/api/run", host, text.encode(), json_headers))
        status, headers, body = read_response(sock)
        assert status == 422, body
        error = httpx.Response(422, content=body).json()["error"]
        assert error.startswith(f"bad request: {field}") and "\n" not in error, error
        assert headers.get("connection") != "close"
        sock.sendall(raw_request("GET", "/api/models", host))  # the same connection
        assert read_response(sock)[0] == 200


# ---- files on disk ----------------------------------------------------------------------------------------------
def disk(out: Path) -> int:
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


@pytest.mark.slow
def test_request_folders_expire_by_total_size(clip, tmp_path):
    """200 requests (each folder +63 KiB before, never removed): the folders stay within --keep-mb (plus the newest)."""
    out = tmp_path / "out"
    keep = 0.25  # MiB
    app = create_app([], out, limits=EditorLimits(keep_mb=keep))
    largest = 0
    with client_for(app) as c:
        clip_id = None
        for i in range(200):  # three uploads, then a run on the last
            if i % 4 == 3:
                r = follow(c, c.post("/api/run", json={"task": "inbetween", "model": "slerp", "upload": clip_id,
                                                       "keyframes": KEYS}))
            else:
                r = upload(c, clip)
                clip_id = r.json()["id"]
            assert r.status_code == 200, (i, r.text)
            largest = max(largest, disk(out / r.json()["id"]))
            assert disk(out) <= keep * 2**20 + largest
    assert 2 <= len(folders(out)) < 20
    assert app.state.editor.outputs.total_bytes == disk(out)


def test_request_folders_expire_by_age_at_start(clip, tmp_path):
    out = tmp_path / "out"
    app = create_app([], out)
    with client_for(app) as c:
        old, new = upload(c, clip).json()["id"], upload(c, clip).json()["id"]
    two_days_ago = time.time() - 48 * 3600
    os.utime(out / old, (two_days_ago, two_days_ago))
    (out / "mine").mkdir()  # not a request folder: never touched
    os.utime(out / "mine", (two_days_ago, two_days_ago))
    create_app([], out, limits=EditorLimits(keep_hours=24))
    assert sorted(p.name for p in folders(out)) == sorted(["mine", new])


def test_failed_requests_leave_nothing(clip, tmp_path, monkeypatch):
    """A failure while writing (disk full, …) removes the request's folder (before, a failed upload kept its
    input.npz)."""
    import motionsynth.io as io

    out = tmp_path / "out"
    app = create_app([], out)
    real_save = io.save_motion

    def failing_save(motion, path):
        real_save(motion, path)  # half the work is on disk, then it fails
        raise MotionsynthError(f"{Path(path).name}: no space left on device")

    with client_for(app) as c:
        clip_id = upload(c, clip).json()["id"]
        monkeypatch.setattr(io, "save_motion", failing_save)
        r = upload(c, clip)
        assert r.status_code == 422 and "no space left" in r.json()["error"]
        r = follow(c, c.post("/api/run", json={"task": "inbetween", "model": "slerp", "upload": clip_id,
                                               "keyframes": KEYS}))
        assert r.status_code == 422 and "no space left" in r.json()["error"]
    assert [p.name for p in folders(out)] == [clip_id]
    assert app.state.editor.outputs.total_bytes == disk(out)
