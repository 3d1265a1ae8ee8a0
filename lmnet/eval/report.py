"""Aggregate per-pair records into the paper's tables and write them atomically.

Convention (docs/evaluation.md#averaging-and-units): a category's number is the **mean over every pair** of
that category (one pair = one test shape × one chosen view), the class mean is the **unweighted mean of
the category means**, and every table value is **×100**. Files written into a run folder:

- ``eval_<split>.csv``  — one row per (method, category) plus a ``mean`` row per method;
  columns ``protocol, method, category, synset, n_pairs, cd_x100, emd_x100, cd_sq_x100,
  fscore_1pct_x100, fscore_2pct_x100`` (the official protocol: ``cd_x100, emd_auction_x100,
  emd_x100``), then, when the table has a floor row and a baseline, ``cd_gap_closed_pct,
  emd_gap_closed_pct`` (:mod:`lmnet.eval.gap`);
- ``eval_<split>.md``   — the same as a markdown table; its title line and every table's header
  name the protocol, followed by the protocol line (which steps were on) and the column definitions;
- ``eval_<split>_pairs.csv`` — every per-pair record (raw units, not ×100) with its method.

A report already there is never replaced silently: :func:`keep_previous` renames it to
``eval_<split>.<YYYYmmdd-HHMMSS>.csv`` (``.md``, ``_pairs.<stamp>.csv``; the time it was written)
first, and its markdown header says what it evaluated (run, checkpoint, split file, views).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lmnet import atomic_io
from lmnet.data.categories import name_of
from lmnet.eval.gap import add_gap_columns, gap_column

METRICS = ("cd", "emd", "cd_sq", "fscore_1pct", "fscore_2pct")
COLUMN_TITLES = {
    "cd": "CD ×100 (Euclidean, sum of two means)",
    "emd": "EMD ×100 (exact)",
    "cd_sq": "CD² ×100 (PyTorch3D-style, squared)",
    "fscore_1pct": "F-score@1% ×100 (τ = 0.01 of the normalised size, higher is better)",
    "fscore_2pct": "F-score@2% ×100 (τ = 0.02 of the normalised size, higher is better)",
}
GAP_TITLE = "{metric} gap closed, % ((B − M) / (B − F): B = best baseline, F = floor; 100 = floor, 0 = baseline)"
SUMMARY_FIELDS = ("method", "category", "synset", "n_pairs", "cd_x100", "emd_x100", "cd_sq_x100")
DEFAULT_PROTOCOL = "lmnet"  #: the protocol name when none is given


def _mean(values: Sequence[float]) -> float:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals) if vals else float("nan")


def aggregate(records: Iterable[Mapping[str, Any]], *, metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """Per-category means ×100 and the class mean.

    ``records`` need a ``category`` (synset id) and the metric keys (raw units). Returns rows
    ``{"category": name, "synset", "n_pairs", "<metric>_x100", ...}`` sorted by synset, then the
    ``{"category": "mean", "synset": "", "n_pairs": total}`` row = unweighted mean of the rows above.
    A metric that is NaN for a record (e.g. EMD switched off) or missing from it makes that
    category's value NaN.
    """
    by_cat: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_cat.setdefault(str(r["category"]), []).append(r)
    rows = []
    for syn in sorted(by_cat):
        recs = by_cat[syn]
        row: dict[str, Any] = {"category": name_of(syn), "synset": syn, "n_pairs": len(recs)}
        for m in metrics:
            row[f"{m}_x100"] = 100.0 * _mean([r.get(m, float("nan")) for r in recs])
        rows.append(row)
    mean_row: dict[str, Any] = {"category": "mean", "synset": "", "n_pairs": sum(r["n_pairs"] for r in rows)}
    for m in metrics:
        mean_row[f"{m}_x100"] = _mean([r[f"{m}_x100"] for r in rows])
    rows.append(mean_row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def summary_csv(tables: Mapping[str, list[dict[str, Any]]], *, metrics: Sequence[str] = METRICS,
                protocol: str = DEFAULT_PROTOCOL, gap_metrics: Sequence[str] = ()) -> str:
    """``{method: aggregate(...) rows}`` → CSV text (values with 6 decimals, NaN as empty); the first
    column names the protocol; ``gap_metrics``' gap-closed columns (percent) come last."""
    fields = (("protocol",) + SUMMARY_FIELDS[:4] + tuple(f"{m}_x100" for m in metrics)
              + tuple(gap_column(m) for m in gap_metrics))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for method, rows in tables.items():
        for row in rows:
            out = {"protocol": protocol, "method": method}
            for f in fields[2:]:
                v = row.get(f, "")
                out[f] = ("" if math.isnan(v) else f"{v:.6f}") if isinstance(v, float) else v
            w.writerow(out)
    return buf.getvalue()


def _method_table(tables: Mapping[str, list[dict[str, Any]]], cats: Sequence[str], col: str,
                  heading: str) -> list[str]:
    """One markdown table of column ``col``: rows = ``cats`` (then the class mean), columns = methods."""
    methods = list(tables)
    lines = [f"## {heading}", "", "| category | pairs | " + " | ".join(methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    counts = {m: {r["category"]: r["n_pairs"] for r in rows} for m, rows in tables.items()}
    for c in cats:
        vals = []
        for m in methods:
            row = next((r for r in tables[m] if r["category"] == c), None)
            vals.append(_fmt(row.get(col, "")) if row is not None else "")
        n = next((counts[m][c] for m in methods if c in counts[m]), "")
        label = "**class mean**" if c == "mean" else c
        lines.append(f"| {label} | {n} | " + " | ".join(vals) + " |")
    return lines + [""]


def markdown_table(tables: Mapping[str, list[dict[str, Any]]], *, protocol_line: str,
                   title: str = "Evaluation", notes: Sequence[str] = (), metrics: Sequence[str] = METRICS,
                   titles: Mapping[str, str] = COLUMN_TITLES, protocol: str = DEFAULT_PROTOCOL,
                   gap_metrics: Sequence[str] = ()) -> str:
    """Markdown: a title line naming the protocol, the protocol line, then one table per metric
    (rows = categories, columns = methods, its header naming the protocol) so methods compare side
    by side, as in the paper; then one gap-closed table per metric of ``gap_metrics``
    (:mod:`lmnet.eval.gap`)."""
    cats: list[str] = []
    for rows in tables.values():
        for r in rows:
            if r["category"] not in cats and r["category"] != "mean":
                cats.append(r["category"])
    cats.append("mean")
    lines = [f"# {title} — protocol: {protocol}", "", f"Protocol: {protocol_line}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    for metric in metrics:
        lines += _method_table(tables, cats, f"{metric}_x100", f"{titles[metric]} — {protocol} protocol")
    for metric in gap_metrics:
        name = titles[metric].split(" ×")[0]
        lines += _method_table(tables, cats, gap_column(metric),
                               f"{GAP_TITLE.format(metric=name)} — {protocol} protocol")
    return "\n".join(lines)


def pairs_csv(records_by_method: Mapping[str, Sequence[Mapping[str, Any]]], *,
              protocol: str = DEFAULT_PROTOCOL) -> str:
    """Every per-pair record with ``protocol`` and ``method`` columns; union of keys as columns, raw units."""
    fields = ["protocol", "method"]
    for recs in records_by_method.values():
        for r in recs:
            fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    w.writeheader()
    for method, recs in records_by_method.items():
        for r in recs:
            w.writerow({"protocol": protocol, "method": method, **{k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in r.items()}})
    return buf.getvalue()


def keep_previous(paths: Mapping[str, Path]) -> list[Path]:
    """Rename the existing files of ``paths`` (``{"csv", "md", "pairs"}``) aside under one time stamp
    (``eval_test.md`` → ``eval_test.20250101-120000.md``); returns the new names."""
    existing = [p for p in paths.values() if p.exists()]
    if not existing:
        return []
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in existing)))
    for n in range(1000):
        tag = stamp if n == 0 else f"{stamp}-{n}"
        targets = {p: p.with_name(f"{p.stem}.{tag}{p.suffix}") for p in existing}
        if not any(t.exists() for t in targets.values()):
            break
    for src, dst in targets.items():
        os.replace(src, dst)
    return list(targets.values())


def write_report(out_dir: str | Path, split: str, records_by_method: Mapping[str, Sequence[Mapping[str, Any]]],
                 *, protocol_line: str, notes: Sequence[str] = (), protocol: str = DEFAULT_PROTOCOL,
                 metrics: Sequence[str] = METRICS, titles: Mapping[str, str] = COLUMN_TITLES,
                 title: str | None = None, baselines: Sequence[str] = (), floor: str | None = None) -> dict[str, Any]:
    """Aggregate and write ``eval_<split>.csv``, ``eval_<split>.md`` and ``eval_<split>_pairs.csv``
    atomically into ``out_dir``, after keeping a previous report (:func:`keep_previous`).
    ``protocol`` names the protocol in every table's header; ``metrics`` / ``titles``: the record
    keys tabulated and their table titles; ``baselines`` / ``floor``: the methods that are the
    baselines and the floor, for the gap-closed columns of CD and EMD
    (:func:`lmnet.eval.gap.add_gap_columns`; none without a floor or a baseline). Returns ``{"csv",
    "md", "pairs", "tables", "kept"}`` (paths, the aggregated tables, the renamed previous files)."""
    out_dir = Path(out_dir)
    tables = {m: aggregate(recs, metrics=metrics) for m, recs in records_by_method.items()}
    gaps = add_gap_columns(tables, baselines=baselines, floor=floor)
    paths = {"csv": out_dir / f"eval_{split}.csv", "md": out_dir / f"eval_{split}.md",
             "pairs": out_dir / f"eval_{split}_pairs.csv"}
    kept = keep_previous(paths)
    atomic_io.write_text(paths["pairs"], pairs_csv(records_by_method, protocol=protocol))
    atomic_io.write_text(paths["csv"], summary_csv(tables, metrics=metrics, protocol=protocol, gap_metrics=gaps))
    atomic_io.write_text(paths["md"], markdown_table(tables, protocol_line=protocol_line,
                                                     title=title or f"Evaluation on split '{split}'", notes=notes,
                                                     metrics=metrics, titles=titles, protocol=protocol,
                                                     gap_metrics=gaps))
    return {**paths, "tables": tables, "kept": kept}
