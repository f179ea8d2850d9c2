# gridmgmt — two commands: `make demo` and `make test` (see README.md).
# Everything is idempotent: a finished step is skipped on the next run.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help system venv audit services db demo-data demo serve test deploy-check prod-check restore-drill s3rver stop lint fmt bench bench-tools screenshots clean-var

ROOT      := $(realpath .)
VENV      := $(ROOT)/.venv
PY        := $(VENV)/bin/python
VAR       := $(ROOT)/var
HOST      ?= 127.0.0.1
PORT      ?= 8000
export PYTHONUNBUFFERED := 1
# settings.py defaults to production (DEBUG off, HTTPS only, a SECRET_KEY required). The local targets serve
# http://$(HOST) and run the tests, so they ask for development explicitly (var/local.env carries the same
# DEBUG=true and this checkout's generated SECRET_KEY).
demo test: export DEBUG ?= true
# The documented production environment (README, "Security"), with a throw-away key: `check --deploy` must
# pass under it with no warning.
PROD_ENV := DEBUG=false SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
            ALLOWED_HOSTS=grid.example.org CSRF_TRUSTED_ORIGINS=https://grid.example.org \
            SECURE_HSTS_SECONDS=3600 SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https NUM_PROXIES=1

APT_PKGS := postgresql-15-postgis-3 postgresql-client-15 gdal-bin libgdal32 libgeos-c1v5 libproj25 \
            redis-server chromium fonts-wqy-microhei espeak-ng nginx openssl nodejs

help:
	@echo "make demo   - install, start PostGIS + Redis, migrate, load the Pudong demo, serve on $(HOST):$(PORT)"
	@echo "make test   - the same set-up, then the whole test suite"
	@echo "make prod-check - deploy/'s nginx + two workers over HTTPS under var/prod-check/, smoke-tested, torn down"
	@echo "make restore-drill - back up a database with photos (scripts/backup.py), restore it fresh, compare"
	@echo "make stop   - stop the private PostgreSQL and Redis started under var/"
	@echo "make lint   - ruff check + format check"
	@echo "make audit  - known vulnerabilities in the pinned requirements (part of make test)"
	@echo "make bench  - run the benchmarks in bench/ (results in bench/results/)"
	@echo "make screenshots - refresh docs/face-*.png (the README's pictures of each face) from the demo"

## System packages (Debian 12, as root). Skipped when all are installed.
system:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> apt-get install $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=600 update -q && \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing; \
	fi

## Python virtualenv: the runtime set (requirements.txt) and the dev/test set (requirements-dev.txt), both
## pinned with hashes, so pip checks every download. Re-run only when either file changes.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements.txt -r requirements-dev.txt
	@touch $@

## Known vulnerabilities in the pinned sets (PyPI's advisory service; fails on any). When the service cannot
## be reached it prints a notice and passes.
audit: venv
	$(PY) scripts/audit.py requirements.txt requirements-dev.txt

## Private PostgreSQL/PostGIS and Redis under var/ unless DATABASE_URL / REDIS_URL are set.
services: system venv
	@bash scripts/services.sh start

db: services
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0

demo-data: db
	$(PY) manage.py demo_load

demo: demo-data
	@$(PY) manage.py demo_banner --host $(HOST) --port $(PORT)
	$(VENV)/bin/uvicorn gridmgmt.asgi:application --host $(HOST) --port $(PORT) --ws-max-size 65536 --no-access-log

serve: db
	$(VENV)/bin/uvicorn gridmgmt.asgi:application --host $(HOST) --port $(PORT) --ws-max-size 65536

test: services audit s3rver
	$(PY) manage.py check --fail-level WARNING
	$(MAKE) --no-print-directory deploy-check
	$(MAKE) --no-print-directory prod-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# The whole suite: tests/test_schemathesis.py (2–5 min of one core, in process, no servers) runs beside the
	@# rest on a test database of its own: ~3 min less wall time on the 2-core machine (README, "Development").
	@# With PYTEST_ARGS, just those.
	@if [ -n "$(PYTEST_ARGS)" ]; then exec $(VENV)/bin/pytest $(PYTEST_ARGS); fi; \
	log=$(VAR)/pytest-schemathesis.log; \
	TEST_DB_NAME=$${TEST_DB_NAME:-test_gridmgmt}_schema $(VENV)/bin/pytest tests/test_schemathesis.py >$$log 2>&1 & \
	schema=$$!; \
	$(VENV)/bin/pytest --ignore=tests/test_schemathesis.py; rest=$$?; \
	wait $$schema; schema_rc=$$?; \
	echo "==> tests/test_schemathesis.py (beside the rest; $$log):"; tail -n 30 $$log; \
	exit $$(( rest || schema_rc ))

## Django's deployment checks under the production environment above (part of make test).
deploy-check: venv
	$(PROD_ENV) $(PY) manage.py check --deploy --fail-level WARNING

## deploy/ as production runs it, on this machine: Debian's nginx (HTTPS, HTTP/2, a self-signed certificate) in
## front of two uvicorn workers with DEBUG off, on the private PostgreSQL (a test database of its own) and Redis,
## everything under var/prod-check/ on free high ports; a smoke scenario through it, then all of it stopped, even
## on failure (tests/prod_check/; part of make test). The system's nginx service is never touched.
prod-check: services
	TEST_DB_NAME=$${TEST_DB_NAME:-test_gridmgmt}_prodcheck $(VENV)/bin/pytest tests/prod_check --prod-check

## A real S3-protocol server for the object-storage tests (tests/ops/test_s3_media.py), from the npm
## registry, pinned, under var/node/ (Debian's nodejs; npm ships with it or is Debian's `npm` package).
S3RVER_VERSION := 3.7.1
S3RVER := $(VAR)/node/node_modules/.bin/s3rver
s3rver: $(S3RVER)
$(S3RVER): | system
	@command -v npm >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q --no-install-recommends npm; }
	npm install --prefix $(VAR)/node --no-audit --no-fund --loglevel=error s3rver@$(S3RVER_VERSION)
	@touch $@

## Backup → restore into a fresh database and media directory → compare counts and checksums
## (scripts/backup.py, tests/ops/test_restore_drill.py: its own test database; also part of the suite).
restore-drill: services
	TEST_DB_NAME=$${TEST_DB_NAME:-test_gridmgmt}_drill $(VENV)/bin/pytest tests/ops/test_restore_drill.py -q -s

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

fmt:
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

## The benchmarks' load generator (bench/tiles.py: h2load, from Debian's nghttp2-client).
bench-tools: system
	@dpkg-query -W -f='$${Status}\n' nghttp2-client 2>/dev/null | grep -q 'install ok installed' || \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends nghttp2-client; }

bench: demo-data bench-tools
	$(PY) bench/grid_build.py

## Pictures of each face for the README, taken in Chromium from the demo data (its own server, free port).
screenshots: demo-data
	$(PY) scripts/face_screenshots.py --out docs

stop:
	@bash scripts/services.sh stop
