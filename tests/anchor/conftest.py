"""The side-by-side anchor's test (benchmarks/kmod_anchor.py in its quick
mode): no fixtures of its own; the benchmark builds and boots everything."""
