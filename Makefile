# The two commands: `make run` and `make test`. `make setup` is what both run first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 0
export FLASK_APP := wsgi

.PHONY: setup run test serve lint format clean

SWAGGER_UI := static/vendor/swagger-ui/swagger-ui-bundle.js static/vendor/swagger-ui/swagger-ui.css

setup: $(VENV)/.installed static/vendor/htmx.min.js $(SWAGGER_UI)
	@$(BIN)/flask db upgrade 2>&1 | grep -v "^INFO  \[alembic.runtime.migration\] \(Context impl\|Will assume\)" || true

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed: run 'make PYTHON=python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

# The API reference at /api/docs (Swagger UI's prebuilt bundle and stylesheet).
static/vendor/swagger-ui/%: node_modules/.package-lock.json
	mkdir -p static/vendor/swagger-ui
	cp node_modules/swagger-ui-dist/$* $@

# The background worker (mail, expiries, periodic jobs) runs beside the server; Ctrl-C stops
# both: the shell's trap hands the worker a graceful SIGINT when the server ends, however it ends.
BESIDE_WORKER = $(BIN)/flask worker & worker=$$!; \
	trap 'kill -INT $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM;

run: setup
	@$(BIN)/flask seed-demo
	@echo "  Serving the portal on http://$(HOST):$(PORT), with its background worker (Ctrl-C stops both)"
	@$(BESIDE_WORKER) $(BIN)/flask run --host $(HOST) --port $(PORT)

# With TEST_DATABASE_URL (CI sets it) the suite runs on PostgreSQL, then again on SQLite.
test: setup
	$(BIN)/pytest
	@if [ -n "$${TEST_DATABASE_URL:-}" ]; then \
		echo "== again on the embedded SQLite database (browser tests ran above) =="; \
		env -u TEST_DATABASE_URL $(BIN)/pytest -m "not browser"; \
	fi

# Production-style serving with gunicorn.conf.py (set PORTAL_ENV=production, SECRET_KEY,
# API_KEY_PEPPER, DATABASE_URL, RATELIMIT_STORAGE_URI, TASK_QUEUE_URL). HOST and PORT default to
# 127.0.0.1:8000; WORKERS=N (or WEB_CONCURRENCY) overrides the worker count (default 2 per CPU + 1).
# One background worker runs beside gunicorn, as on each host of a deployment (gunicorn.conf.py).
serve: setup
	@$(BESIDE_WORKER) $(if $(filter-out 0,$(WORKERS)),WEB_CONCURRENCY=$(WORKERS)) $(BIN)/gunicorn --config gunicorn.conf.py

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache .ruff_cache
