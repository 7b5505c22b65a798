"""Speed and memory benchmarks: how fast each step runs and what it holds in memory. Run one from the
checkout as ``python -m bench.<name>``; each writes ``reports/bench/<name>.json``, and ``python -m bench.page``
turns every results file of ``bench/`` and ``studies/`` into ``reports/results.md``."""
