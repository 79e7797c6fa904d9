# The two commands a new machine needs: `make demo` and `make test`.
# Both install everything first (uv from PyPI, then the locked environment).
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
CIP := $(VENV)/bin/cip

.PHONY: install browser demo test lint format serve mlflow-ui bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv==0.13.8 \
		|| $(PYTHON) -m pip install --quiet --user uv==0.13.8
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)

# Debian's Chromium for the report's browser test (no browser download at test time).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: install
	$(CIP) run
	@$(CIP) users first-login

test: install browser
	$(VENV)/bin/pytest -n 2 -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

serve: install
	$(CIP) serve

mlflow-ui: install
	$(CIP) mlflow-ui

clean:
	rm -rf data
