# Two entry points for a fresh machine (only python3, g++ and make needed):
#   make demo   compile the bundled model to C++, build a program with it, compare to onnxruntime
#               (installs sofie and onnxruntime only, then says how to put the CLIs on PATH)
#   make test   lint + layer contract + the whole test suite
#   make docs   the documentation site (mkdocs, material theme) into build/site
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
DOCS_STAMP := $(VENV)/.installed-docs
export SOFIE_CACHE_DIR ?= $(CURDIR)/.cache/sofie

.PHONY: demo test lint system-blas bench docs clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# make test: everything the tests use (torch, keras, ROOT, ...)
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# make demo: sofie and onnxruntime only
$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[demo]'
	touch $@

# the site needs sofie's core dependencies and mkdocs only, not the test environment
$(DOCS_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

# The op and CLI flag tables are generated from the code at build time (docs/hooks/generated.py);
# --strict fails on any warning (a broken link or anchor).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d build/site

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py
	@echo
	@echo "sofie-compile and sofie-opt are in $(VENV)/bin. To use them: source $(VENV)/bin/activate"
	@echo "  (or: export PATH=\"$(abspath $(VENV))/bin:\$$PATH\")"

lint: $(STAMP)
	$(VENV)/bin/ruff check sofie tests examples bench docs/hooks
	$(VENV)/bin/lint-imports

# The CBLAS and Eigen BLAS choices need Debian packages; only the tests that use them do.
system-blas:
	@if [ ! -e /usr/include/eigen3/Eigen/Core ] || [ ! -e /usr/include/x86_64-linux-gnu/cblas.h -a ! -e /usr/include/cblas.h ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libeigen3-dev libopenblas-dev >/dev/null; \
	fi

test: $(STAMP) system-blas lint
	$(VENV)/bin/pytest -q -n 2 --durations=15

clean:
	rm -rf build .cache $(VENV)
