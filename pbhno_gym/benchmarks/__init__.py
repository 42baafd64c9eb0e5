"""Benchmarks: measured by scripts/bench_*.py, reported in docs/benchmarks.md."""
