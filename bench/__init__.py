"""Benchmarks: each prints its rate beside a baseline measured in the same run."""
