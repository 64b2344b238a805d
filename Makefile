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

# Everything, in two passes over two processes (a test file per process at a time, pyproject's addopts): the fast
# set, then the end-to-end, training and browser tests. Every end-to-end test starts its own stack on its own
# ports, home and Ray instance, so two run side by side. Two passes balance better than one: in one, a long
# end-to-end file left for last keeps one process busy while the other idles. Both passes always run.
test: $(STAMP) chromium
	@status=0; \
	$(VENV)/bin/python -m pytest -q || status=1; \
	$(VENV)/bin/python -m pytest -q -m "slow or training or browser" || status=1; \
	exit $$status

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy cli xscreen store analytics xray screening serving pages app.py dashboard.py bench

bench: $(STAMP)
	$(VENV)/bin/python -m bench.run_all

soak: $(STAMP)
	$(VENV)/bin/python -m bench.soak

docs: $(STAMP)
	$(VENV)/bin/xscreen config --docs > docs/SETTINGS.md
