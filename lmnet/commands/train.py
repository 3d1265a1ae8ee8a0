"""Train a 3D-LMNet network.

  lmnet train ae        --config ae.json [--set key=value ...]      point-cloud autoencoder
  lmnet train variant1  --config img.json --set ae_run=runs/ae1     image encoder, L1 latent loss
                                                                    (--set variant=l2 for L2)
  lmnet train variant2  --config img.json --set ae_run=runs/ae1     probabilistic (Variant II)
  lmnet train silhouette --config sil.json [--set pose=unknown]     image → cloud from masks only
                                                                    (docs/training.md, lmnet.methods.silhouette)
  lmnet train meshrecon --set preset=cpu --set data_root=data/cub   textured mesh from a photograph
                                                                    (docs/textured.md, lmnet.methods.meshrecon)

--config takes a JSON object of settings, or a run's config.json (its metadata keys are ignored);
--set overrides single keys (values parsed as Python literals: lr=1e-4, categories=['chair']).
Unknown keys are errors listing the valid ones. Continue a killed run with
--set run_dir=runs/x --set resume=true. Multi-GPU / multi-process:
  torchrun --nproc_per_node=4 -m lmnet train ae --config ae.json
(batch_size is per process; only rank 0 writes files).
"""

from __future__ import annotations

import argparse
import json

HELP = ("train a method: the autoencoder (ae), the image encoder (variant1 / variant2), the mask-supervised network "
        "(silhouette) or textured-mesh estimation (meshrecon)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    # the names come from lmnet.registry when the command runs (importing it here would load torch
    # for every `lmnet --help`); an unknown name is an error listing them
    p.add_argument("model", metavar="METHOD", help="the method to train: ae, variant1, variant2, silhouette, meshrecon "
                                                   "(or another registered method's name)")
    p.add_argument("--config", help="JSON file of settings (e.g. a previous run's config.json)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def resolve_cli_config(model: str, config_file: str | None, overrides: list[str]) -> tuple[str, dict]:
    """``(kind, resolved config)`` from the CLI arguments (exposed for tests): the method that
    ``model`` names adjusts the raw config (e.g. ``variant1`` sets ``variant``), then it is resolved once."""
    from lmnet.config import load_config_file, merge_overrides, parse_set_args
    from lmnet.errors import ConfigError
    from lmnet.registry import cli_names
    from lmnet.runs.config import strip_meta

    sets = parse_set_args(overrides)
    raw = merge_overrides(strip_meta(load_config_file(config_file)) if config_file else {}, sets)
    names = cli_names()
    if model not in names:
        raise ConfigError("lmnet train: METHOD must be one of " + ", ".join(
            f"{n} ({m.summary})" for n, (m, _) in names.items()) + f"; got {model!r}")
    method, adjust = names[model]
    return method.name, method.resolve(adjust(raw, sets))


def run(args) -> int:
    import sys

    from lmnet.errors import Interrupted

    kind, config = resolve_cli_config(args.model, args.config, args.overrides)
    if args.print_config:
        print(json.dumps(config, indent=2))
        return 0
    try:
        run_dir = _train(kind, config)
    except Interrupted as exc:  # Ctrl-C: one line, no traceback; the last finished epoch is on disk
        print(exc, file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # while the datasets / image cache were being prepared
        print("interrupted before the first epoch started; nothing to resume", file=sys.stderr)
        return 130
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {run_dir}")
    return 0


def _train(kind: str, config: dict):
    """Train the **resolved** ``config`` of the method ``kind``."""
    from lmnet.registry import get_method

    return get_method(kind).fit(config)
