# Sluice: `make run` starts the control plane on embedded defaults; `make test` runs the tests
# against real PostgreSQL and Redis servers that it starts and stops itself.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
INSTALLED := $(VENV)/.installed

.PHONY: run test bench lint format lock openapi system-packages test-servers clean

$(INSTALLED): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "Sluice needs Python 3.11, found %d.%d: set PYTHON=/path/to/python3.11" % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements-dev.lock -e '.[dev,test]'
	@touch $@

run: $(INSTALLED)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed
	@echo "Sluice control plane: http://$(HOST):$(PORT)/  (Ctrl-C stops web, worker and beat)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SLUICE_BIND=$(HOST):$(PORT) \
		$(VENV)/bin/honcho --procfile deploy/Procfile.local --app-root . start

system-packages:
	@bash tests/support/install-system-packages.sh

# The Kubernetes test servers and stripe-mock, built from their Go modules once per version, and
# the Kafka test broker's jars, fetched from Maven Central once per version; all cached outside
# the repository (tests/support/k8s/build.sh, tests/support/stripe/build.sh and
# tests/support/kafka/build.sh say where).
test-servers:
	@bash tests/support/k8s/build.sh
	@bash tests/support/stripe/build.sh
	@bash tests/support/kafka/build.sh
	@bash tests/support/helm/build.sh

test: system-packages test-servers $(INSTALLED)
	$(PY) -m tests.support.runner $(ARGS)

# Benchmarks of the clusters capability (tests/bench/), through the same harness as the tests:
# the last -m wins over the "not bench" of pyproject's addopts. Prints a table and writes
# var/bench/latest.json. BENCH narrows it to one file (pytest would run a file given beside its
# folder as part of the folder, so a path in ARGS alone does not); ARGS adds pytest options.
BENCH ?= tests/bench
bench: system-packages test-servers $(INSTALLED)
	$(PY) -m tests.support.runner $(BENCH) -m bench -p no:cacheprovider -s $(ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py makemigrations --check --dry-run

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The OpenAPI description is checked in (clients are generated from it); a test fails when it
# is stale. Regenerate it after changing the API:
OPENAPI := platform/controlplane/api/openapi.yaml
openapi: $(INSTALLED)
	$(PY) manage.py spectacular --validate --fail-on-warn --file $(OPENAPI)

# Re-resolve the pinned sets after changing dependencies in pyproject.toml: the runtime set
# (the image installs it) and the development set (make run / make test), which includes it.
LOCK := $(VENV)/bin/pip-compile --quiet --no-emit-find-links --strip-extras
lock: $(INSTALLED)
	$(PY) -m pip install --quiet pip-tools
	$(LOCK) --output-file requirements.lock pyproject.toml
	$(LOCK) --extra dev --extra test --constraint requirements.lock \
		--output-file requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
