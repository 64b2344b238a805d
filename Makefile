# Two commands do all set-up on a fresh Debian machine (Python 3.11, no GPU):
#   make demo   - create .venv, install, prepare sample data + default model, start the whole system
#   make test   - create .venv, install (with test extras and Debian chromium), run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup check bench soak docs chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned to the CPU wheel in the same command: a bare torch requirement would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0 -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/xscreen demo

test: $(STAMP) chromium
	$(VENV)/bin/python -m pytest -q

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy xscreen analytics xray screening serving bench

bench: $(STAMP)
	$(VENV)/bin/python -m bench.run_all

soak: $(STAMP)
	$(VENV)/bin/python -m bench.soak

docs: $(STAMP)
	$(VENV)/bin/xscreen config --docs > docs/SETTINGS.md
