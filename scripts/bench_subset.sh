#!/usr/bin/env bash
# A fixed --limit subset of every task for the baselines, the HM-VAE prior and MEVA: minutes on a CPU. Run it before
# and after a change that must not move any figure, then compare with scripts/compare_records.py.
# usage: bash scripts/bench_subset.sh CACHE RUNS OUT   (RUNS holds hmvae/, mvae/, meva/ runs with best/ exports and,
# when present, cvae/ and diffusion/ runs: the shipped models can stand in, linked as RUNS/NAME/best)
set -u
C=$1; R=$2; OUT=$3
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
b() { local name=$1; shift; motionsynth bench "$@" --data "$C" --no-progress --json "$OUT/$name.json" > "$OUT/$name.md" \
        || echo "FAIL $name" >&2; }
b inbetween_base inbetween --method slerp,zero-velocity --limit 8
b complete_base complete --method nearest-neighbour,mean-pose --limit 6 -s missing=[lower_body]
b predict_base predict --method constant-velocity,zero-velocity --limit 8
b denoise_base denoise --method gaussian --limit 4 -s noise_models=[mixed] -s tune_windows=8
b inbetween_hmvae inbetween --model "$R/hmvae/best" --limit 3 -s gaps=[15] --option restarts=4
b complete_hmvae complete --model "$R/hmvae/best" --limit 3 -s missing=[lower_body] --option restarts=4 \
    --option phase1_iters=20 --option phase2_iters=20
b complete_hmvae_nearest complete --model "$R/hmvae/best" --limit 3 -s missing=[lower_body] --option init=nearest
b predict_hmvae predict --model "$R/hmvae/best" --limit 2 --option restarts=2
b denoise_hmvae denoise --model "$R/hmvae/best" --limit 3 -s noise_models=[mixed] --option refine=overlap
b denoise_meva denoise --model "$R/meva/best" --limit 6 -s noise_models=[mixed]
b reconstruct reconstruct --model "$R/hmvae/best" --model "$R/mvae/best" --limit 16
if [ -e "$R/cvae/best" ]; then
  b inbetween_cvae inbetween --model "$R/cvae/best" --limit 4 -s gaps=[15] -s samples=2
  b complete_cvae complete --model "$R/cvae/best" --limit 3 -s missing=[lower_body]
  b predict_cvae predict --model "$R/cvae/best" --limit 3
fi
if [ -e "$R/diffusion/best" ]; then
  b inbetween_diffusion inbetween --model "$R/diffusion/best" --limit 2 -s gaps=[15] --option steps=5
  b predict_diffusion predict --model "$R/diffusion/best" --limit 2 --option steps=5
fi
