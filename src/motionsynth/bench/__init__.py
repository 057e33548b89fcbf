"""The benchmark harness: fixed protocols per task (`protocol`), noise models (`noise`), records and tables
(`report`). ``motionsynth bench`` is its command line."""

from .noise import NOISE_MODELS, NoiseConfig, add_noise, calibrate_rotation_sigma
from .protocol import DEFAULT_SETTINGS, TASKS, run_benchmark
from .report import compare_markdown, load_records, save_json, to_markdown

__all__ = [
    "run_benchmark", "TASKS", "DEFAULT_SETTINGS", "NOISE_MODELS", "NoiseConfig", "add_noise",
    "calibrate_rotation_sigma", "to_markdown", "compare_markdown", "save_json", "load_records",
]
