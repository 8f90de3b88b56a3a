"""Benchmarks: `make bench` runs bench.api, bench.jobs and bench.ansible (see bench/README.md)."""
