"""Benchmarks with printed tables (``python -m benchmarks.<name>``); see benchmarks/README.md."""
