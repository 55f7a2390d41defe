# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)

.PHONY: run test test-fast test-js lint typecheck pytest bench bench-quick demo-embed lock install browser redis7 clean

$(STAMP): requirements.lock
	@test -x $(PY) || { command -v $(PYTHON) >/dev/null || PYTHON=python3; $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q --require-hashes -r requirements.lock
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

run: $(STAMP)
	@exec $(PY) -m config.serve

# Debian's Chromium for the browser tests (the machine cannot download browser builds).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium with apt"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium: the browser tests need /usr/bin/chromium"; exit 1; }; }

# Debian's Redis 7 for the Redis Cluster tests (sharded pub/sub; the wheel's 6.2 has none).
redis7:
	@test -x /usr/bin/redis-server || deploy/apt-install.sh redis-server

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy realtime config chat live feed ops

# On one worker per core, up to 4 (pytest-xdist), a file per worker at a time: the
# container-engine stacks are one file, and the tests mostly wait on the servers, nodes
# and browsers they start. About 9 minutes here on 2 cores, against 17 on one worker
# (`make pytest PYTEST_WORKERS=0` runs them in this process, one after the other).
PYTEST_WORKERS ?= auto
pytest: $(STAMP) browser redis7
	$(VENV)/bin/pytest --durations=15 -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile $(PYTEST_ARGS)

# The browser modules' pure logic under Node's own runner (node:test, no npm packages).
test-js:
	node --test tests/js/

test: lint typecheck test-js pytest

# The fast lane: every test that starts no process (in process against a real Redis), in
# well under a minute; the tests that start servers or browsers are marked `slow`.
test-fast: $(STAMP) test-js
	$(VENV)/bin/pytest -m "not slow" -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench.run

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

demo-embed: $(STAMP)
	$(PY) -m examples.embed_host

# Re-pin after editing pyproject.toml (needs `pip install uv` once).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
