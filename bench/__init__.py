"""Benchmarks: `make bench` runs `python -m bench` and prints one table per service."""
