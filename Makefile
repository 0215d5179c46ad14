# EventSink: one Makefile for installing, running, testing, checking and benchmarking.
# Everything runs in the virtual environment .venv, created on first use (PYTHON=... uses another
# interpreter as it is, e.g. PYTHON=python3 for an environment you manage yourself).
VENV ?= .venv
BASE_PYTHON ?= python3
PYTHON ?= $(VENV)/bin/python
PYTEST_ARGS ?=
# the virtual environment is a prerequisite only when PYTHON is its interpreter
VENV_DEP := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/bin/python)
ifneq ($(VENV_DEP),)
# commands the recipes start (eventsink, gunicorn) come from the virtual environment too
export PATH := $(abspath $(VENV))/bin:$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
endif

.PHONY: install services test test-fast check bench soak run stop clean cluster cluster-stop

$(VENV)/bin/python:
	scripts/venv.sh $(BASE_PYTHON) $(VENV)

install: $(VENV_DEP)  ## pip install the project with every extra into .venv, plus Debian's services
	$(PYTHON) -m pip install -q -e '.[dev]'
	scripts/services.sh install

services:           ## start RabbitMQ and InfluxDB if they are not running
	scripts/services.sh start

test:               ## the whole suite (unit + integration against the real services)
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-fast:          ## unit tests only, no services needed
	$(PYTHON) -m pytest -q -m "not rabbitmq and not influxdb and not disruptive and not slow" $(PYTEST_ARGS)

check:              ## ruff and mypy
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

bench:              ## benchmarks: ratios against baselines measured in the same run
	PYTHON=$(PYTHON) scripts/bench.sh

soak:               ## 10-minute steady-load soak of the API and workers (not in CI)
	$(PYTHON) bench/soak.py --minutes 10

cluster:            ## a 3-node RabbitMQ cluster on :5681-5683 beside the default broker
	scripts/cluster.sh start

cluster-stop:       ## stop that cluster and remove its data
	scripts/cluster.sh stop

run: $(VENV_DEP)    ## the whole system locally: services, API, workers, monitor, demo producer
	PYTHON=$(PYTHON) scripts/run.sh

stop:               ## stop what `make run` started
	scripts/run.sh stop

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
