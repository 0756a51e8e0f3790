"""Benchmarks of resilient-chat against BRIEF section 7: `python -m bench [NAME...] [--quick]`."""
