"""Run the whole pipeline on the synthetic set by executing the notebooks in order (data,
autoencoder, Variant I, Variant II, inference + evaluation, rendering) with the demo configuration
(lmnet.demo.DEMO_OVERRIDES). Writes the executed notebooks, figures, training runs and the
evaluation table (markdown + CSV) under --out and prints where they are."""

from __future__ import annotations

import argparse
import json

HELP = "run the whole pipeline on the synthetic set (executes the notebooks) into --out"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--notebooks", metavar="DIR", help="the folder of the lmnet notebooks (default: notebooks/ of "
                                                       "the lmnet checkout you run from)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="extra notebook config override, e.g. --set ae_epochs=5 (repeatable; applied to "
                        "the notebooks that have the key)")


def run(args) -> int:
    from lmnet.demo import run_demo
    from lmnet.errors import ConfigError

    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=JSON, got {item!r}")
        try:
            extra["?" + key] = json.loads(value)
        except json.JSONDecodeError:
            extra["?" + key] = value
    res = run_demo(args.out, overrides=extra, notebooks_from=args.notebooks)
    print(f"\ndemo finished in {res['seconds'] / 60:.1f} min; outputs in {args.out}/")
    for name, path in res["paths"].items():
        print(f"  {name:18s} {path}")
    print(f"  {'notebooks':18s} {args.out}/notebooks/  (executed, with outputs)")
    print(f"  {'figures':18s} {args.out}/figures/")
    md = res["paths"].get("eval_test.md")
    if md is not None:
        print("\n" + md.read_text())
    return 0
