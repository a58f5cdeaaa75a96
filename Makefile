# The two commands a developer needs: `make run` and `make test`.
# Both create the virtualenv and install pinned packages on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
# Python 3.11 to 3.13; 3.11 (what the project is developed on) when several are installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the test suite drives for real (binary or file:package); nginx serves the
# configuration in deploy/nginx/ to the tests in tests/services/test_nginx.py, PostgreSQL
# (initdb is not on PATH: Debian keeps it in /usr/lib/postgresql/N/bin) is the database of
# every server in tests/services/, and Chromium (with a font to render text: it is only a
# recommendation of the package) shows the chat page to tests/browser/.
SYSTEM_PACKAGES := redis-server:redis-server nginx:nginx initdb:postgresql chromium:chromium \
	/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf:fonts-liberation

.PHONY: help run stack test lint format typecheck audit coverage screenshots system-deps bench asyncapi openapi clean

help:
	@echo "make run    - start the chat on http://$(HOST):$(PORT)/ (SQLite, in-memory layer unless REDIS_URL/DATABASE_URL)"
	@echo "make stack  - the production topology on https://127.0.0.1:8443/: nginx (TLS), 2 daphne, redis, PostgreSQL (STACK_PORT, STACK_TEMP=1)"
	@echo "make test   - lint, typecheck, audit, then the whole test suite against real PostgreSQL, redis-server, daphne and nginx"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make format - ruff format and ruff check --fix"
	@echo "make typecheck - mypy with the Django, DRF and pydantic plugins over accounts, config, realtime and deploy"
	@echo "make audit  - known vulnerabilities in the pinned packages (exceptions: deploy/audit-exceptions.txt)"
	@echo "make coverage - the test suite under coverage, daphne processes included; report and htmlcov/"
	@echo "make asyncapi - regenerate docs/asyncapi.json from the protocol code (after changing a frame)"
	@echo "make openapi - regenerate docs/openapi.yaml from the REST views (after changing an endpoint)"
	@echo "make bench  - the project against the Channels tutorial and a bare relay (docs/benchmarks.md)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
	  echo "Python 3.11, 3.12 or 3.13 is required and no python3 was found."; \
	  echo "Install one (Debian 12: sudo apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.X"; \
	  exit 1; \
	fi
	@$(PYTHON) -c 'import sys; ok = (3, 11) <= sys.version_info[:2] <= (3, 13); sys.exit(0 if ok else f"Python 3.11, 3.12 or 3.13 is required, but {sys.executable} is {sys.version.split()[0]}.\nInstall one (Debian 12: sudo apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.X")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-run

# Installs what the tests need from Debian when missing and running as root;
# otherwise names the packages to install and stops. The tests start their own instances on
# free 127.0.0.1 ports, so the services the packages start on installation (nginx on port 80
# of every interface, redis-server on 6379, PostgreSQL's "main" cluster on 5432) are stopped
# and not started at boot.
system-deps:
	@missing=""; \
	for entry in $(SYSTEM_PACKAGES); do \
	  bin=$${entry%%:*}; pkg=$${entry##*:}; \
	  command -v "$$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$$bin" ] || [ -f "$$bin" ] || \
	    ls /usr/lib/postgresql/*/bin/"$$bin" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	    for pkg in $$missing; do \
	      if [ -d /run/systemd/system ]; then systemctl disable --now --quiet "$$pkg" 2>/dev/null || true; \
	      elif [ -x "/etc/init.d/$$pkg" ]; then "/etc/init.d/$$pkg" stop >/dev/null 2>&1 || true; fi; \
	    done; \
	    if command -v pg_lsclusters >/dev/null 2>&1; then \
	      pg_lsclusters -h 2>/dev/null | while read -r version cluster _; do \
	        pg_ctlcluster --force "$$version" "$$cluster" stop >/dev/null 2>&1 || true; \
	      done; \
	    fi; \
	  else \
	    echo "Missing system packages:$$missing"; \
	    echo "Install them with: sudo apt-get install$$missing"; \
	    exit 1; \
	  fi; \
	fi

run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py serve --bind $(HOST) --port $(PORT)

# The production topology on this machine, in the foreground until Ctrl-C (deploy/stack/run.py
# lists its options). It needs the servers only, not the browser the test suite drives.
STACK_PACKAGES := redis-server:redis-server nginx:nginx initdb:postgresql

stack: $(VENV)/.installed-run
	@$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="$(STACK_PACKAGES)"
	$(PY) -m deploy.stack

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

# Fails on a known vulnerability without an exception in deploy/audit-exceptions.txt, and when
# the packages could not be looked up (docs/dependencies.md). `make test` passes
# --allow-unavailable: there an unreachable vulnerability service is a warning, while a known
# vulnerability still fails the run.
audit: $(VENV)/.installed-dev
	$(PY) -m deploy.audit $(AUDIT_ARGS)

test: AUDIT_ARGS = --allow-unavailable
test: $(VENV)/.installed-dev system-deps lint typecheck audit
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite (or PYTEST_ARGS' part of it) under coverage, the tier-2 daphne processes included
# (pyproject.toml [tool.coverage.run]); the report is printed even when a test failed, and the
# make exits with pytest's status. Slower than `make test`, and not part of it.
coverage: $(VENV)/.installed-dev system-deps
	rm -rf .coverage .coverage.* htmlcov
	@status=0; $(VENV)/bin/coverage run -m pytest $(PYTEST_ARGS) || status=$$?; \
	$(VENV)/bin/coverage combine --quiet && \
	$(VENV)/bin/coverage report && \
	$(VENV)/bin/coverage html --quiet && \
	echo "HTML report: htmlcov/index.html"; \
	exit $$status

# Retakes docs/screenshots/ (the README's) from the browser tests that show the page.
screenshots: $(VENV)/.installed-dev system-deps
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser/test_chat_page.py \
	  -k "two_people_chat or fits_a_phone"

# Numbers, not pass/fail: the project against the Channels tutorial chat (both channels-redis
# layers) and a bare websockets relay on this machine, 3 rounds (about 20 minutes); writes
# docs/benchmarks.md and its chart. BENCH_ARGS="--quick" for a look; options in bench/compare.py.
bench: $(VENV)/.installed-dev system-deps
	$(PY) -m bench.compare $(BENCH_ARGS)

# The AsyncAPI document is generated from realtime/protocol.py and realtime/frames.py;
# tests/realtime/test_asyncapi.py fails until it is regenerated after a protocol change.
asyncapi: $(VENV)/.installed-run
	$(PY) manage.py asyncapi --output docs/asyncapi.json

# The OpenAPI schema of the REST API is generated from the views and serializers (drf-spectacular,
# config/openapi.py) and served at /api/schema/ and /api/docs/; tests/config/test_openapi.py
# fails until it is regenerated after an API change, or while the generator warns.
openapi: $(VENV)/.installed-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage .coverage.* htmlcov
