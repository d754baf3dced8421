# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
SAMPLE_CATALOG := catalog/sample_catalog/catalog.jsonl
DEMO_SHIRTS := catalog/demo_catalog/catalog.jsonl

.PHONY: install db db-stop migrate static serve demo test bench lint clean-db wheel host-test

install: $(VENV)/.installed

# torch==2.13.0 is pinned in requirements.txt and constraints.txt pins everything else, so no
# later install can swap in a CUDA build of torch.
$(VENV)/.installed: requirements.txt requirements-onnx.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

# The embedded PostgreSQL 18 + pgvector, unless DATABASE_URL points at a server.
db: install
	@if [ -z "$$DATABASE_URL" ]; then $(PY) -m config.embedded_postgres start; \
	else echo "Using DATABASE_URL"; fi

db-stop: install
	$(PY) -m config.embedded_postgres stop

migrate: db
	$(PY) manage.py migrate --noinput

static: install
	$(PY) manage.py collectstatic --noinput --verbosity 0

# gunicorn (config/gunicorn.conf.py) with a Celery worker beside it; DEBUG stays off.
serve: migrate static
	@echo "Serving on http://$(HOST):$(PORT)/ (admin at /admin/). Ctrl-C stops it."
	$(PY) manage.py serve $(HOST):$(PORT)

demo: migrate
	$(PY) manage.py import_catalog $(SAMPLE_CATALOG)
	$(PY) manage.py import_catalog $(DEMO_SHIRTS)
	$(PY) manage.py install_default_model
	$(PY) manage.py demo_admin
	$(MAKE) --no-print-directory serve

test: db
	$(PY) -m pytest

# The plugin's wheel, built offline from the checkout (setuptools from the virtualenv, no index).
wheel: install
	rm -rf build
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --no-index -w dist .
	rm -rf build *.egg-info
	@ls -l dist/*.whl

# A fresh `django-admin startproject shop` in a fresh virtualenv with the built wheel, set up by the
# README's "Add it to your shop" steps (docs/integration.md); its own database on the project's server.
host-test: db
	packaging/host_project_test.sh

bench: migrate
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
