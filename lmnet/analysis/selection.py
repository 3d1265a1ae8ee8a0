"""Which shapes an analysis shows: round-robin over categories so every category appears."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def round_robin(keys: Sequence[str], n: int) -> list[str]:
    """First ``n`` of ``"synset/model"`` keys taken alternately from each synset (in sorted order)."""
    by: dict[str, list[str]] = {}
    for k in keys:
        by.setdefault(k.split("/", 1)[0], []).append(k)
    out, i = [], 0
    groups = [by[s] for s in sorted(by)]
    while len(out) < n and any(i < len(g) for g in groups):
        out += [g[i] for g in groups if i < len(g)][: n - len(out)]
        i += 1
    return out


def round_robin_rows(rows: Sequence[Mapping[str, Any]], n: int, key: str = "category") -> list:
    """First ``n`` of ``rows`` (dicts, e.g. from :func:`lmnet.runs.predictions.load_predictions`) taken
    alternately from each group of equal ``row[key]`` (groups in sorted order, rows in their order
    within a group)."""
    picked = round_robin([f"{r[key]}/{i}" for i, r in enumerate(rows)], n)
    return [rows[int(k.rsplit("/", 1)[1])] for k in picked]
