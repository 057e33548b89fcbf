"""`motionsynth data download`: resumable HTTP download, verification and extraction, against a local server."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from motionsynth.cli import main
from motionsynth.data.cache import prepare
from motionsynth.data.download import extract_part, fetch_bandai
from motionsynth.errors import MotionsynthError
from test_dataset import make_bandai, zip_folder

REPO_TOP = "Bandai-Namco-Research-Motiondataset-master/dataset/Bandai-Namco-Research-Motiondataset"


def repo_archive(tmp: Path, nested: bool = False) -> bytes:
    """A fake repository archive with both parts (part 1: 3 + 1 bad-label takes, part 2: 5 + 1), optionally with
    each part's takes inside a ``data.zip`` as some revisions of the repository store them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Bandai-Namco-Research-Motiondataset-master/README.md", "repo")
        for part, n in ((1, 3), (2, 5)):
            folder = make_bandai(tmp / f"p{part}", part, n)
            (folder / "LICENSE").write_text("CC BY-NC 4.0")
            top = f"{REPO_TOP}-{part}/"
            for p in sorted(folder.rglob("*")):
                rel = p.relative_to(folder).as_posix()
                if p.is_file() and not (nested and rel.startswith("data/")):
                    z.write(p, top + rel)
            if nested:
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as zi:
                    for p in sorted((folder / "data").iterdir()):
                        zi.write(p, f"data/{p.name}")
                z.writestr(top + "data.zip", inner.getvalue())
            z.writestr(top + "videos.zip", b"not needed")
    return buf.getvalue()


class Server:
    """A bounded local HTTP server for one payload: honours Range, can cut the first response short, records
    request headers, and stops itself after ``lifetime`` seconds at the latest."""

    def __init__(self, payload: bytes, cut_first_at: int | None = None, lifetime: float = 60, ranges: bool = True):
        self.payload, self.cut, self.ranges, self.requests = payload, cut_first_at, ranges, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(dict(self.headers))
                if self.path != "/archive.zip":
                    self.send_error(404)
                    return
                start, data = 0, outer.payload
                rng = self.headers.get("Range")
                if rng and outer.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut is not None:
                    body, outer.cut = body[: outer.cut], None  # drop the connection mid-way, once
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.stopper = threading.Timer(lifetime, self.httpd.shutdown)

    def __enter__(self):
        self.thread.start()
        self.stopper.start()
        return self

    def __exit__(self, *exc):
        self.stopper.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def test_interrupted_download_resumes_with_range(tmp_path):
    payload = repo_archive(tmp_path / "src")
    out = tmp_path / "out"
    with Server(payload, cut_first_at=len(payload) // 2) as server:
        with pytest.raises(MotionsynthError, match="run the same command again to resume"):
            fetch_bandai(2, out, url=server.url, progress=False, retries=0, expected_takes=6)
        part = out / "archive.zip.part"
        assert part.stat().st_size == len(payload) // 2
        folder = fetch_bandai(2, out, url=server.url, progress=False, retries=0, expected_takes=6)
        assert server.requests[-1]["Range"] == f"bytes={len(payload) // 2}-"
    assert (out / "archive.zip").read_bytes() == payload and not part.exists()
    assert folder == out / "bandai-namco-2"
    assert len(list((folder / "data").glob("*.bvh"))) == 6
    assert (folder / "cfg/style_label.txt").is_file() and (folder / "LICENSE").is_file()
    assert not (folder / "videos.zip").exists()
    cache = prepare(folder, "bandai-namco", tmp_path / "cache", workers=1, progress=False)
    assert len(cache.takes) == 5 and len(cache.skipped) == 1


@pytest.mark.slow
def test_retry_resumes_automatically_and_reuses_a_complete_archive(tmp_path):
    payload = repo_archive(tmp_path / "src")
    with Server(payload, cut_first_at=1000) as server:
        folder = fetch_bandai(1, tmp_path / "out", url=server.url, progress=False, retries=1, expected_takes=4)
        assert len(server.requests) == 2 and server.requests[1]["Range"] == "bytes=1000-"
        fetch_bandai(2, tmp_path / "out", url=server.url, progress=False, retries=0, expected_takes=6)
        assert len(server.requests) == 2  # the other part comes from the archive already downloaded
    assert sorted(p.name for p in (folder / "data").glob("*.bvh"))[0].startswith("dataset-1_")


def test_server_without_range_restarts_the_file(tmp_path):
    payload = repo_archive(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "archive.zip.part").write_bytes(b"stale bytes")
    with Server(payload, ranges=False) as server:
        fetch_bandai(2, out, url=server.url, progress=False, retries=0, expected_takes=6)
    assert (out / "archive.zip").read_bytes() == payload


def test_nested_data_zip_layout(tmp_path):
    archive = tmp_path / "repo.zip"
    archive.write_bytes(repo_archive(tmp_path / "src", nested=True))
    folder = extract_part(archive, 2, tmp_path / "out", expected_takes=6)
    assert len(list((folder / "data").glob("*.json"))) == 6 and not (folder / "data.zip").exists()


def test_corrupt_archive_wrong_count_and_http_errors_fail_clearly(tmp_path):
    with Server(b"PK\x03\x04 this is not really a zip" * 100) as server:
        with pytest.raises(MotionsynthError, match="not a readable zip"):
            fetch_bandai(2, tmp_path / "a", url=server.url, progress=False, retries=0)
        with pytest.raises(MotionsynthError, match="HTTP 404"):
            fetch_bandai(2, tmp_path / "b", url=server.url.replace("archive", "missing"), progress=False)
    archive = tmp_path / "repo.zip"
    archive.write_bytes(repo_archive(tmp_path / "src"))
    with pytest.raises(MotionsynthError, match="has 6 takes, expected 2902"):
        extract_part(archive, 2, tmp_path / "c")
    assert not (tmp_path / "c" / "bandai-namco-2").exists()
    damaged = bytearray(archive.read_bytes())
    info = zipfile.ZipFile(archive).getinfo(f"{REPO_TOP}-2/data/dataset-2_walk_active_000.bvh")
    damaged[info.header_offset + 200] ^= 0xFF  # inside the member's compressed bytes
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(MotionsynthError, match="damaged"):
        extract_part(tmp_path / "damaged.zip", 2, tmp_path / "d", expected_takes=6)
    with pytest.raises(MotionsynthError, match="part 3|`part` must be 1 or 2"):
        fetch_bandai(3, tmp_path / "e", from_zip=archive)


def test_cli_download_from_a_repack(tmp_path, capsys, monkeypatch):
    folder = make_bandai(tmp_path / "src" / "bandai-namco-2", 2, 3)
    archive = zip_folder(folder, tmp_path / "bandai-namco-motion-2.zip", "bandai-namco-2")
    monkeypatch.setitem(__import__("motionsynth.data.download", fromlist=["PART_TAKES"]).PART_TAKES, 2, 4)
    with pytest.raises(SystemExit) as e:
        main(["data", "download", "bandai-namco", "--part", "2", "--from", str(archive), "--out",
              str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "4 takes verified" in out
    assert json.loads((tmp_path / "out/bandai-namco-2/data/dataset-2_walk_active_000.json").read_text()) == \
        {"content": 0, "style": 0}
    with pytest.raises(SystemExit) as e:
        main(["data", "download", "bandai-namco", "--part", "1", "--from", str(archive), "--out",
              str(tmp_path / "out")])
    assert e.value.code == 2 and "cannot find Bandai Namco dataset part 1" in capsys.readouterr().err
