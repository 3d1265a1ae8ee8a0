"""The ``lmnet`` command line.

Every sub-command lives in its own module under :mod:`lmnet.commands` and is discovered here,
so adding a command never touches this file. A command module provides:

- ``HELP``: one line shown in ``lmnet --help``;
- ``add_arguments(parser)``: declares its options (keep heavy imports out of module scope so that
  ``--help`` stays fast);
- ``run(args) -> int``: does the work and returns the exit code.

The module name with ``_`` replaced by ``-`` is the command name (``check_data`` → ``check-data``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import lmnet
import lmnet.commands


def _command_modules():
    for info in sorted(pkgutil.iter_modules(lmnet.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"lmnet.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmnet",
        description="3D-LMNet: single-image point-cloud reconstruction suite.",
    )
    parser.add_argument("--version", action="version", version=f"lmnet {lmnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from lmnet.errors import LmnetError

    try:
        return int(args._run(args) or 0)
    except LmnetError as exc:
        print(f"lmnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
