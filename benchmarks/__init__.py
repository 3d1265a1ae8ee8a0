"""lmnet benchmarks: speed and memory figures measured side by side in one run.

Each ``benchmarks/bench_<topic>.py`` exposes ``run(quick: bool = False) -> dict`` returning
``{"topic": str, "rows": [{"case", "impl", "metric", "value", "unit"}, ...], "notes": [str]}``.
``python -m benchmarks`` (``make bench``) runs them all and writes ``benchmarks/results/<host>.json``
and ``benchmarks/results/<host>.md``.
"""
