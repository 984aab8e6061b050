"""Benchmark suite comparing trio_mws with other trio WebSocket clients.

Run everything with ``python -m bench`` (or ``python bench/run.py``) from the repository root;
``--quick`` gives a short smoke run. See :mod:`bench.run` for the options.
"""
