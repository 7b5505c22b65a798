"""Write the results page: every results file of ``bench/`` and ``studies/`` in one markdown page,
``reports/results.md`` ("not run" for a script without results).

    .venv/bin/python -m bench.page [--out reports/results.md]
"""

from phenoface.benchmarks import main

if __name__ == "__main__":
    raise SystemExit(main())
