# The two commands a newcomer runs: `make demo` and `make test`. Both build the virtual
# environment first; nothing is installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test acceptance bench lint typecheck openapi clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/loyalty-engine demo

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -q

# The product contract's example (../shared/examples, or LOYALTY_SHARED_EXAMPLES=DIR) loads,
# checks clean and runs unchanged; make test never reads it.
acceptance: $(STAMP)
	$(BIN)/pytest -q acceptance -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core loyalty coupons campaigns notifications worker.py scheduler.py

# docs/openapi.json: the schema the HTTP API serves; tests/http/test_http_openapi.py fails when
# it is stale.
openapi: $(STAMP)
	$(BIN)/loyalty-engine openapi --output docs/openapi.json

clean:
	rm -rf $(VENV) demo-run .pytest_cache .ruff_cache .mypy_cache *.egg-info
