#!/usr/bin/env bash
# The diffusion model's benchmarks (docs/BENCHMARKS.md, "Motion diffusion"), in two lanes (one per CPU core).
#   bash scripts/bench_diffusion.sh [MODEL] [CLASSIFIER] [COND_MODEL]
# Lane 1: the guidance sweep on the VALIDATION split (w chosen there by diffusion_bench.py's rule), generation on the
# test split with that w,
# seams of 60 s clips, the sampler table (FID and latency per 120-frame clip). Lane 2: every task against the
# baselines on the test split, for MODEL (observation re-imposed) and COND_MODEL (a network conditioned on the
# observation). Records go to docs/bench/, logs to out/bench_diffusion/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-runs/diffusion/best}
CLASSIFIER=${2:-runs/classifier/model}
COND=${3:-runs/diffusion-cond-x0/best}
BIN=.venv/bin
export OMP_NUM_THREADS=1
mkdir -p out/bench_diffusion docs/bench
run() { /usr/bin/time -f "%e s wall" "$@"; }

lane1() {
    run $BIN/python scripts/diffusion_bench.py guidance --data cache/bandai2 --model "$MODEL" --classifier "$CLASSIFIER" \
        --split val --scales 0,0.5,1,1.5,2.5,4 --sampler ddim:20 --samples-per-label 30 --repetitions 1 \
        --plot docs/img/diffusion_guidance.png --json docs/bench/diffusion_guidance.json
    W=$($BIN/python -c "import json; print(json.load(open('docs/bench/diffusion_guidance.json'))['chosen_guidance'])")
    echo "guidance chosen on val: $W"
    run $BIN/motionsynth bench generate --data cache/bandai2 --model "$MODEL" --classifier "$CLASSIFIER" \
        --option guidance="$W" --samples-per-label 100 --repetitions 1 --no-progress --json docs/bench/generate_diffusion.json
    for m in "$MODEL" "$COND"; do
        run $BIN/python scripts/diffusion_bench.py seams --data cache/bandai2 --model "$m" --guidance "$W" --seconds 60 \
            --labels walk,run,wave-both-hands,raise-up-both-hands --json "docs/bench/seams_$(basename "$(dirname "$m")").json"
    done
    run $BIN/python scripts/diffusion_bench.py sampling --data cache/bandai2 --model "$MODEL" --classifier "$CLASSIFIER" \
        --guidance "$W" --samplers ddim:10,ddim:20,ddim:50,ddim:100,ddpm --samples-per-label 10 --repetitions 1 \
        --repeats 1 --json docs/bench/diffusion_sampling.json
}

lane2() {
    run $BIN/motionsynth bench inbetween --data cache/bandai2 --model "$MODEL" --method slerp --no-progress \
        --json docs/bench/inbetween_diffusion.json
    run $BIN/motionsynth bench complete --data cache/bandai2 --model "$MODEL" --no-progress \
        --json docs/bench/complete_diffusion.json
    run $BIN/motionsynth bench predict --data cache/bandai2 --model "$MODEL" --no-progress \
        --json docs/bench/predict_diffusion.json
    run $BIN/motionsynth bench denoise --data cache/bandai2 --model "$MODEL" --no-progress \
        --json docs/bench/denoise_diffusion.json
    for task in inbetween complete predict; do
        run $BIN/motionsynth bench $task --data cache/bandai2 --model "$COND" --no-progress \
            --json docs/bench/${task}_diffusion_cond.json
    done
}

lane1 > out/bench_diffusion/lane1.log 2>&1 &
lane2 > out/bench_diffusion/lane2.log 2>&1
wait
