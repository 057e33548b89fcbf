"""`smooth` on every clean take of both Bandai Namco datasets and every clip of ``rigs/`` (static joints, constant
channels, values rounded by the BVH writer): no error, a finite motion of unit quaternions that stays close to the
take. The reweighting runs 5 steps here (the first solve and four reweighted ones: every floor of the weights is
engaged by then) to keep the suite short; `docs/BENCHMARKS.md` records the same sweep at the default 50."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from motionsynth.io.bvh import iter_bvh, iter_bvh_members
from motionsynth.postprocess import smooth_motion

pytestmark = pytest.mark.real_data
PARTS = {"bandai-namco-motion-1.zip": 1, "bandai-namco-motion-2.zip": 4}


def _check(name, motion) -> float:
    assert not isinstance(motion, Exception), f"{name}: {motion}"
    out = smooth_motion(motion, iters=5)
    assert out.rotations.shape == motion.rotations.shape, name
    assert np.isfinite(out.rotations).all() and np.isfinite(out.root_positions).all(), name
    np.testing.assert_allclose(np.linalg.norm(out.rotations, axis=-1), 1, atol=1e-9, err_msg=name)
    return float(np.linalg.norm(out.global_positions() - motion.global_positions(), axis=-1).mean())


@pytest.mark.parametrize("source,part", [(s, k) for s, n in PARTS.items() for k in range(n)])
def test_every_bandai_take_smooths(data_dir, source, part):
    path = data_dir / source
    assert path.is_file(), f"{path} is missing"
    with zipfile.ZipFile(path) as z:
        members = sorted(n for n in z.namelist() if n.endswith(".bvh"))[part::PARTS[source]]
    moved = [_check(name, m) for name, m in iter_bvh_members(path, members)]
    assert len(moved) == len(members) > 40
    assert np.median(moved) < 1.0  # cm: a clean take stays where it was


def test_every_rig_clip_smooths(data_dir):
    moved = [_check(name, m) for name, m in iter_bvh(data_dir / "rigs")]
    assert len(moved) == 6 and max(moved) < 5.0
