"""Write converted weights as an lmnet run folder, the same layout as a trained run's.

An imported run holds ``config.json`` and ``checkpoints/best.pt`` (no ``last.pt``, history or loss
curve: there was no training here to resume or plot). ``config.json`` is a resolved training config
of the run's kind describing what the original code trained (``arch``, ``variant``, learning rate,
the official split files, the input convention) plus ``kind``, ``lmnet_version``, ``created``,
``git_commit`` and ``source``: where the weights came from (format, files, their sha256) and how
they were converted. ``best.pt`` is a regular lmnet checkpoint (``format``, ``kind``,
``model_config``, ``model``; ``epoch`` 0), so :func:`lmnet.registry.load_model`, ``lmnet infer``,
``lmnet eval`` and the notebooks use it like any trained run.

Target folders (:func:`claim`, rules of :mod:`lmnet.runs.guard`): ``--out`` and ``--ae-out`` must be
different folders, neither inside the other; each is missing, empty or an lmnet run folder, and one
that holds a run is replaced only with ``--force``, which first removes exactly that run's files
(its checkpoints, ``history.csv``, ``loss_curve.png``, eval reports, ``config.json``). Both folders
are locked while the import runs.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import pickle
from pathlib import Path
from typing import Iterator

import torch

import lmnet
from lmnet import atomic_io, runs
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.methods import autoencoder, image
from lmnet.registry import build_model, resolve_train_config
from lmnet.runs import guard
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


def read_torch_file(path: str | Path, what: str):
    """A ``torch.save`` file → its object, loaded with ``weights_only=True``: tensors and plain
    containers only; a pickle payload beyond them (code that would run) is refused unexecuted."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CorruptFileError(path, f"refused: the file carries a pickle payload beyond tensors and plain "
                                     f"containers, which is not loaded (weights_only=True): {exc}") from None
    except Exception as exc:  # truncated zip, not a torch file at all, ...
        raise CorruptFileError(path, f"cannot read it as a torch.save file ({type(exc).__name__}: {exc})") from None


def check_target(out: str | Path, what: str, overwrite: bool) -> guard.RunFolder:
    """The run folder ``out`` (named ``what`` in messages) if an import may write it: raises for a
    file, a non-empty folder that is not an lmnet run folder, and (without ``overwrite``) a run."""
    folder = guard.inspect_run_folder(out, what)
    if folder.holds_run and not overwrite:
        held = ", ".join(f for f in folder.files if f != runs.CONFIG_FILE)
        raise ConfigError(f"{what} {out} already holds a run ({held}); choose another {what} or pass --force")
    return folder


@contextlib.contextmanager
def claim(folders: dict[str, str | Path | None], overwrite: bool, command: str) -> Iterator[None]:
    """Hold the locks of ``folders`` (option name → folder; None skipped) after checking that they
    are distinct and writable (:func:`check_target`): before any conversion work."""
    guard.require_distinct(folders)
    with guard.lock_folders(folders, command):
        for what, folder in folders.items():
            if folder is not None:
                check_target(folder, what, overwrite)
        yield


def write_run(out: str | Path, model_config: dict, state: dict[str, torch.Tensor], train_config: dict,
              source: dict, overwrite: bool = False, what: str = "--out") -> Path:
    """Check ``state`` loads strictly into the network of ``model_config``, then write the run folder
    (with ``overwrite``, after removing the run files already there). The caller holds the folder's
    lock (:func:`claim`).

    ``train_config``: overrides of the run kind's training config (what the original training
    used); ``source``: provenance recorded under ``config.json["source"]``.
    """
    out = Path(out)
    best = runs.checkpoint_path(out, "best")
    previous = check_target(out, what, overwrite)
    kind = model_config["kind"]
    model = build_model(model_config)
    model.load_state_dict(state, strict=True)  # a converter bug fails here, not at the user's first load
    cfg = resolve_train_config(kind, {**train_config, "run_dir": str(out)} if kind != "image"
                               else {**train_config, "run_dir": str(out), "ae_run": train_config.get("ae_run") or "-"})
    if kind == "image" and not train_config.get("ae_run"):
        cfg["ae_run"] = None  # the decoder is embedded; no autoencoder run was written beside it
    meta = {"kind": kind, "git_commit": git_commit(), "lmnet_version": lmnet.__version__,
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "world_size": 1,
            "source": source}
    ckpt = {"format": runs.CHECKPOINT_FORMAT, "kind": kind, "model_config": model_config,
            "model": {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
            "epoch": 0, "best_metric_name": "imported", "best_metric": float("nan"), "best_epoch": 0}
    if previous.kind is not None:
        guard.clear_run_folder(previous)  # never the new best.pt beside an old last.pt or history
    atomic_io.save_torch(ckpt, best)
    atomic_io.write_json(out / runs.CONFIG_FILE, {**cfg, **meta})
    return out
