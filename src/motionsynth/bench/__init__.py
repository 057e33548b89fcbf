"""The benchmark harness: fixed protocols per task (`protocol`: each `tasks.Task` names its `Protocol`), records and
tables (`report`). The noise models of the denoising protocol are the data layer's (`motionsynth.data.noise`).
``motionsynth bench`` is its command line."""

from ..data.noise import NOISE_MODELS, NoiseConfig, add_noise, calibrate_rotation_sigma
from .protocol import Protocol, protocol_names, protocol_of, run_benchmark
from .report import compare_markdown, load_records, save_json, to_markdown

__all__ = [
    "run_benchmark", "Protocol", "protocol_names", "protocol_of", "NOISE_MODELS", "NoiseConfig", "add_noise",
    "calibrate_rotation_sigma", "to_markdown", "compare_markdown", "save_json", "load_records",
]
