# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make test runs the suite in this many pytest-xdist workers, a module at a time each
# (module-scoped servers start once); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: run test check clean bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "inboxlog needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

run: $(STAMP)
	$(BIN)/inboxlog serve

test: $(STAMP)
	scripts/dovecot-for-tests.sh >/dev/null
	scripts/postfix-for-tests.sh >/dev/null
	scripts/chromium-for-tests.sh >/dev/null
	INBOXLOG_TEST_PG_URL="$${INBOXLOG_TEST_PG_URL:-$$(scripts/postgres-for-tests.sh)}" \
	INBOXLOG_TEST_S3RVER="$${INBOXLOG_TEST_S3RVER:-$$(scripts/s3rver-for-tests.sh)}" \
	INBOXLOG_TEST_HAPROXY="$${INBOXLOG_TEST_HAPROXY:-$$(scripts/haproxy-for-tests.sh)}" \
	INBOXLOG_TEST_AXE="$${INBOXLOG_TEST_AXE:-$$(scripts/axe-for-tests.sh)}" \
		$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# Figures as ratios against baselines measured in the same run; writes docs/benchmarks.md.
bench: $(STAMP)
	INBOXLOG_TEST_PG_URL="$${INBOXLOG_TEST_PG_URL:-$$(scripts/postgres-for-tests.sh)}" \
		$(BIN)/python -m bench

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy core smtp_ingest extension_api inbox_sync inboxlog

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
