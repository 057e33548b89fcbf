"""Shared fixtures. Tests marked `real_data` read the Bandai Namco zip from $MOTIONSYNTH_DATA_DIR and fail (never
skip) when it is missing, so that CI cannot silently pass without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BANDAI_ZIP = "bandai-namco-motion-2.zip"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = os.environ.get("MOTIONSYNTH_DATA_DIR")
    if not d:
        pytest.fail("MOTIONSYNTH_DATA_DIR is not set: real_data tests need the shared data folder")
    return Path(d)


@pytest.fixture(scope="session")
def bandai_zip(data_dir: Path) -> Path:
    path = data_dir / BANDAI_ZIP
    if not path.is_file():
        pytest.fail(f"{path} is missing: real_data tests need the Bandai Namco zip")
    return path


@pytest.fixture(scope="session")
def bandai_cache(bandai_zip, tmp_path_factory):
    """The whole Bandai Namco zip prepared into a cache once per test run, shared by pytest-xdist workers (a file
    lock in the run's common temp folder makes the first worker prepare it and the others wait and reuse it)."""
    from filelock import FileLock

    from motionsynth.data.cache import MotionCache, prepare

    shared = tmp_path_factory.getbasetemp().parent
    cache = shared / "bandai-cache"
    with FileLock(str(shared / "bandai-cache.lock")):
        if not (cache / "meta.json").is_file():
            prepare(bandai_zip, "bandai-namco", cache, workers=2, progress=False)
    return MotionCache(cache)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on the shared 2-core machine, two spinning threads are many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A tiny prepared cache: 20-joint biped BVH takes of 200 frames, two per split."""
    from motionsynth.data.cache import prepare
    from motionsynth.io.bvh import write_bvh

    from helpers import biped_motion, biped_skeleton, names_per_split

    src = tmp_path_factory.mktemp("bvh")
    sk = biped_skeleton()
    names = sorted(n for ns in names_per_split(2).values() for n in ns)
    for k, name in enumerate(names):
        write_bvh(biped_motion(sk, T=200, seed=k, name=name), src / f"{name}.bvh")
    return prepare(src, "bvh-folder", tmp_path_factory.mktemp("cache") / "c", workers=1, progress=False)


@pytest.fixture()
def pretrained(tmp_path, monkeypatch):
    """An empty shipped-models folder (nothing ships), made the default through $MOTIONSYNTH_PRETRAINED."""
    from motionsynth.checkpoint import PRETRAINED_ENV

    root = tmp_path / "pretrained"
    monkeypatch.setenv(PRETRAINED_ENV, str(root))
    return root
