# Two entry points for a newcomer: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN      = $(VENV)/bin
DATA_DIR ?= $(if $(MOTIONSYNTH_DATA_DIR),$(MOTIONSYNTH_DATA_DIR),../shared/data)
CACHE   ?= cache/bandai2
# torch is pinned here (the install step), not in pyproject: a pinned CPU build installs from a local file on the
# project machines, while users with GPUs keep their own build.
TORCH   ?= torch==2.13.0

.PHONY: install tools lint typecheck test test-fast test-unit demo bench clean

$(BIN)/motionsynth: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/motionsynth

# the Khronos glTF validator (npm, pinned) that tests/test_gltf.py runs on written .glb files; needs node >= 18
GLTF_VALIDATOR ?= gltf-validator@2.0.0-dev.3.10
.tools/node_modules/gltf-validator/package.json:
	mkdir -p .tools
	npm install --prefix .tools --no-save --no-audit --no-fund --silent "$(GLTF_VALIDATOR)"

tools: .tools/node_modules/gltf-validator/package.json

lint: install typecheck
	$(BIN)/ruff check .

# mypy on src/motionsynth (lenient settings in pyproject.toml); part of `lint`, so CI runs it
typecheck: install
	$(BIN)/python -m mypy src/motionsynth

test: install tools
	MOTIONSYNTH_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-unit: install tools
	$(BIN)/python -m pytest -q -n 2 -m "not real_data"

# the quick loop while editing: no shared data, no browser, none of the tests marked slow
test-fast: install tools
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow and not real_data and not browser"

# `make demo DEMO_ARGS="--model inbetween=runs/cvae/best …"`: models other than the shipped ones
demo: install
	$(BIN)/python -m motionsynth.demo --data-dir "$(DATA_DIR)" --cache "$(CACHE)" --out out/demo $(DEMO_ARGS)

# Every method of every task side by side (quality, latency, frames/s, peak memory) on the same test windows →
# docs/bench/summary.json and the summary section of docs/BENCHMARKS.md. Options: `make bench BENCH_ARGS="--limit 16
# --model runs/cvae/best --device cuda"` (scripts/bench_summary.py --help). The full-split baseline tables:
# `bash scripts/bench.sh DATA_DIR CACHE` → docs/bench/<task>.json.
bench: install
	@test -f "$(CACHE)/meta.json" || $(BIN)/motionsynth data prepare "$(DATA_DIR)/bandai-namco-motion-2.zip" \
		--dataset bandai-namco --out "$(CACHE)"
	$(BIN)/python scripts/bench_summary.py --data "$(CACHE)" $(BENCH_ARGS)

clean:
	rm -rf $(VENV) cache out .pytest_cache
