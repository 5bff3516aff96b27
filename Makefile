# Two commands from nothing: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-fast lint bench clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e ".[dev]"
	touch $@

# torch first, from the pinned CPU build, so nothing pulls a CUDA build.
$(VENV)/.text: $(VENV)/.core
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[dev,text,bench]"
	touch $@

# System parts (Debian's chromium for the web page test) are installed when they can be;
# otherwise scripts/system-deps.sh prints one line naming the tests that will skip.
test: $(VENV)/.text
	@bash scripts/system-deps.sh
	$(PY) -m pytest

# The edit loop: everything but the tests marked slow (pyproject.toml, [tool.pytest.ini_options]).
test-fast: $(VENV)/.text
	$(PY) -m pytest -m "not slow"

demo: $(VENV)/.text
	$(PY) -m slimvec.demo

lint: $(VENV)/.core
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

bench: $(VENV)/.text
	$(PY) benchmarks/funnel.py

clean:
	rm -rf $(VENV) build src/*.egg-info
