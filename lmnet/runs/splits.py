"""Which split file a run is evaluated or predicted on.

The rules of :func:`resolve_split_file`: ``split_file`` when given; else
``train`` / ``val`` → the run config's ``train_split`` / ``val_split``; ``test`` → the
``<prefix>_test_models.<ext>`` file beside the config's ``train_split`` (as ``lmnet split`` writes
them) or, for the official family (``lmnet_official_*``), the official ``val`` file, which *is* the
3D-R2N2 test split (docs/formats.md#splits).
"""

from __future__ import annotations

import re
from pathlib import Path

from lmnet.errors import ConfigError, DataError


def resolve_split_file(config: dict, split: str, split_file: str | Path | None = None) -> Path:
    """The split file to evaluate (rules in the module docstring); errors say what to pass."""
    if split_file is not None:
        p = Path(split_file)
        if not p.is_file():
            raise DataError(f"split file {p} does not exist")
        return p
    if split in ("train", "val"):
        p = config.get(f"{split}_split")
        if not p:
            raise DataError(f"the run config has no {split}_split; pass --split-file")
        return Path(p)
    if split != "test":
        raise ConfigError(f"split must be train, val or test (or pass a split file), got {split!r}")
    train = config.get("train_split")
    if train:
        t = Path(train)
        m = re.match(r"^(.*)_train_models(\..+)$", t.name)
        if m:
            cand = t.with_name(f"{m.group(1)}_test_models{m.group(2)}")
            if cand.is_file():
                return cand
            if "official" in m.group(1):
                val = t.with_name(f"{m.group(1)}_val_models{m.group(2)}")
                if val.is_file():
                    return val
    raise DataError("cannot find the test split file for this run (looked beside the config's train_split "
                    f"{train!r}); pass --split-file PATH")
