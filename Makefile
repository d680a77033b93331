# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TS := $(VENV)/bin/touchstream
STAMP := $(VENV)/.installed
# The dashboard's browser test drives Debian's Chromium through Playwright (never a browser download).
CHROMIUM ?= /usr/bin/chromium

.PHONY: venv jars demo test unit integration faults up down status bench clean check-browser

# pip's build chatter goes to a log; it is printed only when the install fails.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	$(PY) -m pip install --quiet -e '.[test]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@echo "installed touchstream and its dependencies into $(VENV)"
	touch $(STAMP)

venv: $(STAMP)

jars: $(STAMP)
	$(TS) jars

demo: $(STAMP)
	$(TS) demo

# Checked first: a missing browser should stop `make test` in a second, not fail one test at its end.
check-browser:
	@test -x $(CHROMIUM) || { echo "make test needs Chromium at $(CHROMIUM) for the dashboard's browser test;" \
		"install it with: sudo apt-get install -y chromium   (see README, Quick start)" >&2; exit 1; }

test: check-browser $(STAMP)
	$(TS) jars
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: check-browser $(STAMP)
	$(TS) jars
	$(PY) -m pytest -q tests/integration

# Faults (kill -9, broker restart, registry outage, a file published twice), each on a stack of its own and
# compared with a clean run by hash; see README "Tests". A larger run: TOUCHSTREAM_FAULT_CUSTOMERS=200.
faults: $(STAMP)
	$(TS) jars
	$(PY) -m pytest -q tests/faults

# The performance bench at 100k events (`make bench EVENTS=1000000` for the 1M run); see README "Performance".
EVENTS ?= 100000
bench: $(STAMP)
	$(TS) jars
	$(TS) bench --events $(EVENTS)

up: $(STAMP)
	$(TS) up

down: $(STAMP)
	$(TS) down

status: $(STAMP)
	$(TS) status

clean:
	rm -rf $(VENV) build *.egg-info
