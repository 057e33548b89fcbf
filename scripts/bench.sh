#!/usr/bin/env bash
# The baseline benchmarks of docs/BENCHMARKS.md ("Baselines"): `make bench`, i.e.
#   bash scripts/bench.sh DATA_DIR CACHE [extra `motionsynth bench` options, e.g. --limit 50]
# Prepares the Bandai Namco 2 cache if CACHE has none, then runs the four baseline benchmarks on the TEST split,
# printing each markdown table and writing docs/bench/<task>.json (one record per method).
set -euo pipefail
usage="usage: scripts/bench.sh DATA_DIR CACHE [motionsynth bench options]"
DATA_DIR=${1:?$usage}
CACHE=${2:?$usage}
shift 2
BIN=${BIN:-.venv/bin}
OUT=${OUT:-docs/bench}

if [ ! -f "$CACHE/meta.json" ]; then
  "$BIN/motionsynth" data prepare "$DATA_DIR/bandai-namco-motion-2.zip" --dataset bandai-namco --out "$CACHE"
fi
mkdir -p "$OUT"

run() {
  local task=$1 methods=$2
  shift 2
  echo "\$ motionsynth bench $task --data $CACHE --method $methods --json $OUT/$task.json $*"
  "$BIN/motionsynth" bench "$task" --data "$CACHE" --method "$methods" --json "$OUT/$task.json" "$@"
  echo
}

run inbetween zero-velocity,slerp "$@"
run complete mean-pose,nearest-neighbour "$@"
run predict zero-velocity,constant-velocity "$@"
run denoise savgol,gaussian,one-euro "$@"
