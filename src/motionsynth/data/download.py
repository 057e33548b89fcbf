"""Download and unpack the Bandai Namco Research motion datasets (``motionsynth data download bandai-namco``).

Both parts live in the public GitHub repository BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset, under
``dataset/Bandai-Namco-Research-Motiondataset-1/`` and ``-2/``; the download is the repository archive
(`DEFAULT_URL`), fetched with ``urllib`` only:

- resumable: bytes go to ``<zip>.part``; a later run (or an automatic retry after a dropped connection) asks for the
  rest with an HTTP ``Range`` request and appends. A server that ignores ``Range`` (answers 200) restarts the file.
- verified: the archive must open as a zip and hold the part's ``data/*.bvh`` (directly, or inside the part's
  ``data.zip``, as some revisions of the repository store it), a ``.json`` beside each, ``cfg/content_label.txt``,
  ``cfg/style_label.txt``, and exactly the published number of takes (`PART_TAKES`: part 1 175 takes / 36,673
  frames, part 2 2,902 takes / 384,931 frames, as the parts' READMEs state). Every member extracted is CRC-checked.
- extracted: only that part, to ``OUT/bandai-namco-<part>/`` (``data/``, ``cfg/``, licence and readme), atomically.
  The downloaded zip is kept in ``OUT`` so that the other part can be extracted without downloading again (delete
  it to save space).

``--from ZIP`` uses an archive already on disk: the repository archive or a re-pack of one part whose top folder is
e.g. ``bandai-namco-2/``. Then: ``motionsynth data prepare OUT/bandai-namco-2 --dataset bandai-namco --out CACHE``.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import MotionsynthError, ParamError
from .cache import _default_permissions

DEFAULT_URL = ("https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset/"
               "archive/refs/heads/master.zip")
ARCHIVE_NAME = "Bandai-Namco-Research-Motiondataset-master.zip"
PART_TAKES = {1: 175, 2: 2902}
_KEEP = re.compile(r"^(LICENSE|README[^/]*|cfg/[^/]+\.txt)$", re.I)


class _Interrupted(Exception):
    """The connection ended before the whole file arrived (retryable)."""


# ---- resumable download -----------------------------------------------------------------------------------------
def download_file(url: str, dest: str | os.PathLike, progress: bool = True, retries: int = 3, timeout: float = 60,
                  chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` through ``dest + '.part'``, resuming a previous partial download with HTTP
    ``Range``; retries ``retries`` times after a dropped connection. Raises `MotionsynthError` (keeping the
    ``.part`` file for the next attempt) when it cannot finish."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(2.0 ** (attempt - 1), 10.0))
        try:
            _fetch(url, part, progress, timeout, chunk_size)
            os.replace(part, dest)
            return dest
        except (_Interrupted, urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code != 416 and e.code < 500:
                raise MotionsynthError(f"download failed: HTTP {e.code} {e.reason} for {url}") from None
            last = e
    have = part.stat().st_size if part.exists() else 0
    reason = getattr(last, "reason", None) or last
    raise MotionsynthError(f"download of {url} did not finish ({have:,} bytes so far in {part}): {reason}; "
                           f"run the same command again to resume")


def _fetch(url: str, part: Path, progress: bool, timeout: float, chunk_size: int) -> None:
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "motionsynth", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: complete if the server's size is what we have
            m = re.search(r"/(\d+)", e.headers.get("Content-Range", "") or "")
            if m and int(m.group(1)) == have:
                return
            part.unlink()
            raise _Interrupted("the partial file does not fit the server's; restarting") from None
        raise
    with resp:
        resume = have > 0 and resp.status == 206
        if resume:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink()
                raise _Interrupted("the server resumed at another offset; restarting")
        else:
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if resume else "wb") as f, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name[:-5],
                     disable=not progress, leave=False) as bar:
            while True:
                block = resp.read(chunk_size)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size < total:
        raise _Interrupted(f"connection closed after {part.stat().st_size:,} of {total:,} bytes")


# ---- finding and extracting one part ----------------------------------------------------------------------------
def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise MotionsynthError(f"{path}: not a readable zip archive ({e}); if it is a download, delete it and "
                               f"download again") from None


def _part_root(names: list[str], part: int, archive: Path) -> str:
    """The folder prefix (``'x/y/'`` or ``''``) of ``part`` in an archive: the folder holding ``data/`` (or
    ``data.zip``) and ``cfg/``, chosen by its name ending in ``-<part>`` or its takes being ``dataset-<part>_*``."""
    roots: dict[str, set[str]] = {}
    for n in names:
        m = re.match(r"^(.*?)(?:data/([^/]+\.bvh)|data\.zip)$", n, re.I)
        if m and (m.group(1) == "" or m.group(1).endswith("/")):
            roots.setdefault(m.group(1), set()).add(m.group(2) or "")
    chosen = [r for r, files in roots.items()
              if re.search(rf"[-_]{part}/$", r) or any(f.startswith(f"dataset-{part}_") for f in files)]
    if len(chosen) != 1:
        found = ", ".join(sorted(r or "/" for r in roots)) or "none"
        raise MotionsynthError(f"{archive}: cannot find Bandai Namco dataset part {part} inside (folders with "
                               f"data/*.bvh: {found})")
    return chosen[0]


def extract_part(archive: str | os.PathLike, part: int, out: str | os.PathLike,
                 expected_takes: int | None = None) -> Path:
    """Verify ``archive`` holds part ``part`` with ``expected_takes`` takes (default `PART_TAKES`) and extract just
    it to ``out/bandai-namco-<part>/`` (atomically). Returns that folder."""
    archive, out = Path(archive), Path(out)
    expected = PART_TAKES[part] if expected_takes is None else expected_takes
    z = _open(archive)
    root = _part_root(z.namelist(), part, archive)
    dest = out / f"bandai-namco-{part}"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=out))
    _default_permissions(tmp)
    try:
        data_zip = None
        members = {n[len(root):]: n for n in z.namelist() if n.startswith(root) and not n.endswith("/")}
        takes = {k: v for k, v in members.items() if re.fullmatch(r"data/[^/]+\.(bvh|json)", k, re.I)}
        if not any(k.lower().endswith(".bvh") for k in takes) and "data.zip" in members:
            _copy_member(z, members["data.zip"], tmp / "data.zip", archive)
            data_zip = _open(tmp / "data.zip")
            takes = {f"data/{PurePosixPath(n).name}": n for n in data_zip.namelist()
                     if re.search(r"\.(bvh|json)$", n, re.I) and not PurePosixPath(n).name.startswith("._")}
        n_bvh = sum(k.lower().endswith(".bvh") for k in takes)
        if n_bvh != expected:
            raise MotionsynthError(f"{archive}: part {part} has {n_bvh} takes, expected {expected} — the archive "
                                   f"is incomplete or not the published dataset")
        missing = [k for k in takes if k.lower().endswith(".bvh") and k[:-4] + ".json" not in takes]
        if missing:
            raise MotionsynthError(f"{archive}: {len(missing)} takes have no .json labels beside them "
                                   f"(first: {missing[0]})")
        for rel in ("cfg/content_label.txt", "cfg/style_label.txt"):
            if rel not in members:
                raise MotionsynthError(f"{archive}: part {part} has no {rel}")
        for rel, name in takes.items():
            _copy_member(data_zip or z, name, tmp / rel, archive)
        for rel, name in members.items():
            if _KEEP.match(rel):
                _copy_member(z, name, tmp / rel, archive)
        (tmp / "data.zip").unlink(missing_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _copy_member(z: zipfile.ZipFile, name: str, target: Path, archive: Path) -> None:
    """Extract one member (CRC-checked by zipfile while reading)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with z.open(name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    # zipfile raises NotImplementedError for a compression method it cannot read
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as e:
        raise MotionsynthError(f"{archive}: member {name} is damaged ({e}); if it is a download, delete it and "
                               f"download again") from None


def fetch_bandai(part: int, out: str | os.PathLike, from_zip: str | os.PathLike | None = None,
                 url: str = DEFAULT_URL, progress: bool = True, retries: int = 3,
                 expected_takes: int | None = None) -> Path:
    """Get Bandai Namco dataset ``part`` (1 or 2) into ``out/bandai-namco-<part>/``: from ``from_zip`` when given,
    else downloaded from ``url`` to ``out`` (resuming, and reusing an archive already complete there)."""
    if part not in PART_TAKES:
        raise ParamError(f"`part` must be 1 or 2, got {part}", "part")
    out = Path(out).expanduser()
    if from_zip is not None:
        archive = Path(from_zip).expanduser()
        if not archive.is_file():
            raise ParamError(f"`from` {archive}: no such file", "from")
    else:
        name = PurePosixPath(urllib.parse.urlparse(url).path).name
        archive = out / (ARCHIVE_NAME if url == DEFAULT_URL or not name.endswith(".zip") else name)
        if not archive.is_file():
            download_file(url, archive, progress=progress, retries=retries)
    return extract_part(archive, part, out, expected_takes)
