"""Benchmarks (run as scripts or through `python -m bench`)."""
