# The commands the README shows; .ci/run calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run run-cluster test test-fast deploy-check clean bench bench-lateness bench-placement bench-connections bench-drain bench-crowd bench-web-push bench-noisy bench-peers bench-rolling-restart bench-topology bench-picker

## run: the whole system (page, admin, WebSocket, run_queue) on embedded defaults
run: $(VENV)/.dev-installed
	bash scripts/prerequisites.sh msgfmt
	$(BIN)/python scripts/run_all.py

## run-cluster: the production topology on this machine: nginx, daphne and run_queue (one per core
## each), PostgreSQL (DATABASE_URL, default database pickup_cluster), Redis with Sentinel
run-cluster: $(VENV)/.dev-installed
	bash scripts/prerequisites.sh msgfmt nginx
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore $(VENV) -v 0
	$(BIN)/python scripts/run_cluster.py $(ARGS)

## test: the whole test suite, as CI runs it: every pass, then a summary
test: $(VENV)/.dev-installed
	bash scripts/test.sh

## test-fast: the edit-test loop: no real processes, no browser, SQLite only
test-fast: $(VENV)/.dev-installed
	bash scripts/prerequisites.sh msgfmt
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore $(VENV) -v 0
	$(BIN)/python -m pytest -m "not processes and not browser" $(ARGS)

## deploy-check: Django's deployment checks with production-like settings
deploy-check: $(VENV)/.dev-installed
	bash scripts/deploy_check.sh

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) staticfiles db.sqlite3

## bench: every benchmark at the issue's sizes (several minutes); results in bench/results/
bench: bench-lateness bench-placement bench-connections bench-drain bench-crowd bench-web-push bench-noisy bench-rolling-restart bench-topology bench-picker
bench-lateness: $(VENV)/.dev-installed
	$(BIN)/python -m bench.lateness
bench-placement: $(VENV)/.dev-installed
	$(BIN)/python -m bench.placement
bench-connections: $(VENV)/.dev-installed
	$(BIN)/python -m bench.connections
bench-drain: $(VENV)/.dev-installed
	$(BIN)/python -m bench.drain
bench-crowd: $(VENV)/.dev-installed
	$(BIN)/python -m bench.crowd
bench-web-push: $(VENV)/.dev-installed
	$(BIN)/python -m bench.web_push
bench-noisy: $(VENV)/.dev-installed
	$(BIN)/python -m bench.noisy_neighbour
bench-rolling-restart: $(VENV)/.dev-installed
	$(BIN)/python -m bench.rolling_restart

## bench-picker: the pickup-time picker's cost per page load, in-process (the demo restaurant in a rush)
bench-picker: $(VENV)/.dev-installed
	bash scripts/prerequisites.sh msgfmt
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore $(VENV) -v 0
	$(BIN)/python -m bench.picker

## bench-topology: lateness, placement and claims through nginx on 1 and 2 web processes
## (pickup/cluster.py's topology; needs PostgreSQL at PICKUP_TEST_POSTGRES_URL, and nginx)
bench-topology: $(VENV)/.dev-installed
	bash scripts/prerequisites.sh msgfmt nginx
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore $(VENV) -v 0
	$(BIN)/python -m bench.topology

## bench-peers: BullMQ, Celery and arq job-start lateness, for comparison (not in `bench`:
## installs them on first use, from PyPI and npm, into bench/peers/'s own git-ignored environments)
bench-peers: $(VENV)/.dev-installed
	$(BIN)/python -m bench.peers
