# procnet: `make help` lists the targets. `make test` is exactly what CI runs (.ci/run).

TOPOLOGY ?= topologies/demo.toml
CARGO ?= cargo
PROCNET := target/release/procnet
# The Python side (python/: the procnet package, its tests, the example nodes in bin/) runs in
# this virtualenv, created by `make venv` from PyPI.
VENV := target/venv
PYTHON := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help build release venv run-topology test test-python fuzz chaos lint fmt check-topologies man bench bench-pipeline bench-startup bench-report clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  (make run-topology TOPOLOGY=path/to/file.toml runs another topology)"

build: ## Build the debug binary
	$(CARGO) build --bin procnet

release: ## Build the optimized binary
	$(CARGO) build --release --bin procnet

# A topology with Python nodes needs the virtualenv (packages from PyPI); the demo does not.
NEEDS_VENV := $(shell grep -qs 'python3' $(TOPOLOGY) && echo venv)

# A topology spread over [hosts] runs with every host on this machine (--local).
RUN_LOCAL := $(shell grep -qs '^\[hosts' $(TOPOLOGY) && echo --local)

run-topology: release $(NEEDS_VENV) ## Run TOPOLOGY (default topologies/demo.toml) and print its result
	$(PROCNET) check $(TOPOLOGY)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PROCNET) run $(RUN_LOCAL) $(TOPOLOGY)

venv: $(VENV)/.installed ## Create the Python virtualenv: the procnet package (python/), pyzmq, msgpack, pytest, kubernetes-validate, prometheus_client, jsonschema

# Also made again when this file changes, as the packages are listed here (prometheus_client:
# the tests parse --metrics with it; jsonschema: they validate topologies against
# topology.schema.json).
$(VENV)/.installed: python/pyproject.toml Makefile
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e python/ pytest kubernetes-validate prometheus_client jsonschema
	touch $@

test: venv programs ## Build and run every test: Rust (unit, golden, through the real binary), Python (pytest), then the multi-host harness where it can run
	$(CARGO) build --all-targets
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) test --all-targets --no-fail-fast
	$(MAKE) test-python
	PROCNET="$(CURDIR)/target/debug/procnet" bash tests/netns/run.sh

# Programs the stdio tests and topologies/polyglot.toml run as stages: awk, sed, grep and perl
# come with Debian; jq is installed from its package when missing (as root), else its tests skip.
.PHONY: programs
programs:
	@command -v jq >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q jq >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q jq >/dev/null; }; }; } || \
		echo "jq is not installed and cannot be: its stdio tests skip"

test-python: venv ## The Python package's tests (conformance to the golden vectors, the node API)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m pytest -q python/tests

# Three network namespaces joined by a bridge, one launcher per namespace (tests/netns/).
# `make test` runs the harness too, with the debug binary, and says so when it cannot.
.PHONY: cluster-test cluster-experiment
cluster-test: release venv ## The multi-host harness: 3 network namespaces (needs root; installs iproute2 and nftables)
	bash tests/netns/run.sh --require

cluster-experiment: release venv ## Loss x bandwidth on the harness: target/cluster/experiment.md, and its table in docs/cluster.md
	bash tests/netns/run.sh --experiment

# The fuzz tests (tests/formats/fuzz_*.rs: the wire decoder and record reader, the JSON
# transcoder of `lines`, the topology loader), with many more inputs than `make test` gives
# them, in release mode: the `fuzz_` tests of the `formats` test binary, alone. Each prints
# `fuzz <target>: N inputs, seed S`; PROCNET_FUZZ_SEED=S runs a failure again.
FUZZ_CASES ?= 100000
fuzz: venv ## Fuzz tests, a long run: tests/formats/fuzz_*.rs in release mode, FUZZ_CASES (100000) inputs per target
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PROCNET_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --test formats fuzz_ -- --nocapture

lint: ## clippy with -D warnings, and rustfmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

fmt: ## Format the code
	$(CARGO) fmt

# The pages come from the binary's own command line (`procnet man`), so they always match it.
man: build ## Write the manual pages into target/man/man1 (read them with `man -M target/man procnet`)
	target/debug/procnet man --dir target/man/man1

check-topologies: build ## Validate every topology under topologies/
	@for f in topologies/*.toml; do target/debug/procnet check $$f > /dev/null || exit 1; echo "ok $$f"; done

# The chaos soak: one replica killed at a random moment in each of KILLS runs, every role and
# start method; every run must be exact. Fills docs/guarantees.md's chaos table.
KILLS ?= 500
chaos: release venv ## Chaos soak, ~10 min: KILLS (500) runs, each with a replica killed mid-stream; table in docs/guarantees.md
	python3 tests/soak/chaos.py --kills $(KILLS)

# The three benchmarks, timed together; then report.py copies their tables (target/bench/*.md)
# and the machine's description into docs/benchmarks.md, between its generated markers.
bench: release ## Benchmarks, ~10 min: fetch, pipeline, start-up (procnet vs ../shared/peers), then bench-report
	@set -e; start=$$(date +%s); \
	echo "+ bash benches/fetch.sh"; bash benches/fetch.sh; \
	echo "+ python3 benches/pipeline.py"; python3 benches/pipeline.py; \
	echo "+ python3 benches/startup.py"; python3 benches/startup.py; \
	took=$$(($$(date +%s) - start)); \
	echo "+ python3 benches/report.py --elapsed $$took"; python3 benches/report.py --elapsed $$took; \
	echo "make bench: the benchmarks took $$took s ($$((took / 60)) min $$((took % 60)) s)"

bench-pipeline: release ## Pipeline benchmark: the peers' CPU job, small records, memory flatness (target/bench/pipeline.md)
	python3 benches/pipeline.py

bench-startup: release ## Start-up benchmark: 32 replicas per start method vs Python multiprocessing (target/bench/startup.md)
	python3 benches/startup.py

bench-report: ## Fill docs/benchmarks.md's generated sections from target/bench/ (machine, fetch, pipeline, start-up)
	python3 benches/report.py

clean: ## Remove build output
	$(CARGO) clean
