# mongo_persistence — every target sets up what it needs on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

# A second Python and the oldest python-telegram-bot the package claims to support (pyproject).
# (pyenv's shims answer `python3.13` without running it: take the interpreter itself first.)
PY313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
OLDEST_PTB ?= 21.0

# The real Mongo shell for tests/test_mongosh.py: the npm package, pinned, in .cache/mongosh.
MONGOSH_VERSION ?= 2.12.0
MONGOSH_DIR := .cache/mongosh
MONGOSH_STAMP := $(MONGOSH_DIR)/.installed-$(MONGOSH_VERSION)

.PHONY: venv test unit conformance lint demo bench fuzz matrix test-py313 test-oldest-ptb dist-check clean mongosh server

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cli,test,dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# Installed once (idempotent). If npm cannot install it, make goes on and tests/test_mongosh.py
# fails, saying so: the rest of the suite still runs.
$(MONGOSH_STAMP):
	@mkdir -p $(MONGOSH_DIR)
	@if (cd $(MONGOSH_DIR) && npm install --no-audit --no-fund --no-save --loglevel=error \
			mongosh@$(MONGOSH_VERSION) >/dev/null) \
		&& test "$$($(MONGOSH_DIR)/node_modules/.bin/mongosh --version)" = "$(MONGOSH_VERSION)"; then \
		rm -f $(MONGOSH_DIR)/.installed-*; touch $@; \
	else \
		echo "WARNING: npm could not install mongosh@$(MONGOSH_VERSION) into $(MONGOSH_DIR);" \
			"tests/test_mongosh.py will fail." >&2; \
	fi

mongosh: $(MONGOSH_STAMP)

# A local MongoDB-compatible server (SecantusDB) for trying a bot without Docker; prints its URI.
server: $(STAMP)
	$(PY) scripts/local_server.py

# The tests start a local SecantusDB themselves unless MONGODB_URI points at a server.
test: unit conformance

unit: $(STAMP) mongosh
	$(PY) -m pytest -q $(PYTEST_ARGS)

# python-telegram-bot's own persistence tests against MongoPersistence (eager, lazy, refresh), in
# .venv-conformance with the test dependencies PTB pins; the PTB sdist is cached under .cache/.
conformance: $(STAMP)
	$(PY) tests/conformance/run.py

LINTED := mongo_persistence tests examples scripts bench

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict bench

demo: $(STAMP)
	$(PY) scripts/demo.py

# The full run regenerates bench/RESULTS.md (about 13 minutes); `make bench QUICK=1` is a smoke
# run at small sizes in seconds (bench/.cache/RESULTS-quick.md), `BENCH_ARGS="--only CPU"` one part.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

fuzz: $(STAMP)
	$(PY) -m pytest -q -m slow -p no:cacheprovider $(PYTEST_ARGS)

# The suite on Python 3.13, and on Python 3 with the oldest supported PTB, each in its own venv.
matrix: test-py313 test-oldest-ptb

test-py313:
	test -x .venv-py313/bin/python || $(PY313) -m venv .venv-py313
	.venv-py313/bin/python -m pip install --quiet --upgrade pip
	.venv-py313/bin/python -m pip install --quiet -e ".[test]"
	.venv-py313/bin/python -m pytest -q $(PYTEST_ARGS)

test-oldest-ptb:
	test -x .venv-ptb$(OLDEST_PTB)/bin/python || $(PYTHON) -m venv .venv-ptb$(OLDEST_PTB)
	.venv-ptb$(OLDEST_PTB)/bin/python -m pip install --quiet --upgrade pip
	.venv-ptb$(OLDEST_PTB)/bin/python -m pip install --quiet -e ".[test]" \
		"python-telegram-bot[job-queue,callback-data]==$(OLDEST_PTB)"
	.venv-ptb$(OLDEST_PTB)/bin/python -c "import telegram; assert telegram.__version__ == '$(OLDEST_PTB)', telegram.__version__"
	.venv-ptb$(OLDEST_PTB)/bin/python -m pytest -q $(PYTEST_ARGS)

# Wheel and sdist build, pass twine check, and install and run in a clean venv: without the cli
# extra the library works and the command names the extra (exit status 1); with it, it runs.
dist-check: $(STAMP)
	rm -rf dist .venv-dist
	$(PY) -m build --outdir dist . >/dev/null
	$(VENV)/bin/twine check --strict dist/*
	$(PYTHON) -m venv .venv-dist
	.venv-dist/bin/python -m pip install --quiet dist/*.whl
	cd /tmp && $(CURDIR)/.venv-dist/bin/python -c "import mongo_persistence, sys; print('wheel ok', mongo_persistence.__version__)"
	! .venv-dist/bin/python -c "import click" 2>/dev/null
	status=0; .venv-dist/bin/mongo-persistence --help >/dev/null 2>.venv-dist/no-cli.txt || status=$$?; \
		test $$status -eq 1 && grep -F 'pip install "mongo-persistence[cli]"' .venv-dist/no-cli.txt
	.venv-dist/bin/python -m pip install --quiet "$$(ls dist/*.whl)[cli]"
	.venv-dist/bin/mongo-persistence --help >/dev/null
	.venv-dist/bin/python -m pip install --quiet --force-reinstall --no-deps dist/*.tar.gz
	cd /tmp && $(CURDIR)/.venv-dist/bin/python -c "import mongo_persistence; print('sdist ok')"

clean:
	rm -rf $(VENV) .venv-py313 .venv-ptb* .venv-dist .venv-conformance .cache .demo .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
