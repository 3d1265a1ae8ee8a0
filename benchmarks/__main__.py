"""Run every benchmark and write ``benchmarks/results/<host>.{json,md}``.

Usage::

    python -m benchmarks                 # all topics, full sizes
    python -m benchmarks --quick         # small sizes (a minute or two)
    python -m benchmarks --only losses eval

Every comparison (ours vs an alternative) is measured in the same run on the same inputs; each
figure is the median of several repeats. The markdown adds, per case and metric, the ratio of each
alternative to ours (``> 1`` means ours is smaller, i.e. faster or leaner).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path
from lmnet import atomic_io

HERE = Path(__file__).resolve().parent
OURS = "ours"


def discover() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def hardware() -> dict:
    import torch

    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def ratios(rows: list[dict]) -> list[dict]:
    """For each (case, metric) with an ``ours`` row: value(alternative) / value(ours)."""
    out = []
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        if "speed-up" in r["metric"] or r["impl"].startswith(f"{OURS} vs"):
            continue  # already a ratio
        by_key.setdefault((r["case"], r["metric"]), {})[r["impl"]] = r
    for (case, metric), impls in by_key.items():
        mine = next((v for k, v in impls.items() if k.startswith(OURS)), None)
        if not mine or not mine["value"]:
            continue
        if mine.get("unit") == "MB" and mine["value"] < 1.0:
            continue  # below what RSS sampling resolves: a ratio would be noise
        for impl, r in impls.items():
            if r is mine:
                continue
            out.append({"case": case, "metric": metric, "vs": impl,
                        "ratio": r["value"] / mine["value"]})
    return out


def to_markdown(report: dict) -> str:
    hw = report["hardware"]
    lines = [f"# lmnet benchmarks on {hw.get('cpu', hw['platform'])}", "",
             f"{hw['cpu_count']} CPUs, torch {hw['torch']} ({hw['torch_threads']} threads), "
             f"CUDA: {hw['cuda'] or 'none'}; {report['date']}; mode: {report['mode']}.", ""]
    for res in report["results"]:
        lines += [f"## {res['topic']}", ""]
        own_hw = res.get("measured_on")  # a topic kept from an earlier run on other hardware
        if own_hw and own_hw["hardware"].get("cpu") != hw.get("cpu"):
            lines += [f"Measured on {own_hw['hardware'].get('cpu', own_hw['hardware']['platform'])}, "
                      f"{own_hw['date']} (not the machine above).", ""]
        lines += ["| case | impl | metric | value | unit |", "|---|---|---|---|---|"]
        for r in res.get("rows", []):
            v = r["value"]
            vs = f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
            lines.append(f"| {r['case']} | {r['impl']} | {r['metric']} | {vs} | {r['unit']} |")
        rs = ratios(res.get("rows", []))
        if rs:
            lines += ["", "| case | metric | alternative | alternative / ours |", "|---|---|---|---|"]
            lines += [f"| {r['case']} | {r['metric']} | {r['vs']} | {r['ratio']:.2f}× |" for r in rs]
        for n in res.get("notes", []):
            lines.append(f"\n- {n}")
        if res.get("error"):
            lines.append(f"\n**failed:** `{res['error']}`")
        lines.append("")
    return "\n".join(lines)


def render_markdown(json_path: str | Path) -> str:
    """Re-render the markdown summary of a saved ``<host>.json`` report."""
    return to_markdown(json.loads(Path(json_path).read_text()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--only", nargs="*", help=f"topics to run (available: {', '.join(discover())})")
    ap.add_argument("--out", default=str(HERE / "results"), help="output folder")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    topics = args.only or discover()
    unknown = set(topics) - set(discover())
    if unknown:
        ap.error(f"unknown topic(s) {sorted(unknown)}; available: {discover()}")
    report = {"hardware": hardware(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "mode": "quick" if args.quick else "full", "results": []}
    import torch

    threads = torch.get_num_threads()
    for topic in topics:
        print(f"== {topic}", flush=True)
        torch.set_num_threads(threads)  # a benchmark may change it; each starts from the default
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"benchmarks.bench_{topic}")
            res = mod.run(quick=args.quick)
        except Exception as exc:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            res = {"topic": topic, "rows": [], "notes": [], "error": f"{type(exc).__name__}: {exc}"}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        if res.pop("skipped", False):  # e.g. the gpu topic without a GPU: says why, records nothing
            print(f"   skipped: {'; '.join(res.get('notes', []))}")
            continue
        report["results"].append(res)
        for r in res.get("rows", []):
            print(f"   {r['case']:<28} {r['impl']:<18} {r['metric']:<18} {r['value']:>12.4g} {r['unit']}")
    out = Path(args.out)
    if not report["results"]:
        print("nothing measured: no report written")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    host = report["hardware"]["host"].split(".")[0] or "host"
    suffix = "-quick" if args.quick else ""

    previous = out / f"{host}{suffix}.json"
    if args.only and previous.is_file():  # a partial run replaces its topics in the last full report
        old = json.loads(previous.read_text())
        fresh = {r["topic"] for r in report["results"]}
        kept = [r for r in old.get("results", []) if r.get("topic") not in fresh]
        for r in kept:  # each kept topic remembers the machine and date it was measured on
            r.setdefault("measured_on", {"hardware": old["hardware"], "date": old["date"]})
        report["results"] = kept + report["results"]
    atomic_io.write_json(out / f"{host}{suffix}.json", report)
    atomic_io.write_text(out / f"{host}{suffix}.md", to_markdown(report))
    atomic_io.write_text(out / f"latest{suffix}.md", to_markdown(report))
    for res in report["results"]:  # a topic with a report of its own (gpu.json / gpu.md)
        if res.get("own_report"):
            own = {**report, "results": [res]}
            atomic_io.write_json(out / f"{res['own_report']}{suffix}.json", own)
            atomic_io.write_text(out / f"{res['own_report']}{suffix}.md", to_markdown(own))
    print(f"wrote {out / (host + suffix)}.json and .md")
    return 1 if any(r.get("error") for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
