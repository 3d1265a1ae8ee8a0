"""Compare several runs under several evaluation protocols on one split (docs/evaluation.md#comparing-runs).

Each run (trained, or a published model imported with ``lmnet import-weights``) is evaluated under
each protocol exactly as ``lmnet eval --protocol P`` would (its eval reports land in its folder),
then everything goes into one table with the baselines and the floor: OUT/compare.csv,
OUT/compare.md and a per-category bar chart OUT/compare.png.

Example:  lmnet compare --runs runs/l1 runs/l2 trained_models/lm-chair --protocols lmnet,official \\
              --split test --views all --out results/compare
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "evaluate several runs under several protocols into one table and figure"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="run folders (trained or imported)")
    p.add_argument("--labels", help="comma-separated names of the runs in the table (default: folder names)")
    p.add_argument("--protocols", default="lmnet", help="comma-separated protocols of lmnet eval (default lmnet)")
    p.add_argument("--out", required=True, help="folder for compare.csv / compare.md / compare.png")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-file", help="explicit split file for every run (default: each run's own)")
    p.add_argument("--data-root", help="dataset root for every run (default: each run's data_root)")
    p.add_argument("--views", default="all", help="'all' (24 per shape) or indices like 0 or 0,5")
    p.add_argument("--categories", default=None, help="names or synsets, comma separated")
    p.add_argument("--which", default="best", choices=("best", "last"), help="checkpoint of every run")
    p.add_argument("--no-baselines", action="store_true", help="only the models' rows")
    p.add_argument("--workers", type=non_negative_int, default=2, help="evaluation processes (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-items", type=non_negative_int, default=0, help="first N (shape, view) items only")


def _protocols(names: str) -> dict:
    """``{name: protocol}``, each built as ``lmnet eval --protocol NAME`` builds it (its defaults)."""
    from lmnet.commands import eval as eval_command
    from lmnet.errors import ConfigError
    from lmnet.eval.protocols import PROTOCOL_NAMES, check_protocol_name

    parser = argparse.ArgumentParser(add_help=False)
    eval_command.add_arguments(parser)
    out = {}
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        out[check_protocol_name(name)] = eval_command._protocol(parser.parse_args(["--run", "-", "--protocol", name]))
    if not out:
        raise ConfigError(f"--protocols names none; valid: {', '.join(PROTOCOL_NAMES)}")
    return out


def run(args) -> int:
    from lmnet.eval.compare import compare_runs, write_comparison
    from lmnet.eval.run import ShapeNetSource
    from lmnet.eval.runner import EvalOptions

    protocols = _protocols(args.protocols)
    options = EvalOptions(which=args.which, baselines=not args.no_baselines, workers=args.workers,
                          batch_size=args.batch_size, device=args.device, max_items=args.max_items)
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None

    def source():
        return ShapeNetSource(args.split, args.views, args.categories, split_file=args.split_file,
                              data_root=args.data_root)

    result = compare_runs(args.runs, protocols, source, options, labels)
    paths = write_comparison(result, args.out, title=f"Comparison on split '{args.split}'")
    print(paths["md"].read_text())
    for k in ("csv", "md", "png"):
        print(f"{k}: {paths[k]}")
    for p in paths["kept"]:
        print(f"kept the previous file as {p}")
    return 0
