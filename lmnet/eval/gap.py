"""How much of the gap between the baselines and the floor a method closes (docs/evaluation.md#gap-closed).

A table's reference rows (:mod:`lmnet.eval.runner`): the **baselines** (mean shape, nearest training
shape; :mod:`lmnet.eval.baselines`) and the **floor** (each shape's own ground-truth
``pointcloud_2048`` used as the prediction, evaluated like the model: the error left by sampling
alone). For a metric where lower is better (CD, EMD)::

    gap closed = (B − M) / (B − F) × 100 %

with ``M`` the method's value, ``B`` the better (lower) of the baselines' values and ``F`` the
floor's, all on the same row: a category (its per-category means) or the class mean (the class means
of ``M``, ``B`` and ``F``; not the mean of the per-category percentages). 0 % = as good as the best
baseline, 100 % = as good as the floor, negative = worse than the best baseline. Not defined (NaN)
when a value is missing or ``B == F``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

GAP_METRICS = ("cd", "emd")  #: the metrics that get a gap-closed column (lower is better)


def gap_closed(baseline: float, method: float, floor: float) -> float:
    """``(baseline − method) / (baseline − floor) × 100``, a percentage: 0 = the baseline, 100 = the
    floor. NaN when any value is NaN or ``baseline == floor``."""
    vals = (float(baseline), float(method), float(floor))
    if any(math.isnan(v) for v in vals) or vals[0] == vals[2]:
        return float("nan")
    return 100.0 * (vals[0] - vals[1]) / (vals[0] - vals[2])


def gap_column(metric: str) -> str:
    """The table column of a metric's gap closed: ``"cd"`` → ``"cd_gap_closed_pct"``."""
    return f"{metric}_gap_closed_pct"


def _by_category(rows: Sequence[Mapping[str, Any]], col: str) -> dict[str, float]:
    return {str(r["category"]): float(r[col]) for r in rows}


def add_gap_columns(tables: Mapping[str, list[dict[str, Any]]], *, baselines: Sequence[str], floor: str | None,
                    metrics: Sequence[str] = GAP_METRICS) -> list[str]:
    """Add ``<metric>_gap_closed_pct`` (:func:`gap_closed`) to every row of every method of
    ``tables`` (``{method: rows of lmnet.eval.report.aggregate}``, changed in place), for each of
    ``metrics`` that the rows hold as ``<metric>_x100``. ``B`` per row = the lowest value among the
    ``baselines`` methods present; ``F`` = the ``floor`` method's row. Returns the metrics that got
    a column: none when the floor or every baseline is missing."""
    present = [b for b in baselines if b in tables]
    if floor is None or floor not in tables or not present:
        return []
    done = []
    for m in metrics:
        col = f"{m}_x100"
        if not all(col in r for r in tables[floor]):
            continue
        floor_v = _by_category(tables[floor], col)
        base_v = [_by_category(tables[b], col) for b in present]
        for rows in tables.values():
            for r in rows:
                cat = str(r["category"])
                cands = [v[cat] for v in base_v if cat in v and not math.isnan(v[cat])]
                best = min(cands) if cands else float("nan")
                r[gap_column(m)] = gap_closed(best, r[col], floor_v.get(cat, float("nan")))
        done.append(m)
    return done
