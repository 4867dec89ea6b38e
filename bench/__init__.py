"""Benchmarks of scim-bridge beside a direct use of the same backend, in the same run.

Run from the repository root: `.venv/bin/python -m bench` (see `--help`). Results go to
the terminal and to bench/RESULTS.md; the figure to judge is each scenario's ratio.
"""
