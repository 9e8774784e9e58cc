# The two entry points of the README; each does the whole set-up first.
.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python examples/demo.py

test: setup
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python benchmarks/bench_callbacks.py

clean:
	rm -rf build .cache
