"""Readership benchmarks: `python -m bench` (or `make bench`).

Each benchmark is one module with a `run(...)` function returning a
`bench.results.BenchResult`; `bench.__main__` runs them, prints a table and writes JSON
to `bench/results/latest.json`. Times are reported as ratios to a baseline measured in
the same run, because the machines they run on are shared and noisy. See README.md.
"""
