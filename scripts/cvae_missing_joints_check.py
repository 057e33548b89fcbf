"""Validation check of the CVAE on never-observed joints: mean absolute error (normalised features) of the prior's
mean on the missing columns of 8 validation windows, left arm / upper body missing, against the mean-pose fill (0).

    .venv/bin/python scripts/cvae_missing_joints_check.py runs/cvae/best runs/cvae-zero/best
"""
import sys

import numpy as np
import torch

from motionsynth.bench.protocol import COMPLETE_SETTINGS, iter_clips, open_cache, split_windows
from motionsynth.data.features import encode
from motionsynth.methods.completion import feature_mask
from motionsynth.registry import load_method
from motionsynth.tasks import joints_mask

cache = open_cache("cache/bandai2"); sk = cache.skeleton
clips = list(iter_clips(cache, split_windows(cache, "val", 64, 40, 8), 64))
for path in sys.argv[1:]:
    m = load_method(path)
    for key in ["left_arm", "upper_body"]:
        mask = joints_mask(64, sk, COMPLETE_SETTINGS[key][1](sk))
        fm = feature_mask(mask, sk)
        errs = []
        for c in clips:
            f = encode(c, dtype=np.float32)
            x = torch.as_tensor(m.ckpt.stats.normalize(f), dtype=torch.float32)[None]
            msk = torch.as_tensor(fm, dtype=torch.float32)[None]
            pos, head = __import__("motionsynth.methods.root", fromlist=["world_root"]).world_root(c)
            tr = torch.as_tensor(np.stack([pos[:,0], pos[:,2], head], -1), dtype=torch.float32)[None]
            out = m.model.sample({"observed": x, "mask": msk, "track": tr if m.model.config.track else None},
                                 temperature=0.0)[0].numpy()
            miss = ~fm
            errs.append([np.abs(out - x[0].numpy())[miss].mean(), np.abs(x[0].numpy())[miss].mean()])
        print(path, key, "model err %.3f  fill(0) err %.3f" % tuple(np.mean(errs, 0)))
