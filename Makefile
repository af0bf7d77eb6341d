# Emoticana. Quickstart: `make serve`, then `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv serve test sql clean-state

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

serve: venv
	exec $(PY) -m server serve

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# make sql FILE=sql/examples/01_audio_functions.sql
sql: venv
	$(PY) -m server sql $(FILE)

clean-state:
	rm -rf .emoticana
