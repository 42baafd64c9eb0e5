"""Experiments: runnable end-to-end jobs (demo, comparison, paper reproductions)."""
