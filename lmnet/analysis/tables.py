"""Tables of evaluation results: best and worst cases, several runs side by side, markdown."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from lmnet.errors import DataError


def best_worst(records: Sequence[Mapping[str, Any]], n: int = 3, metric: str = "cd") -> tuple[list, list]:
    """``records`` (one method's per-pair records of :func:`~lmnet.eval.run.evaluate_run`) →
    ``(best n, worst n)`` by ``metric`` (lower is better; NaN records ignored), best first / worst first."""
    recs = [r for r in records if not math.isnan(float(r[metric]))]
    if not recs:
        raise DataError(f"best_worst: no records with a finite {metric!r}")
    recs = sorted(recs, key=lambda r: float(r[metric]))
    return recs[:n], recs[::-1][:n]


def compare_tables(results: Mapping[str, Mapping[str, Any]], metric: str = "cd_x100") -> list[dict[str, Any]]:
    """``{run label: evaluate_run(...) result}`` → one row per (run label, method) with the class
    mean and per-category values of ``metric``; a baseline that several runs share (same data and
    autoencoder) appears once per run so differences are visible. Columns: ``run``, ``method``,
    one per category, ``mean``."""
    rows = []
    for label, res in results.items():
        for method, table in res["tables"].items():
            row: dict[str, Any] = {"run": label, "method": method}
            for r in table:
                row[r["category"]] = r[metric]
            rows.append(row)
    return rows


def rows_to_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 2) -> str:
    """Rows of dicts → a markdown table (floats with ``digits`` decimals, union of keys as columns)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    if "mean" in cols:  # the class mean last
        cols = [c for c in cols if c != "mean"] + ["mean"]

    def fmt(v):
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def display_markdown(text: str) -> None:
    """Show markdown in a notebook kernel; print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)
