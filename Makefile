# The two set-up commands: `make run` (main job on the embedded default) and `make test`.
# Both create .venv if missing and install the pinned versions of constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= configs/cpu.yaml
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test quick notebooks install browser lab smoke dryrun bench clean-outputs help

help:
	@echo "make run    - set up, then run the whole curriculum (notebooks 00-10) on the generated corpus ($(PROFILE))"
	@echo "make test   - set up (incl. headless chromium when root), then run the test suite"
	@echo "make quick  - the quick suite: every test not marked slow (no notebook run, browser or long training)"
	@echo "make notebooks - rebuild notebooks/*.ipynb from tools/notebooks/build_*.py"
	@echo "make lab    - open the notebooks in JupyterLab on 127.0.0.1"
	@echo "make smoke  - the tiny CI profile end to end"
	@echo "make dryrun - the GPU profile (configs/gpu_iemocap.yaml) on CPU at real model size, stand-in models, small corpus"
	@echo "make bench  - the benchmarks in bench/"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@# compile librosa's numba pitch tracker (yin) once into the venv's cache: 23 s here, otherwise paid by the
	@# first stage that tracks pitch (notebook 00's plots; the baseline's features in 04)
	$(PY) -c "import numpy as np, librosa; librosa.yin(np.sin(np.arange(16000, dtype=np.float32) / 20), fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=160)"
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser test of the demo; installed only when running as root and missing.
browser:
	@if command -v chromium >/dev/null 2>&1; then true; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian chromium for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium install failed: the browser test will be skipped"; \
	else echo "chromium missing and not root: the browser test will be skipped"; fi

run: install
	$(VENV)/bin/ser pipeline --profile $(PROFILE)

smoke: install
	$(VENV)/bin/ser pipeline --profile configs/smoke.yaml

test: install browser
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

quick: install
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

notebooks: install
	@for f in tools/notebooks/build_*.py; do $(PY) $$f || exit 1; done

lab: install
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --no-browser --allow-root --notebook-dir notebooks

# Every notebook of the GPU profile, offline, with random-init stand-ins of its real models (ser_helpers.dryrun);
# stage table in outputs/gpu_iemocap_dryrun/dryrun_stages.md. 11 CPU min (30 min wall on a busy 2-core machine).
dryrun: install
	$(VENV)/bin/ser pipeline --dry-run --profile configs/gpu_iemocap.yaml

bench: install
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean-outputs:
	find outputs -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
