"""Several runs × several protocols on one split → one table and one figure (``lmnet compare``).

Each (run, protocol) pair is an ordinary evaluation (:func:`lmnet.eval.runner.evaluate`: the run's
own ``eval_<split>*`` reports are written into its folder as ``lmnet eval`` writes them, an earlier
report kept aside), and its per-category tables are gathered into rows
``{"protocol", "run", "method", "category", "n_pairs", <the table's value columns>}``: the model's
rows under ``method`` = the run's label, every other row of the evaluation (the baselines, the floor,
the autoencoder's ceiling, where the evaluation has them) under its own name. Every value keeps the
unit its protocol's table states (×100 of that protocol's distances); numbers of two protocols are
never put in one column.

Written into ``out`` (atomically; earlier files renamed aside with their time, as eval reports):

- ``compare.csv``: every row, one column per value (the union over protocols; empty where a
  protocol has no such value);
- ``compare.md``: per protocol its description line, the class-mean table (every method of every
  run) and a per-category table of each value for the runs' models;
- ``compare.png``: per protocol, per category, one bar per run's model (and the floor and the best
  baseline where the evaluation has them) of the protocol's first value column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lmnet import atomic_io
from lmnet.errors import ConfigError
from lmnet.eval.report import keep_previous
from lmnet.eval.runner import MODEL_LABEL, EvalOptions, Source, evaluate

__all__ = ["compare_runs", "run_labels", "write_comparison"]

KEY_FIELDS = ("protocol", "run", "method", "category", "n_pairs")
FLOOR_PREFIX = "floor"


def run_labels(runs: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[str]:
    """One label per run: ``labels`` when given (as many as runs, distinct), else each folder's
    name, or ``parent/name`` where two names collide."""
    if labels is not None:
        if len(labels) != len(runs):
            raise ConfigError(f"--labels gives {len(labels)} label(s) for {len(runs)} run(s)")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"--labels must be distinct, got {list(labels)}")
        return list(labels)
    names = [Path(r).name for r in runs]
    out = [n if names.count(n) == 1 else f"{Path(r).parent.name}/{n}" for r, n in zip(runs, names)]
    if len(set(out)) != len(out):
        raise ConfigError(f"the runs {[str(r) for r in runs]} do not have distinct names: pass --labels")
    return out


def _value_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in KEY_FIELDS and k != "synset" and k not in cols]
    return cols


def compare_runs(runs: Sequence[str | Path], protocols: Mapping[str, Any], make_source: Callable[[], Source],
                 options: EvalOptions | None = None, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate every run under every protocol (``{name: protocol object}``) on a fresh
    ``make_source()`` each time; returns ``{"rows": [...], "protocols": {name: description line},
    "labels": [...]}`` (rows: module docstring)."""
    if not runs or not protocols:
        raise ConfigError("compare needs at least one run and one protocol")
    opts = options or EvalOptions()
    names = run_labels(runs, labels)
    rows: list[dict[str, Any]] = []
    described: dict[str, str] = {}
    for pname, protocol in protocols.items():
        described[pname] = protocol.describe()
        for label, run in zip(names, runs):
            res = evaluate(make_source(), run, dataclasses.replace(opts, protocol=protocol))
            for method, table in res["tables"].items():
                for row in table:
                    rows.append({"protocol": pname, "run": label, "method": label if method == MODEL_LABEL else method,
                                 **{k: v for k, v in row.items() if k != "synset"}})
    return {"rows": rows, "protocols": described, "labels": names}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def comparison_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Every row of :func:`compare_runs` (values with 6 decimals, NaN empty)."""
    fields = list(KEY_FIELDS) + _value_columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    w.writeheader()
    for r in rows:
        w.writerow({k: (("" if math.isnan(v) else f"{v:.6f}") if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1),
            *["| " + " | ".join(line) + " |" for line in body], ""]


def comparison_markdown(result: Mapping[str, Any], title: str = "Comparison") -> str:
    """Per protocol: its description, the class-mean table, one per-category table per value."""
    lines = [f"# {title}", "", f"Runs: {', '.join(result['labels'])}. Values in each protocol's own units "
             "(its description line); never compare numbers across protocols.", ""]
    for pname, line in result["protocols"].items():
        rows = [r for r in result["rows"] if r["protocol"] == pname]
        cols = _value_columns(rows)
        lines += [f"## Protocol: {pname}", "", f"Protocol: {line}", "", "### Class mean", ""]
        means = [r for r in rows if r["category"] == "mean"]
        lines += _table(["run", "method", "pairs", *cols],
                        [[r["run"], r["method"], str(r["n_pairs"]), *[_fmt(r.get(c, "")) for c in cols]] for r in means])
        models = [r for r in rows if r["method"] == r["run"]]
        cats = list(dict.fromkeys(r["category"] for r in models))
        for col in cols:
            lines += [f"### {col} per category (models)", ""]
            cell = {(r["run"], r["category"]): r.get(col, "") for r in models}
            lines += _table(["category", *result["labels"]],
                            [[c, *[_fmt(cell.get((lab, c), "")) for lab in result["labels"]]] for c in cats])
    return "\n".join(lines)


def _bars(result: Mapping[str, Any], pname: str):
    """``(categories, {bar label: [value per category]}, column)`` of one protocol's figure panel."""
    rows = [r for r in result["rows"] if r["protocol"] == pname and r["category"] != "mean"]
    col = _value_columns(rows)[0]
    cats = list(dict.fromkeys(r["category"] for r in rows))
    first = result["labels"][0]
    others = [r for r in rows if r["run"] == first and r["method"] != first]
    floor = sorted({r["method"] for r in others if r["method"].startswith(FLOOR_PREFIX)})
    baselines = sorted({r["method"] for r in others if not r["method"].startswith(FLOOR_PREFIX)
                        and "ceiling" not in r["method"]})
    mean_of = {r["method"]: r.get(col, math.nan) for r in result["rows"] if r["protocol"] == pname
               and r["run"] == first and r["category"] == "mean"}
    best = min(baselines, key=lambda m: mean_of.get(m, math.inf)) if baselines else None
    series = {}
    for label, run, method in ([(lab, lab, lab) for lab in result["labels"]]
                               + [(m, first, m) for m in ([best] if best else []) + floor[:1]]):
        val = {r["category"]: r.get(col, math.nan) for r in rows if r["run"] == run and r["method"] == method}
        series[label] = [float(val.get(c, math.nan)) for c in cats]
    return cats, series, col


def comparison_figure(result: Mapping[str, Any], path: str | Path) -> Path:
    """``compare.png`` (module docstring), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protos = list(result["protocols"])
    fig, axes = plt.subplots(len(protos), 1, figsize=(9, 3.2 * len(protos)), squeeze=False)
    for ax, pname in zip(axes[:, 0], protos):
        cats, series, col = _bars(result, pname)
        width = 0.8 / max(len(series), 1)
        for i, (label, values) in enumerate(series.items()):
            ax.bar([c + (i - (len(series) - 1) / 2) * width for c in range(len(cats))], values, width, label=label)
        ax.set_xticks(range(len(cats)), cats)
        ax.set_ylabel(col)
        ax.set_title(f"protocol: {pname}")
        ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_io.write_bytes(Path(path), buf.getvalue())
    return Path(path)


def write_comparison(result: Mapping[str, Any], out: str | Path, title: str = "Comparison") -> dict[str, Path]:
    """``compare.{csv,md,png}`` into ``out`` (earlier ones kept aside); returns their paths (and
    ``"kept"``: the renamed earlier files)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "compare.csv", "md": out / "compare.md", "png": out / "compare.png"}
    kept = keep_previous(paths)
    atomic_io.write_text(paths["csv"], comparison_csv(result["rows"]))
    atomic_io.write_text(paths["md"], comparison_markdown(result, title))
    comparison_figure(result, paths["png"])
    return {**paths, "kept": kept}
