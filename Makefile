# mmapipc: the two commands of the README are `make demo` and `make test`.
# Both create .venv (Python 3.9+) and install what they need; a fresh machine needs only the
# Rust toolchain and Python 3 with pip.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CARGO  ?= cargo
SOURCES := $(shell find mmapipc mmapipc-derive mmapipc-cli mmapipc-py -name '*.rs' -o -name '*.py' -o -name '*.pyi' -o -name Cargo.toml) pyproject.toml Cargo.toml

.PHONY: all venv demo test test-rust test-loom test-python test-bridge lint bench bench-quick bench-rust bench-bridge torture fuzz miri tsan check-macos test-pythons soak clean

all: test

# The virtualenv, with the package installed (editable) and rebuilt when a source file changes.
$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

## demo: build everything and run the main demo (producer and consumer processes).
demo: venv
	$(PY) examples/demo.py

## test: every check CI runs: format, lints, Rust tests (doctests, loom models), Python tests.
test: lint test-rust test-loom test-python

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p mmapipc --all-targets --features tokio -- -D warnings
	$(PY) -m mypy
	$(PY) -m mypy examples/video_frames
	$(PY) -m mypy examples/market_data
	$(PY) -m mypy examples/demo.py examples/ring_buffer_example.py
	$(PY) -m mypy examples/benchmark.py examples/benchmark_advanced.py examples/benchmark_fanout.py examples/_bench
	$(PY) -m mypy.stubtest mmapipc._mmapipc --allowlist mmapipc-py/stubtest-allowlist.txt

# (includes the bridge's tests, mmapipc-zenoh/tests/bridge.rs: see test-bridge)
test-rust:
	$(CARGO) test --workspace
	$(CARGO) test -p mmapipc --features tokio --test tokio_async --test tokio_topic --test tokio_typed

## test-bridge: only the zenoh bridge's tests (two network namespaces when run as root,
## loopback otherwise; docs/bridge.md). `make test` runs them within test-rust.
test-bridge:
	$(CARGO) test -p mmapipc-zenoh

# loom model checks of the lock-free protocols, in their own target dir (different cfg).
test-loom:
	@if ls mmapipc/tests/loom_*.rs >/dev/null 2>&1; then \
		for t in mmapipc/tests/loom_*.rs; do n=$$(basename $$t .rs); \
		RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom CARGO_PROFILE_RELEASE_LTO=false \
		CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(CARGO) test -p mmapipc --release --test $$n || exit 1; done; \
	else echo "no loom models"; fi

test-python: venv
	$(PY) -m pytest tests

## test-pythons: the Python suite under other interpreters, each in its own venv under
## target/py/ (e.g. `make test-pythons PYTHONS="python3.9 python3.13"`; not part of `make test`).
PYTHONS ?= python3.9 python3.13
test-pythons:
	for py in $(PYTHONS); do \
		v=target/py/$$(basename $$py); \
		test -x $$v/bin/python || $$py -m venv $$v || exit 1; \
		$$v/bin/python -m pip install -q -e ".[dev]" && $$v/bin/python -m pytest -q -p no:cacheprovider tests || exit 1; \
	done

## bench: the full Python benchmark (about 10 min on 2 cores); rewrites the results in
## docs/benchmarks.md and the summary in README.md's performance section
bench: venv
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) examples/benchmark_advanced.py --pin --json bench-results/results.json --plot docs/img/benchmark.png --markdown bench-results/results.md --docs docs/benchmarks.md --readme README.md

## bench-quick: the one-minute comparison and the quick advanced run (under 3 minutes)
bench-quick: venv
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) examples/benchmark.py
	$(PY) examples/benchmark_advanced.py --quick

bench-rust:
	$(CARGO) bench -p mmapipc

## bench-bridge: ring -> bridge -> bridge -> ring against bare zenoh, same run (docs/benchmarks.md,
## "Bridge over zenoh"). Release build without LTO, in its own target dir (zenoh is large).
bench-bridge:
	CARGO_TARGET_DIR=target/bridge-bench CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
		$(CARGO) run --release -p mmapipc-zenoh --example bridge_bench

## torture: kill torture of the queue for DURATION seconds, then exactly-once verification (docs/hardening.md).
DURATION  ?= 60
PRODUCERS ?= 3
CONSUMERS ?= 3
torture:
	$(CARGO) run --release -p mmapipc --example torture -- --duration $(DURATION) --producers $(PRODUCERS) --consumers $(CONSUMERS)

## fuzz: each cargo-fuzz target for FUZZ_SECONDS (needs nightly and `cargo install cargo-fuzz`).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= open_file ring_hostile queue_hostile typed_access
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		$(CARGO) +nightly fuzz run -O -a $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=4096 || exit 1; \
	done

## miri: the library's unit tests under Miri (needs `rustup +nightly component add miri rust-src`),
## with Miri's default checks: Stacked Borrows, weak-memory emulation, data-race detection.
## Isolation is off because the lock and liveness code reads /proc and timeouts need a clock.
## Left out (ignored under cfg(miri)): the tests that map files or spawn a process, which Miri
## cannot run. MIRI_TB_TESTS read archived Vecs through rkyv's relative pointers, which Stacked
## Borrows rejects inside rkyv (typed::tests::rkyv_relative_pointer_alone reproduces it with rkyv
## alone; rkyv/rkyv#436): they run under Tree Borrows. Then the threaded tests again over 8 seeds
## (other interleavings and weak-memory outcomes). docs/hardening.md has the counts.
MIRI_TB_TESTS := typed::tests::rkyv_relative_pointer_alone typed::tests::sized_then_written typed::tests::old_reader
MIRI_SEEDED   := threads sleepers wait_times_out
MIRI_SEEDS    ?= 0..8
miri:
	MIRIFLAGS="-Zmiri-disable-isolation" PROPTEST_CASES=3 \
		$(CARGO) +nightly miri test -p mmapipc --lib -- $(addprefix --skip ,$(MIRI_TB_TESTS))
	MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-tree-borrows" \
		$(CARGO) +nightly miri test -p mmapipc --lib -- $(MIRI_TB_TESTS)
	MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-many-seeds=$(MIRI_SEEDS)" \
		$(CARGO) +nightly miri test -p mmapipc --lib -- $(MIRI_SEEDED)

## tsan: the library's unit tests under ThreadSanitizer (needs nightly with rust-src: -Zbuild-std
## rebuilds std instrumented, so a report is never an artefact of an uninstrumented std). TSan
## exits non-zero if it reported anything.
TSAN_TARGET ?= x86_64-unknown-linux-gnu
tsan:
	RUSTFLAGS="-Zsanitizer=thread" $(CARGO) +nightly test -Zbuild-std -p mmapipc --lib \
		--target $(TSAN_TARGET) --target-dir target/tsan

## check-macos: type-check and lint the core crates for macOS (x86_64 and aarch64) from Linux,
## building std from source (nightly with rust-src; nothing is linked or run).
check-macos:
	for t in x86_64-apple-darwin aarch64-apple-darwin; do \
		$(CARGO) +nightly clippy -Zbuild-std=std,panic_abort --target $$t --target-dir target/macos \
			-p mmapipc -p mmapipc-derive --all-targets -- -D warnings || exit 1; done

## soak: mixed workload for DURATION seconds (throughput over time, RSS and fds at start and end).
soak: venv
	$(PY) examples/soak.py --duration $(DURATION)

clean:
	rm -rf $(VENV) target bench-results
