# Emoticana. Quickstart: `make serve`, then `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

RAVDESS ?= $(abspath ../shared/ravdess)
PORT ?= 10000

.PHONY: venv browser serve test sql train train-default bench clean-state

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

serve: venv
	exec $(PY) -m server serve

# The console test drives Debian's headless Chromium; install it when missing (needs root or sudo).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: venv browser
	$(PY) -m pytest $(PYTEST_ARGS)

# make sql FILE=sql/examples/01_audio_functions.sql
sql: venv
	$(PY) -m server sql $(FILE)

# make train VIEW=my_view [ARGS="--epochs 30"]   (the server must be running: make serve)
train: venv
	$(PY) -m server train --view $(VIEW) $(ARGS)

# The shipped model: RAVDESS actors 01-20 from $(RAVDESS), 5-fold speaker cross-validation,
# then the final model into models/ (the server must be running: make serve).
train-default: venv
	$(PY) -m server sql sql/training/ravdess.sql --port $(PORT) --hivevar ravdess_dir=$(RAVDESS)
	$(PY) -m server train --view ravdess_train --port $(PORT) --models-dir models --cv-folds 5 $(ARGS)

# Throughput and latency table (README "Benchmarks"); not part of the tests.
bench: venv
	$(PY) bench/bench_inference.py --audio $(RAVDESS) $(ARGS)

# A Spark standalone master and workers on 127.0.0.1 (make cluster ARGS="--workers 2 --cores 1");
# then: EMOTICANA_MASTER=spark://127.0.0.1:PORT make serve
.PHONY: cluster
cluster: venv
	exec $(PY) -m server cluster $(ARGS)

clean-state:
	rm -rf .emoticana
