# The two commands of the README: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
export MTLREC_DATA_MIRRORS ?= $(abspath $(SHARED_DATA))
# the cache is mtlrec's own default (~/.cache/mtlrec, or MTLREC_CACHE_DIR when set), the
# same one the commands use when called directly

.PHONY: install browser demo test test-fast lint bench serve-artifact bench-serve bench-soak \
	serve-artifact-seq bench-serve-seq clean

install: $(VENV)/.installed

# torch first, pinned to the CPU wheel: a bare `torch` would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# Prepares MovieLens-100K, trains the sequential multi-task model of
# configs/ml-100k-sequential.yaml (a self-attention encoder over the user's history of LM
# item vectors; interest over the whole catalogue, like, rating, genres; leave-one-out by
# time) to early stopping, refits its auxiliary heads, evaluates it on validation and test
# (per task, cold items, full ranking) and prints the tables. The text embeddings are
# cached, so a second run encodes nothing; a finished demo run is not trained again
# (`mtlrec train ... --overwrite` retrains it). `train` prepares the data itself, into the
# cache.
# The demo trains with stride 25 (every training target after at least 25 earlier items)
# instead of the preset's 10: half the epoch cost (validation NDCG@10 0.1123 against
# 0.1205, 3 seeds; sequential_selection_ml-100k-loo.md), and for at most 35 epochs, still
# with early stopping (stride 25's best epochs: 24 to 47 over 4 runs; 34 in the demo's
# own with the preset's exclude_seen, 210 s after the install): the demo's budget is 5
# minutes after the install on a 2-core machine. It trains
# without the preset's weight average: an average over the last ~500 steps trails a run of
# ~900 (test NDCG@10 0.0948 with it, 0.1050 without; mtl_vs_stl_candidates/README.md).
# Its head refit stops after 10 epochs instead of 20 (about 4 s each; like and rating
# peaked at epochs 7-8 of the 20, genres kept creeping up to 0.9993 AUC at the 19th).
demo: install
	$(VENV)/bin/mtlrec train --config configs/ml-100k-sequential.yaml --out runs/ml-100k \
		--set model.params.stride=25 --set training.epochs=35 --set training.ema=null \
		--set training.refit_heads.epochs=10 --skip-if-done

# The report's browser test (tests/integration/test_report_browser.py) opens the HTML in
# headless Chromium through selenium; it fails, never skips, without a browser. Debian's
# packages give a matching chromium + chromedriver pair; installed only when one is missing
# (apt needs root, which CI has).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			chromium chromium-driver; \
	fi

test: install browser
	$(PY) -m pytest -q -n 2

# unit and contract tests only (no integration tests over the real datasets, no browser)
test-fast: install
	$(PY) -m pytest -q -n 2 tests/unit tests/contract

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

bench: install
	$(PY) benchmarks/prepare_speed.py --out benchmarks/results/prepare_speed.json
	$(PY) benchmarks/mtl_vs_stl.py --out benchmarks/results/mtl_vs_stl.json
	$(PY) benchmarks/fusion.py --dataset ml-100k --seeds 0 1 2
	$(PY) benchmarks/fusion.py --dataset amazon-mi --seeds 0 1 2

# The peer frameworks (RecBole, torch-rechub) live in their own venv: RecBole 1.2.1 pins
# old libraries and is only needed to benchmark against it (issue 5). About two hours on
# 2 cores; results in benchmarks/results/peers_*.{json,md}.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
	touch $@

bench-peers: install $(BENCH_VENV)/.installed
	BENCH_PY=$(BENCH_VENV)/bin/python PY=$(PY) bash benchmarks/peers/run_all.sh

# The HTTP service under load (issues 6 and 14), on the Amazon Musical Instruments run,
# fused and exported (serve-artifact: each step skipped when its output exists). Run them on
# a quiet machine: the client shares the cores with the server.
# bench-serve: benchmarks/serve_load.py, POST /v1/recommend k=10 open loop: 50 requests/s
#   for 60 s -> benchmarks/results/serve_load.*, then the sweep 50, 100, 200, 400 requests/s
#   with 1 and 2 uvicorn workers, 60 s a point (about 10 minutes) ->
#   benchmarks/results/serve_load_sweep.* (the knee, the 200/s goal). RESUME=--resume keeps
#   the points an interrupted sweep already wrote.
# bench-soak: benchmarks/serve_soak.py, 30 minutes at 50 requests/s with a hot reload every
#   minute (about 32 minutes) -> benchmarks/results/serve_soak.* (+ .progress.jsonl).
SERVE_RUN ?= runs/mi-serve
SERVE_ARTIFACT = "$$(dirname "$$(ls $(SERVE_RUN)-artifacts/*/manifest.json | tail -1)")"
RESUME ?=
serve-artifact: install
	test -f $(SERVE_RUN)/model.pt || $(VENV)/bin/mtlrec train \
		--config configs/amazon-musical-instruments.yaml --out $(SERVE_RUN)
	test -f $(SERVE_RUN)/fusion/fusion.yaml || $(VENV)/bin/mtlrec fuse --run $(SERVE_RUN) \
		--config configs/fusion/amazon-musical-instruments.yaml
	ls $(SERVE_RUN)-artifacts/*/manifest.json >/dev/null 2>&1 || $(VENV)/bin/mtlrec export \
		$(SERVE_RUN) --out $(SERVE_RUN)-artifacts --name amazon-mi-fused

bench-serve: serve-artifact
	OMP_NUM_THREADS=1 $(PY) benchmarks/serve_load.py --rate 50 --duration 60 \
		--artifact $(SERVE_ARTIFACT)
	OMP_NUM_THREADS=1 $(PY) benchmarks/serve_load.py --rate 50 100 200 400 --workers 1 2 \
		--duration 60 $(RESUME) --artifact $(SERVE_ARTIFACT)

bench-soak: serve-artifact
	OMP_NUM_THREADS=1 $(PY) benchmarks/serve_soak.py --minutes 30 --rate 50 --reload-every 60 \
		--artifact $(SERVE_ARTIFACT)

# The same sweep on the sequential multi-task model alone (configs/amazon-mi-sequential.yaml,
# no fusion) -> benchmarks/results/serve_load_sweep_sequential.*. Its first training tunes
# the LM on the review sentiment (cached after).
SEQ_SERVE_RUN ?= runs/mi-seq-serve
SEQ_SERVE_ARTIFACT = "$$(dirname "$$(ls $(SEQ_SERVE_RUN)-artifacts/*/manifest.json | tail -1)")"
serve-artifact-seq: install
	test -f $(SEQ_SERVE_RUN)/model.pt || $(VENV)/bin/mtlrec train \
		--config configs/amazon-mi-sequential.yaml --out $(SEQ_SERVE_RUN)
	ls $(SEQ_SERVE_RUN)-artifacts/*/manifest.json >/dev/null 2>&1 || $(VENV)/bin/mtlrec export \
		$(SEQ_SERVE_RUN) --out $(SEQ_SERVE_RUN)-artifacts --name amazon-mi-seq

bench-serve-seq: serve-artifact-seq
	OMP_NUM_THREADS=1 $(PY) benchmarks/serve_load.py --rate 50 100 200 400 --workers 1 2 \
		--duration 60 $(RESUME) --artifact $(SEQ_SERVE_ARTIFACT) \
		--out benchmarks/results/serve_load_sweep_sequential

clean:
	rm -rf $(VENV) $(BENCH_VENV) .cache runs
