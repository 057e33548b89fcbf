"""Export the trained models as the shipped ones (`src/motionsynth/pretrained/`), each with its test figures and a
reproducibility check.

    .venv/bin/python scripts/ship_models.py --data cache/bandai2 [--only cvae-bandai,...]

For every entry of `SHIP` whose source exists: `checkpoint.export_model` (fp16 weight matrices), then

- the card's "Test figures" become ``test_figures`` (a few bullets read from those records: what `motionsynth models`
  shows; training wrote its validation figures apart), and it gets a "Training" section (steps, device, wall time:
  ``training``) and a "Test split" section: the markdown tables of the benchmark records named in ``figures``
  (`bench.report.to_markdown`, docs/BENCHMARKS.md has the commands that wrote them; records of the float32 source);
- the index entry gets ``check``: one small benchmark (``task``, ``settings``, ``limit`` evenly spaced test windows,
  seed 0) run on the SHIPPED (fp16) model, with the value of ``metric`` in its first result row.
  tests/test_shipped_models.py (real_data) reruns it and asserts the same value within ``rel_tol``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHIP = [
    {"name": "hmvae-bandai", "source": "runs/hmvae/best",
     "for": "HM-VAE motion prior with its root trajectory module: in-betweening, completion, prediction and "
            "denoising by latent optimisation (slow: seconds to a minute a window)",
     "training": "3,000 steps of batch 16 (progressive_steps 1,000) in 31 minutes on one thread of the 2-core "
                 "development CPU (no GPU), at low priority beside other jobs.",
     "test_figures": ["in-betweening, 8 test windows: L2P 1.55 at a 30-frame gap (SLERP 3.29), 2.07 at 45 "
                      "(SLERP 3.38)"],
     "figures": ["docs/bench/inbetween_hmvae_bandai_limit8.json"],
     "check": {"task": "inbetween", "settings": {"gaps": [30]}, "limit": 2, "metric": "l2p", "rel_tol": 0.02}},
    {"name": "cvae-bandai", "source": "runs/cvae-long/best",
     "for": "in-betweening, completion and prediction in one forward pass, with or without an action label; "
            "it also generates by label, but diffusion-bandai is the generator to use",
     "training": "18,000 steps of batch 16 on one thread of the 2-core development CPU (no GPU): 8,000 at a "
                 "constant learning rate of 1e-3 in 55 minutes (runs/cvae, best validation step 7,500), then 10,000 "
                 "more from that checkpoint with a cosine decay from 5e-4 (runs/cvae-long; about 75 minutes over "
                 "two sessions with --resume, beside other jobs; this export: step 10,000).",
     "test_figures": ["in-betweening, gap 30: L2P 1.66 (SLERP 2.86)",
                      "prediction, 1-30 frames: MPJPE 9.30 cm (constant velocity 15.28 cm)",
                      "completion, upper body missing: MPJPE 8.08 cm"],
     "figures": ["docs/bench/inbetween_cvae_long.json", "docs/bench/predict_cvae_long.json",
                 "docs/bench/complete_cvae_long.json", "docs/bench/generate_cvae_long.json"],
     "check": {"task": "inbetween", "settings": {"gaps": [30]}, "limit": 16, "metric": "l2p", "rel_tol": 0.02}},
    {"name": "delta-bandai", "source": "runs/delta-union/best",
     "for": "in-betweening in one forward pass, the most accurate here: a transformer adds a residual to the "
            "interpolation of the keyframes (the Δ-interpolator); deterministic, no labels",
     "training": "20,000 steps of batch 16 (the family's defaults, configs/delta.yaml) on Bandai Namco 1 + 2 "
                 "(cache/bandai12, 3,076 takes) on one thread of the 2-core development CPU (no GPU), beside other "
                 "jobs, over two sessions with --resume: about 21 minutes for the first 6,500 steps, 39 for the other "
                 "13,500; best validation at step 20,000. Chosen over the Bandai-2-only model (runs/delta) on the "
                 "union's validation windows (L2P at gap 30: 0.991 vs 1.015).",
     "test_figures": ["in-betweening, gap 30, L2P: Bandai 2 test 0.82 (SLERP 2.86), Bandai 1 test 1.81 (SLERP 2.39), "
                      "both 0.93 (SLERP 2.72); 8 ms a window on one CPU thread"],
     "figures": ["docs/bench/inbetween_delta_union.json", "docs/bench/inbetween_union_delta.json",
                 "docs/bench/inbetween_bandai1_delta_union.json"],
     "check": {"task": "inbetween", "settings": {"gaps": [30]}, "limit": 16, "metric": "l2p", "rel_tol": 0.02}},
    {"name": "diffusion-bandai", "source": "runs/diffusion/best",
     "for": "label-conditioned generation (DDIM, classifier-free guidance); tasks by re-imposed inpainting",
     "training": "16,000 steps of batch 32 on one thread of the 2-core development CPU (no GPU), over two sessions "
                 "with --resume: about 4,900 steps in the first (wall time not recorded), 11,100 in 81 minutes in "
                 "the second, beside other jobs.",
     "test_figures": ["generation, 1,000 samples: classifier accuracy 0.925 (real 0.998), FID 107.7 (real 30.9), "
                      "diversity 44.1 (real 43.8)"],
     "figures": ["docs/bench/generate_diffusion.json"],
     "check": {"task": "predict", "settings": {}, "limit": 8, "metric": "mpjpe_cm", "rel_tol": 0.02}},
    {"name": "diffusion-bandai12", "source": "runs/diffusion-union-24k",
     "for": "label-conditioned generation of all 25 actions of Bandai Namco 1 + 2 (punch, kick, slash, dance, bow "
            "... besides Bandai 2's ten); DDIM, classifier-free guidance (--option guidance=0, chosen on the union's "
            "validation split; higher w: more recognisable, less varied); for Bandai 2's ten actions "
            "diffusion-bandai is better",
     "training": "24,000 steps of batch 32 (label_slots 32, the family's defaults otherwise) on Bandai Namco 1 + 2 "
                 "(cache/bandai12, 3,076 takes) on one thread of the 2-core development CPU (no GPU), over two "
                 "sessions with --resume beside other jobs: about 7,500 steps in the first (wall time not recorded), "
                 "8,500 in 43 minutes in the second (to 16,000, the schedule's first end), then resumed with "
                 "--max-steps 24000 (the cosine schedule follows the new length), 8,000 more in about 60 minutes; "
                 "best validation at step 24,000 (x0 error 0.0652; 0.0676 at 16,000). The first command: "
                 "`motionsynth train diffusion --data cache/bandai12 --out runs/diffusion-union --set "
                 "train.batch_size=32 --set train.steps=16000 --set model.label_slots=32`.",
     "test_figures": ["generation, union test, 1,000 samples in the split's label mix, guidance 0: recognised 0.752 "
                      "(real 0.970), FID 110 (real 39.0); guidance 1.5: 0.860, FID 224"],
     "figures": ["docs/bench/generate_diffusion_union24k_w0.json", "docs/bench/generate_diffusion_union24k_w1.5.json"],
     "check": {"task": "predict", "settings": {}, "limit": 8, "metric": "mpjpe_cm", "rel_tol": 0.02}},
    {"name": "diffusion-cond-bandai", "source": "runs/diffusion-cond-x0/best",
     "for": "in-betweening, completion, prediction by a diffusion network conditioned on the observation",
     "training": "3,500 steps of batch 32 (1,000, then resumed to 3,500 and stopped for CPU time) on one thread of "
                 "the 2-core development CPU (no GPU), beside other jobs, about 45 minutes.",
     "test_figures": ["in-betweening, gap 30: L2P 1.95 (SLERP 2.86)",
                      "completion, left arm missing: MPJPE 4.99 cm; upper body missing: 6.58 cm"],
     "figures": ["docs/bench/inbetween_diffusion_cond.json", "docs/bench/complete_diffusion_cond.json"],
     "check": {"task": "inbetween", "settings": {"gaps": [30]}, "limit": 8, "metric": "l2p", "rel_tol": 0.02}},
    {"name": "meva-bandai", "source": "runs/meva-union/best",
     "for": "denoising noisy per-frame poses (a video pose estimator's output): MEVA's coarse motion from the "
            "motion VAE's latent plus residual refinement, one forward pass per window",
     "training": "On Bandai Namco 1 + 2 (cache/bandai12, 3,076 takes): the motion VAE (`mvae`, configs/mvae.yaml: "
                 "mirror + speed + yaw augmentation) 6,000 steps of batch 16 in 25 minutes, then MEVA on it "
                 "(`configs/meva.yaml`, trained on the mixed noise model) 3,000 steps of batch 16 in 30 minutes; "
                 "each on one thread of the 2-core development CPU (no GPU), beside other jobs; best validation at "
                 "the last step of each (MEVA's still falling: 0.142 -> 0.132 over its last 500 steps). Chosen over "
                 "the Bandai-2 model on the union's validation windows (mixed noise, MPJPE 4.65 vs 4.76 cm).",
     "test_figures": ["denoising, mixed noise, Bandai-2 test: MPJPE 8.37 -> 4.43 cm, acceleration error 10.5 -> 0.32",
                      "gaussian noise, Bandai-2 test: MPJPE 3.14 -> 2.02 cm",
                      "mixed noise, union test: MPJPE 8.38 -> 4.65 cm (the Bandai-2 model 4.80)"],
     "figures": ["docs/bench/denoise_meva_union.json", "docs/bench/denoise_union_meva.json"],
     "check": {"task": "denoise", "settings": {"noise_models": ["mixed"]}, "limit": 8, "metric": "mpjpe_cm",
               "rel_tol": 0.02}},
    {"name": "delta-denoise-bandai", "source": "runs/dd-gaussian/best",
     "for": "denoising jittery per-frame poses (gaussian noise: a pose estimator's frame-to-frame jitter): the "
            "smoothing filter (smooth, weight 0.3), then a transformer's residual; one forward pass per window",
     "training": "Two stages on Bandai 2 (cache/bandai2), one thread of the 2-core development CPU (no GPU), beside "
                 "other jobs: 1,179 steps of batch 16 on mixed noise without the acceleration term (runs/dd-mixed, "
                 "25 minutes), 2,000 with it (runs/dd-mixed-acc, 30 minutes), then 1,000 on gaussian noise from that "
                 "checkpoint (runs/dd-gaussian, learning rate 5e-4, 18 minutes); best validation at step 1,000.",
     "test_figures": ["denoising, gaussian noise: MPJPE 3.14 -> 1.12 cm (the tuned smooth filter 1.33), acceleration "
                      "error 7.70 -> 0.35 (smooth 0.38)"],
     "figures": ["docs/bench/denoise_dd_gaussian.json"],
     "check": {"task": "denoise", "settings": {"noise_models": ["gaussian"]}, "limit": 8, "metric": "mpjpe_cm",
               "rel_tol": 0.02}},
    {"name": "classifier-bandai", "source": "runs/classifier-union/model",
     "for": "action recogniser (content, style) for the 25 contents and 16 styles of Bandai Namco 1 + 2: the "
            "evaluator of `bench generate` and `synthesize --classifier`",
     "training": "3,000 steps of batch 64 (the family's defaults) on Bandai Namco 1 + 2 (cache/bandai12, 3,076 "
                 "takes) on one thread of the 2-core development CPU (no GPU), beside a diffusion training, about "
                 "3 minutes. Replaces the Bandai-2 recogniser (content 0.984 / 1.000 per window / take on Bandai 2's "
                 "test split), which cannot name Bandai 1's actions.",
     "test_figures": ["union test split: content 0.956 per window, 0.994 per take; style 0.966 / 0.971",
                      "Bandai-2 test split: content 0.981 per window, 1.000 per take; style 1.000"],
     "figures": ["docs/bench/classify_union.json", "docs/bench/classify_union_on_bandai2.json"],
     "check": {"task": "classify", "settings": {}, "limit": 64, "metric": "accuracy", "rel_tol": 0.0}},
]


def figures_section(paths: list[str]) -> str:
    from motionsynth.bench.report import load_records, to_markdown

    parts = ["## Test split", "", "Benchmark records of the float32 source (docs/BENCHMARKS.md has their commands):", ""]
    for path in paths:
        if not Path(path).is_file():
            continue
        for record in load_records(path):
            parts += [f"`{path}`:", "", to_markdown(record), ""]
    return "\n".join(parts)


def with_test_figures(card: str, lines: list[str]) -> str:
    """The card with its ``## Test figures`` section replaced by ``lines`` as bullets."""
    head, found, rest = card.partition("## Test figures\n")
    if not found:
        return card
    _, _, tail = rest.partition("\n## ")
    return head + found + "".join(f"- {line}\n" for line in lines) + ("\n## " + tail if tail else "")


def check_value(name: str, data: str, check: dict) -> float:
    from motionsynth.bench.protocol import run_benchmark

    record = run_benchmark(check["task"], data, model=name, settings=check["settings"] or None, seed=0,
                           limit=check["limit"], progress=False)
    return float(record["results"][0][check["metric"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="cache/bandai2")
    ap.add_argument("--only", help="comma-separated names")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from motionsynth.checkpoint import export_model, update_index

    only = set(args.only.split(",")) if args.only else None
    for entry in SHIP:
        name = entry["name"]
        if (only and name not in only) or not Path(entry["source"]).is_dir():
            continue
        folder = export_model(entry["source"], name, fp16=True, purpose=entry["for"])
        card = with_test_figures((folder / "card.md").read_text(), entry["test_figures"])
        head, _, dist = card.partition("\n## Distribution\n")
        training = f"## Training\n\n{entry['training']}\n\n"
        (folder / "card.md").write_text(head.rstrip("\n") + "\n\n" + training + figures_section(entry["figures"])
                                        + "\n## Distribution\n" + dist)
        value = check_value(name, args.data, entry["check"])
        update_index(name, {"check": {**entry["check"], "value": value}})
        print(f"{name}: {folder} ({sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.1f} MB), "
              f"check {entry['check']['task']} {entry['check']['metric']} = {value:.6g}")


if __name__ == "__main__":
    main()
