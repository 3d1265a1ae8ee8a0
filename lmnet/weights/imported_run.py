"""Write converted weights as an lmnet run folder, the same layout as a trained run's.

An imported run holds ``config.json`` and ``checkpoints/best.pt`` (no ``last.pt``, history or loss
curve: there was no training here to resume or plot). ``config.json`` is a resolved training config
of the run's kind describing what the original code trained (``arch``, ``variant``, learning rate,
the official split files, the input convention) plus ``kind``, ``lmnet_version``, ``created``,
``git_commit`` and ``source``: where the weights came from (format, files, their sha256) and how
they were converted. ``best.pt`` is a regular lmnet checkpoint (``format``, ``kind``,
``model_config``, ``model``; ``epoch`` 0), so :func:`lmnet.registry.load_model`, ``lmnet infer``,
``lmnet eval`` and the notebooks use it like any trained run.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import torch

import lmnet
from lmnet import atomic_io, runs
from lmnet.errors import ConfigError
from lmnet.methods import autoencoder, image
from lmnet.registry import build_model, resolve_train_config
from lmnet.runs.folder import git_commit

OFFICIAL_SPLITS = {"train_split": "splits/lmnet_official_train_models.json",
                   "val_split": "splits/lmnet_official_val_models.json"}


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_model_config(variant: str, arch: str) -> dict:
    """The ``model_config`` of a published image network (raw 0–255 input, as both codes fed it)."""
    return image.model_config({"variant": variant, "image_scaling": "raw255", "arch": arch})


def ae_model_config() -> dict:
    """The ``model_config`` of a published point autoencoder."""
    return autoencoder.model_config({})


def write_run(out: str | Path, model_config: dict, state: dict[str, torch.Tensor], train_config: dict,
              source: dict, overwrite: bool = False) -> Path:
    """Check ``state`` loads strictly into the network of ``model_config``, then write the run folder.

    ``train_config``: overrides of the run kind's training config (what the original training
    used); ``source``: provenance recorded under ``config.json["source"]``.
    """
    out = Path(out)
    best = runs.checkpoint_path(out, "best")
    if (best.exists() or runs.checkpoint_path(out, "last").exists()) and not overwrite:
        raise ConfigError(f"{out} already holds a run ({best.parent}); choose another --out or pass --force")
    kind = model_config["kind"]
    model = build_model(model_config)
    model.load_state_dict(state, strict=True)  # a converter bug fails here, not at the user's first load
    cfg = resolve_train_config(kind, {**train_config, "run_dir": str(out)} if kind == "autoencoder"
                               else {**train_config, "run_dir": str(out), "ae_run": train_config.get("ae_run") or "-"})
    if kind == "image" and not train_config.get("ae_run"):
        cfg["ae_run"] = None  # the decoder is embedded; no autoencoder run was written beside it
    meta = {"kind": kind, "git_commit": git_commit(), "lmnet_version": lmnet.__version__,
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "world_size": 1,
            "source": source}
    ckpt = {"format": runs.CHECKPOINT_FORMAT, "kind": kind, "model_config": model_config,
            "model": {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
            "epoch": 0, "best_metric_name": "imported", "best_metric": float("nan"), "best_epoch": 0}
    atomic_io.save_torch(ckpt, best)
    atomic_io.write_json(out / runs.CONFIG_FILE, {**cfg, **meta})
    return out
