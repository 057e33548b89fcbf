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
