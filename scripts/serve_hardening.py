"""Rerun an outside tester's cases against a live `motionsynth serve` and print a markdown table (issue 22).

    .venv/bin/python scripts/serve_hardening.py [--host 127.0.0.2] [--half-open 1000] [--sequential 200]

The server is ``motionsynth serve`` in a subprocess on a loopback address (127.0.0.2 by default: any loopback
``--host`` must work), with its default work limits and short timeouts (``--header-timeout 2 --body-timeout 2``) and
``--keep-mb 1``, warmed up by one small upload and run (first use imports torch and the methods). Per case: the HTTP status, the wall time, the server's peak resident memory during the case (Linux
``VmHWM`` after resetting it through ``/proc/PID/clear_refs``; in brackets the rise over its RSS before the case),
the bytes the case left in ``--out``, and the slowest answer to another client polling ``GET /api/models`` while the
case ran (with the number of polls; a failed poll is counted). Every loop is bounded; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

TOKEN_HEADER = "X-Motionsynth-Token"


def flat_bvh(frames: int, joints: int = 22) -> bytes:
    """The tester's file: a chain of ``joints`` joints, rotation channels on the root only, ``frames`` frames of
    ``0 0 0`` (100,000 frames: 0.57 MiB, 2.2 million joint-frames)."""
    lines = ["HIERARCHY", "ROOT j0", "{", "  OFFSET 0 0 0", "  CHANNELS 3 Zrotation Xrotation Yrotation"]
    for j in range(1, joints):
        pad = "  " * j
        lines += [f"{pad}JOINT j{j}", f"{pad}{{", f"{pad}  OFFSET 0 1 0", f"{pad}  CHANNELS 0"]
    pad = "  " * joints
    lines += [f"{pad}End Site", f"{pad}{{", f"{pad}  OFFSET 0 1 0", f"{pad}}}"]
    lines += ["  " * j + "}" for j in range(joints - 1, -1, -1)]
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.033333"]
    return ("\n".join(lines) + "\n").encode() + b"0 0 0\n" * frames


# ---- the server and what is measured around each case ----------------------------------------------------------
class Server:
    """``motionsynth serve`` in a subprocess; its URL, token, memory and output folder."""

    def __init__(self, host: str, out: Path, extra: list[str]):
        with socket.socket() as s:
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        self.host, self.out = host, out
        self.url = f"http://{host}:{self.port}"
        cmd = [sys.executable, "-m", "motionsynth", "serve", "--host", host, "--port", str(self.port), "--out",
               str(out), "--header-timeout", "2", "--body-timeout", "2", "--keep-mb", "1", "--no-shipped", *extra]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(self.url + "/", timeout=5).text
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {self.proc.stderr.read()}") from None
                time.sleep(0.2)
        self.token = re.search(r'name="motionsynth-token" content="([^"]+)"', page).group(1)

    def status(self, key: str) -> int:
        """A ``/proc/PID/status`` field in bytes."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) * 1024

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def disk(self) -> int:
        return sum(f.stat().st_size for f in self.out.rglob("*") if f.is_file())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Prober:
    """Another client: ``GET /api/models`` every 50 ms while a case runs; the slowest answer and the failures."""

    def __init__(self, url: str):
        self.url, self.times, self.failed, self._stop = url, [], 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                with httpx.Client(timeout=30) as c:  # a fresh connection each time, like a new tab
                    ok = c.get(self.url + "/api/models").status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                self.times.append(time.perf_counter() - start)
            else:
                self.failed += 1
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)

    def summary(self) -> str:
        polls = len(self.times) + self.failed
        worst = f"{max(self.times) * 1000:.0f} ms" if self.times else "-"
        return f"{worst} ({polls} polls{f', {self.failed} failed' if self.failed else ''})"


ROWS: list[str] = []


@contextmanager
def case(server: Server, name: str):
    """Measure one case; the body sets ``result["status"]`` (and optionally a note)."""
    result = {"status": "?", "note": ""}
    disk0, rss0 = server.disk(), server.status("VmRSS")
    server.reset_peak()
    start = time.perf_counter()
    with Prober(server.url) as probe:
        try:
            yield result
        except Exception as e:  # a case that fails is reported, not fatal
            result["status"] = f"error: {type(e).__name__}: {e}"[:80]
    seconds = time.perf_counter() - start
    peak = server.status("VmHWM")
    left = server.disk() - disk0
    status = f"{result['status']}{' — ' + result['note'] if result['note'] else ''}"
    ROWS.append(f"| {name} | {status} | {seconds:.2f} s | {peak / 2**20:.0f} MiB (+{max(0, peak - rss0) / 2**20:.0f}) "
                f"| {left:+,} B | {probe.summary()} |")
    print(ROWS[-1], file=sys.stderr)


# ---- the cases ----------------------------------------------------------------------------------------------------
def upload(http: httpx.Client, data: bytes, name: str = "clip.bvh", headers: dict | None = None) -> httpx.Response:
    return http.post("/api/upload", files={"file": (name, data)}, headers=headers or {})


def raw(server: Server, head: str, body: bytes = b"", timeout: float = 30) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    sock.sendall(head.encode() + body)
    return sock


def read_status(sock: socket.socket) -> str:
    data = b""
    try:
        while b"\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
    except ConnectionResetError:
        pass
    return data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 1)[-1] or "closed"


def run_job(http: httpx.Client, body: dict) -> httpx.Response:
    """``POST /api/run``, then the job followed to its end: its last ``GET /api/jobs/ID`` (with the result when done);
    a refused request's response as it is."""
    res = http.post("/api/run", json=body)
    if res.status_code != 202:
        return res
    url = f"/api/jobs/{res.json()['id']}"
    while (res := http.get(url)).json()["state"] in ("queued", "running"):
        time.sleep(0.05)
    return res


def warm_up(http: httpx.Client) -> None:
    """One small upload and run before measuring: the server imports torch and the methods on first use."""
    clip = upload(http, flat_bvh(100)).json()["id"]
    run_job(http, {"task": "inbetween", "model": "slerp", "upload": clip, "keyframes": [0, 99]})


def upload_cases(server: Server, http: httpx.Client) -> str:
    for frames, label in [(100_000, "0.57 MiB"), (1_000_000, "5.7 MiB"), (3_490_000, "20.0 MiB")]:
        data = flat_bvh(frames)
        with case(server, f"upload {label}: {frames:,} frames x 22 joints") as r:
            r["status"] = upload(http, data).status_code
        del data
    with case(server, "upload 20,000 frames x 22 joints (the largest accepted, 0.12 MiB)") as r:
        res = upload(http, flat_bvh(20_000))
        r["status"], r["note"] = res.status_code, f"response {len(res.content) / 2**20:.1f} MiB"
    clip = upload(http, flat_bvh(600)).json()["id"]
    return clip


def run_cases(server: Server, http: httpx.Client, clip: str) -> None:
    long_clip = upload(http, flat_bvh(20_000)).json()["id"]
    body = {"task": "predict", "model": "zero-velocity", "upload": long_clip, "given": 100, "frames": 20_000}
    with case(server, "predict 20,000 frames x 16 samples") as r:
        r["status"] = run_job(http, {**body, "samples": 16}).status_code
    with case(server, "predict 20,000 frames x 2 samples (the largest accepted)") as r:
        res = run_job(http, {**body, "samples": 2})
        r["status"], r["note"] = res.status_code, f"response {len(res.content) / 2**20:.1f} MiB"
    host = f"Host: {server.host}:{server.port}\r\n"
    for field, value, shown in [("keyframes", [0, 10**30], "keyframe 10**30"), ("seed", 2**64, "seed 2**64")]:
        with case(server, f"inbetween with {shown}, then GET on the same connection") as r:
            text = json.dumps({"task": "inbetween", "model": "slerp", "upload": clip, "keyframes": [0, 599],
                               field: value}).encode()
            sock = raw(server, f"POST /api/run HTTP/1.1\r\n{host}{TOKEN_HEADER}: {server.token}\r\n"
                               f"Content-Type: application/json\r\nContent-Length: {len(text)}\r\n\r\n", text)
            first = read_response(sock)
            sock.sendall(f"GET /api/models HTTP/1.1\r\n{host}\r\n".encode())
            second = read_response(sock) if first else None
            sock.close()
            r["status"] = first or "closed"
            r["note"] = "the connection answered the next request" if second == 200 else "connection lost"


def read_response(sock: socket.socket) -> int | None:
    """The status of one response with Content-Length read whole from ``sock``; None if the server closed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return int(head.split()[1])


def origin_cases(server: Server, http: httpx.Client) -> None:
    data = flat_bvh(600)
    with case(server, "upload from another site (Origin: http://evil.example)") as r:
        r["status"] = upload(http, data, headers={"Origin": "http://evil.example"}).status_code
    with case(server, "upload without the page's token") as r:
        r["status"] = httpx.post(server.url + "/api/upload", files={"file": ("a.bvh", data)}, timeout=30).status_code


def slow_cases(server: Server, half_open: int) -> None:
    token = f"{TOKEN_HEADER}: {server.token}\r\n"
    host = f"Host: {server.host}:{server.port}\r\n"
    with case(server, "JSON body of 114 MiB (Content-Length)") as r:
        sock = raw(server, f"POST /api/run HTTP/1.1\r\n{host}{token}Content-Length: {114 * 2**20}\r\n\r\n", b"[[[[")
        r["status"] = read_status(sock)
        sock.close()
    with case(server, "JSON body of 114 MiB (chunked, no length)") as r:
        sock = raw(server, f"POST /api/run HTTP/1.1\r\n{host}{token}Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent < 114 * 2**20:
                sock.sendall(b"10000\r\n" + b"[" * 0x10000 + b"\r\n")
                sent += 0x10000
        except OSError:
            pass
        r["status"], r["note"] = read_status(sock), f"{sent / 2**20:.0f} MiB sent"
        sock.close()
    with case(server, "body at 1 byte/s") as r:
        sock = raw(server, f"POST /api/run HTTP/1.1\r\n{host}{token}Content-Length: 1000\r\n\r\n")
        sock.settimeout(1.0)
        status = None
        for _ in range(30):
            try:
                sock.sendall(b"{")
                status = read_status(sock)
                break
            except (TimeoutError, OSError):
                continue
        r["status"] = status or "still open after 30 s"
        sock.close()
    with case(server, f"{half_open:,} connections with half-sent headers") as r:
        socks = []
        for _ in range(half_open):
            try:
                socks.append(raw(server, f"GET /api/models HTTP/1.1\r\n{host}X-Slow: ", timeout=30))
            except OSError:
                break
        answers = [read_status(s) for s in socks]
        for s in socks:
            s.close()
        counts = {a: answers.count(a) for a in sorted(set(answers))}
        r["status"] = ", ".join(f"{n} x {a}" for a, n in counts.items())
        r["note"] = "all closed"


def sequential_case(server: Server, http: httpx.Client, n: int) -> None:
    data = flat_bvh(600)
    with case(server, f"{n} sequential requests (3 uploads : 1 run), --keep-mb 1") as r:
        statuses, clip = [], None
        for i in range(n):
            if i % 4 == 3:
                res = run_job(http, {"task": "inbetween", "model": "slerp", "upload": clip,
                                     "keyframes": [0, 300, 599]})
            else:
                res = upload(http, data)
                clip = res.json().get("id")
            statuses.append(res.status_code)
        r["status"] = ", ".join(f"{statuses.count(s)} x {s}" for s in sorted(set(statuses)))
        r["note"] = f"{server.disk() / 2**20:.2f} MiB in {sum(1 for p in server.out.iterdir())} folders after"


def cli_case(server: Server) -> None:
    with case(server, "motionsynth serve --max-upload-mb inf") as r:
        p = subprocess.run([sys.executable, "-m", "motionsynth", "serve", "--max-upload-mb", "inf"],
                           capture_output=True, text=True, timeout=120)
        r["status"], r["note"] = f"exit {p.returncode}", f"{len(p.stderr.strip().splitlines())} line: " \
                                                         f"{p.stderr.strip()[:70]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.2")
    ap.add_argument("--half-open", type=int, default=1000, help="connections sending half their headers")
    ap.add_argument("--sequential", type=int, default=200, help="requests in the expiry case")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.half_open + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.half_open + 64), hard))
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(args.host, Path(tmp) / "out", [])
        try:
            with httpx.Client(base_url=server.url, headers={TOKEN_HEADER: server.token}, timeout=120) as http:
                warm_up(http)
                with case(server, f"GET / on --host {args.host}") as r:
                    r["status"] = http.get("/").status_code
                clip = upload_cases(server, http)
                run_cases(server, http, clip)
                origin_cases(server, http)
                slow_cases(server, args.half_open)
                sequential_case(server, http, args.sequential)
                cli_case(server)
        finally:
            server.stop()
    print("| case | status | time | server peak RSS (rise) | disk left | another client's slowest answer (polls) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(ROWS))
    print(f"\n`{' '.join(['.venv/bin/python', 'scripts/serve_hardening.py', *sys.argv[1:]])}` "
          f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
