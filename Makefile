# Two entry points for a fresh machine (only python3, g++ and make needed):
#   make demo   compile the bundled model to C++, build a program with it, compare to onnxruntime
#               (installs sofie and onnxruntime only, then says how to put the CLIs on PATH)
#   make test   lint + layer contract + the whole test suite
#   make docs   the documentation site (mkdocs, material theme) into build/site
#   make bench  sofie against onnxruntime and this machine's limits: build/bench/results.{md,json}
#               (BENCH_ARGS="--quick" for a one-minute subset, or "--models a,b")
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
DOCS_STAMP := $(VENV)/.installed-docs
export SOFIE_CACHE_DIR ?= $(CURDIR)/.cache/sofie

.PHONY: demo test test-fast lint system-blas bench bench-deps docs clean

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
# Graphviz's dot renders `sofie-opt --view-graph FILE.svg` (tests/passes/test_view_graph.py).
system-blas:
	@if [ ! -e /usr/include/eigen3/Eigen/Core ] || [ ! -e /usr/include/x86_64-linux-gnu/cblas.h -a ! -e /usr/include/cblas.h ] || ! command -v dot >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libeigen3-dev libopenblas-dev graphviz >/dev/null; \
	fi

# google-benchmark times the generated code (bench/CMakeLists.txt); only `make bench` needs it.
bench-deps:
	@if [ ! -e /usr/include/benchmark/benchmark.h ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libbenchmark-dev >/dev/null; \
	fi

# sofie vs ONNX Runtime per model, one thread (google-benchmark from Debian's libbenchmark-dev):
# build/bench/results.{md,json} and the ratio chart results.svg (matplotlib, in the test extra as
# in the bench one); BENCH_ARGS="--quick" or "--models a,b" for a part
BENCH_ARGS ?=
bench: $(STAMP) bench-deps
	$(PY) bench/run.py --out build/bench $(BENCH_ARGS)

test: $(STAMP) system-blas lint
	$(VENV)/bin/pytest -q -n 2 --durations=15

# The quick subset (IR, passes, lowering, C++ printer, importers; ~2 min on 2 cores): no `slow`
# test and none of the folders that build whole models or suites in C++ (markers e2e, conformance,
# rdf, runtime; ignored rather than deselected, which would import them). A part:
# `.venv/bin/pytest tests/passes`, `-m "not slow"`, `-m e2e -k conv`.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 -m "not slow" --ignore=tests/e2e --ignore=tests/conformance --ignore=tests/rdf --ignore=tests/runtime

clean:
	rm -rf build .cache $(VENV)
