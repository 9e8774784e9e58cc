# The two entry points of the README; each does the whole set-up first.
.PHONY: setup check demo demo-kernel test test-bench bench bench-kernel bench-pgo clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python examples/demo.py

# Our kcov.ko on Debian's stock kernel (no CONFIG_KCOV), an instrumented
# fs/minix from linux-source-6.1, traced per file operation in a VM.
demo-kernel: setup
	.venv/bin/python examples/kernel/demo_kernel.py

# The fast tier: the linters, then every test that boots no VM and builds
# no kernel, the fuzzers with a quarter of their budgets (make test: whole).
check: setup
	bash scripts/check-format.sh
	.venv/bin/ruff check .
	.venv/bin/mypy
	KCOV_REQUIRE_ALL=1 KCOV_FUZZ_EXAMPLES=0.25 .venv/bin/python -m pytest -m "not vm and not kernel" -n auto

# Everything is required here: after set-up a skip is a failure
# (tests/conftest.py), as under CI.
test: setup
	KCOV_REQUIRE_ALL=1 .venv/bin/python -m pytest -m "not vm and not bench" -n auto

# Opt-in: the side-by-side kcov.ko vs in-tree kcov anchor in its quick mode
# (tests/anchor; two kernels of its own).  Last results: docs/benchmarks.md.
test-bench: setup
	KCOV_REQUIRE_ALL=1 .venv/bin/python -m pytest -m bench

bench: setup
	.venv/bin/python benchmarks/bench_callbacks.py

# kcov.ko against the in-tree kcov: two kernels, one workload (minutes).
bench-kernel: setup
	.venv/bin/python benchmarks/kmod_anchor.py

# PGO through kcov's profile runtime: lz4 plain -O2 vs PGO -O2 (a minute).
bench-pgo: setup
	.venv/bin/python benchmarks/bench_pgo.py

clean:
	rm -rf build .cache
