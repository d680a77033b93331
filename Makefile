# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TS := $(VENV)/bin/touchstream
STAMP := $(VENV)/.installed

.PHONY: venv jars demo test unit integration up down status bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

jars: $(STAMP)
	$(TS) jars

demo: $(STAMP)
	$(TS) demo

test: $(STAMP)
	$(TS) jars
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(TS) jars
	$(PY) -m pytest -q tests/integration

up: $(STAMP)
	$(TS) up

down: $(STAMP)
	$(TS) down

status: $(STAMP)
	$(TS) status

clean:
	rm -rf $(VENV) build *.egg-info
