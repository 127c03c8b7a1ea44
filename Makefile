# vigil — `make run` (the whole pipeline on the bundled sample) and `make test` (the test suite).
# A fresh machine needs only Python 3.11 and pip: the first target builds .venv with the pinned stack.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vigil-installed

# Offline switches (also set by `import vigil`): nothing reaches a model hub or pip-installs at run time.
export YOLO_OFFLINE=1
export YOLO_AUTOINSTALL=False
export ORT_DISABLE_TELEMETRY=1
export NO_ALBUMENTATIONS_UPDATE=1
export DVC_NO_ANALYTICS=1
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export GX_ANALYTICS_ENABLED=False
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast lint format env plots browser sample bench bench-scale prune-remote clean

run: $(STAMP)  ## pull the sample data (and released outputs) from the bundled remote, then dvc repro
	$(BIN)/dvc pull --allow-missing
	$(BIN)/dvc repro
	@echo; cat reports/gate.md

test: $(STAMP)  ## the whole suite (slow end-to-end tier included)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## the fast tier: no end-to-end run, no training or quantizing (≤ 5 min on 2 cores)
	$(BIN)/python -m pytest -m "not slow and not trains"

lint: $(STAMP)  ## ruff (lint + format check) and mypy, configured in pyproject.toml
	$(BIN)/ruff check src stages tests benchmarks
	$(BIN)/ruff format --check src stages tests benchmarks
	$(BIN)/mypy

format: $(STAMP)  ## rewrite the code in the house style (ruff format, then the safe lint fixes)
	$(BIN)/ruff format src stages tests benchmarks
	$(BIN)/ruff check --fix src stages tests benchmarks

env: $(STAMP)

plots: $(STAMP)  ## every plot dvc.yaml declares as one self-contained page (no network): reports/plots.html
	$(BIN)/vigil plots --out reports/plots.html

browser:  ## headless Chromium for the `browser` tests (pytest -m browser; they skip without it)
	command -v chromium >/dev/null || apt-get install -y chromium

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# ultralytics pulls opencv-python, albumentations opencv-python-headless: both write cv2/: keep the headless one
	$(BIN)/python -m pip uninstall --quiet -y opencv-python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps opencv-python-headless==5.0.0.93
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

sample: $(STAMP)  ## rebuild data/ from the pinned Debian sources (needs apt-get), then re-track it
	$(BIN)/vigil data build-sample --out data
	$(BIN)/dvc add data
	$(BIN)/dvc push

bench: $(STAMP)  ## benchmarks that print numbers
	$(BIN)/python benchmarks/hash_benchmark.py --data data
	$(BIN)/python benchmarks/validate_benchmark.py data
	$(BIN)/python benchmarks/interlock_split.py --sizes 5x4 6x5 7x5 8x6 --seeds 0 1 2
	$(BIN)/python benchmarks/calibration_benchmark.py --data data --split artifacts/split \
		--val-detections artifacts/evaluate/detections_val.json \
		--test-detections artifacts/evaluate/detections_test.json

bench-scale: $(STAMP)  ## issue #15's table at 100k generated images (hash, no-op hash, check, split; this tree beside BASELINE)
	$(BIN)/python benchmarks/scale_benchmark.py --baseline $(or $(BASELINE),23b4156) --report reports/bench/scale.md

prune-remote: $(STAMP)  ## after committing a release: keep in .dvc/storage only what HEAD's dvc.lock and data.dvc use
	$(BIN)/dvc gc --rev HEAD --cloud --remote bundled --force

clean:
	rm -rf $(VENV) .vigil
