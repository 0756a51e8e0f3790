"""Benchmarks against the targets of docs/performance.md: `python -m bench [NAME...] [--quick]`."""
