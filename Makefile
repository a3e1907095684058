# Two entry points for a fresh machine (only python3, g++ and make needed):
#   make demo   compile the bundled model to C++, build a program with it, compare to onnxruntime
#   make test   lint + layer contract + the whole test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export SOFIE_CACHE_DIR ?= $(CURDIR)/.cache/sofie

.PHONY: demo test test-fast lint system-blas bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check sofie tests examples bench
	$(VENV)/bin/lint-imports

# The CBLAS and Eigen BLAS choices need Debian packages; only the tests that use them do.
# Graphviz's dot renders `sofie-opt --view-graph FILE.svg` (tests/passes/test_view_graph.py).
system-blas:
	@if [ ! -e /usr/include/eigen3/Eigen/Core ] || [ ! -e /usr/include/x86_64-linux-gnu/cblas.h -a ! -e /usr/include/cblas.h ] || ! command -v dot >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libeigen3-dev libopenblas-dev graphviz >/dev/null; \
	fi

test: $(STAMP) system-blas lint
	$(VENV)/bin/pytest -q -n 2 --durations=15

# The quick subset (IR, passes, lowering, C++ printer, importers; ~2 min on 2 cores): no `slow`
# test and none of the folders that build whole models or suites in C++ (markers e2e, conformance,
# rdf, runtime; ignored rather than deselected, which would import them). A part:
# `.venv/bin/pytest tests/passes`, `-m "not slow"`, `-m e2e -k conv`.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 -m "not slow" --ignore=tests/e2e --ignore=tests/conformance --ignore=tests/rdf --ignore=tests/runtime

# sofie vs ONNX Runtime per model, one thread (needs Debian's libbenchmark-dev): the table,
# build/bench/results-openblas.json and its ratio chart results-openblas.svg (matplotlib, in the
# test extra as in the bench one)
bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf build .cache $(VENV)
