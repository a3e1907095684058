# Two entry points for a fresh machine (only python3, g++ and make needed):
#   make demo   compile the bundled model to C++, build a program with it, compare to onnxruntime
#   make test   lint + layer contract + the whole test suite
#   make docs   the documentation site (mkdocs, material theme) into build/site
#   make bench  sofie against onnxruntime and this machine's limits: build/bench/results.{md,json}
#               (BENCH_ARGS="--quick" for a one-minute subset, or "--models a,b")
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
export SOFIE_CACHE_DIR ?= $(CURDIR)/.cache/sofie

.PHONY: demo test lint system-blas bench bench-deps docs clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# the site needs sofie's core dependencies and mkdocs only, not the test environment
$(DOCS_STAMP): pyproject.toml
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

# The op and CLI flag tables are generated from the code at build time (docs/hooks/generated.py);
# --strict fails on any warning (a broken link or anchor).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d build/site

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check sofie tests examples bench docs/hooks
	$(VENV)/bin/lint-imports

# The CBLAS and Eigen BLAS choices need Debian packages; only the tests that use them do.
system-blas:
	@if [ ! -e /usr/include/eigen3/Eigen/Core ] || [ ! -e /usr/include/x86_64-linux-gnu/cblas.h -a ! -e /usr/include/cblas.h ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libeigen3-dev libopenblas-dev >/dev/null; \
	fi

# google-benchmark times the generated code (bench/CMakeLists.txt); only `make bench` needs it.
bench-deps:
	@if [ ! -e /usr/include/benchmark/benchmark.h ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libbenchmark-dev >/dev/null; \
	fi

BENCH_ARGS ?=
bench: $(STAMP) bench-deps
	$(PY) bench/run.py --out build/bench $(BENCH_ARGS)

test: $(STAMP) system-blas lint
	$(VENV)/bin/pytest -q -n 2 --durations=15

clean:
	rm -rf build .cache $(VENV)
