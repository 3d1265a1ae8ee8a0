"""What a resumed run may change, and keeping ``best.pt`` consistent with ``last.pt``.

Settings (:func:`check_changes`): ``FREE_KEYS`` do not change what the epochs compute (``num_workers``:
the data order and the items depend on ``(seed, epoch)`` only, see :mod:`lmnet.train.data`).
``APPLIED_KEYS`` take effect from the first resumed epoch on: :func:`apply_changes` sets them on the
restored optimizer (whose ``load_state_dict`` brought back the saved values), the others are read
from the config every epoch, and ``config.json`` records each change (of free keys too) under
``"resume_changes"`` as ``{"from_epoch", "key", "old", "new"}``. Every other change is refused with a
:class:`~lmnet.errors.ConfigError`: it would describe data or a model that the finished epochs did
not use. With ``lr_schedule="cosine"`` neither ``lr`` nor ``epochs`` may change (the schedule
follows its start value and length).

``best.pt`` (:func:`repair_best`): it must hold the weights of ``last.pt``'s ``best_epoch``.

The run folder (:func:`check_run_dir`, rules of :mod:`lmnet.runs.guard`): training starts in a
missing or empty folder, or in a run folder that holds no weights and no history yet; it resumes
from ``checkpoints/last.pt`` only. Everything else is refused before any work.
"""

from __future__ import annotations

from pathlib import Path

from lmnet import atomic_io
from lmnet.errors import ConfigError, DataError
from lmnet import runs
from lmnet.runs import guard
from lmnet.runs.config import strip_meta

# (amp / channels_last: how the same maths is computed, which follows the device, which may change too;
# config.json records the precision that ran)
FREE_KEYS = {"epochs", "resume", "device", "amp", "channels_last", "num_workers", "progress", "run_dir",
             "data_root"}
APPLIED_KEYS = {"lr", "beta1", "beta2", "grad_clip", "val_every", "weight_decay", "weight_decay_conv",
                "weight_decay_fc", "weight_decay_logvar", "logvar_head_epochs", "logvar_head_lr"}


def check_changes(config: dict, saved: dict | None, done: int, run_dir: Path,
                  has_schedule: bool, defaults: dict | None = None) -> tuple[list[tuple[str, object, object]], list[dict]]:
    """``(changes, change log)``: the applied keys of ``config`` that differ from the saved
    ``config.json`` (``saved``; None when missing) as ``(key, old, new)``, and the run's
    ``resume_changes`` record with them appended. Raises for a change that cannot hold.

    A key of ``defaults`` (the method's config defaults) that ``saved`` lacks counts as its default:
    the run was saved before lmnet had that key, and keys are added with the default that keeps
    what ran before (e.g. ``colour_jitter`` 0 = no recolouring)."""
    if saved is None:
        return [], []
    log = list(saved.get("resume_changes") or [])
    old = {**{k: v for k, v in (defaults or {}).items() if k not in saved}, **strip_meta(saved)}
    changed = sorted(k for k in config if k not in FREE_KEYS and old.get(k) != config[k])
    refused = {k for k in changed if k not in APPLIED_KEYS}
    if has_schedule:
        refused |= {k for k in ("lr", "epochs") if old.get(k, config[k]) != config[k]}
    if refused:
        listed = ", ".join(f"{k}: {old.get(k)!r} -> {config[k]!r}" for k in sorted(refused))
        raise ConfigError(
            f"cannot resume {run_dir} with changed settings ({listed}): the {done} finished epoch(s) ran "
            f"with the saved values. Resume with them (e.g. --config {Path(run_dir) / runs.CONFIG_FILE}) or "
            f"start a new run_dir. Settings that may change on resume: {', '.join(sorted(FREE_KEYS | APPLIED_KEYS))}"
            + (" (lr and epochs not with lr_schedule='cosine')" if has_schedule else ""))
    changes = [(k, old.get(k), config[k]) for k in changed]
    # free keys are recorded too (not "resume" itself), so that config.json never misstates what ran
    free = sorted(k for k in FREE_KEYS - {"resume"} if k in old and old[k] != config.get(k))
    log += [{"from_epoch": done + 1, "key": k, "old": old.get(k), "new": config[k]} for k in sorted(changed + free)]
    return changes, log


def apply_changes(optimizer, fresh_groups: list[dict], config: dict, changes) -> None:
    """Set the changed optimizer hyperparameters; ``fresh_groups``: the parameter groups that
    ``config`` builds (their weight decay is the one to use)."""
    keys = {k for k, _, _ in changes}
    for group, new in zip(optimizer.param_groups, fresh_groups):
        group["weight_decay"] = new["weight_decay"]
        if "lr" in keys:
            group["lr"] = float(config["lr"])
        if keys & {"beta1", "beta2"}:
            group["betas"] = (float(config["beta1"]), float(config["beta2"]))


def repair_best(run_dir: Path, last: dict, weights: dict) -> str | None:
    """Make ``best.pt`` hold ``last.pt``'s ``best_epoch``; ``weights``: the checkpoint of the model
    as loaded from ``last.pt``. Returns a note to log: None (nothing to do), a repair, or ``"lost"``
    (best.pt missing or wrong and its weights are not in ``last.pt``: best tracking must restart).

    A best.pt *newer* than last.pt is what a kill between the two writes leaves (best.pt is written
    first): that epoch is redone now and writes it again, so it is kept.
    """
    path = runs.checkpoint_path(run_dir, "best")
    best_epoch, done = int(last["best_epoch"]), int(last["epoch"])
    try:
        best = runs.load_checkpoint(path) if path.is_file() else None
    except DataError:
        best = None
    if best is not None and int(best["epoch"]) == best_epoch and best.get("best_metric") == last["best_metric"]:
        return None
    if best is not None and int(best["epoch"]) > done:
        return f"best.pt is from epoch {best['epoch']}, which was interrupted and is redone now"
    if best_epoch == 0:  # nothing counted as best yet (e.g. no finite metric)
        return None
    if best_epoch == done:
        atomic_io.save_torch(weights, path)
        return f"rebuilt {path} (epoch {best_epoch}) from last.pt"
    return "lost"


def check_run_dir(run_dir: Path, resume: bool) -> guard.RunFolder:
    """Whether a run may start (``resume`` False) or continue (True) in ``run_dir``; raises
    ConfigError with what to do instead (a CorruptFileError for an unreadable ``config.json``).

    A folder that holds ``last.pt`` continues only with ``resume``. One that holds other weights or
    a history but no ``last.pt`` is never trained over: there is nothing to continue from, and a new
    run would replace its ``best.pt`` and ``config.json`` (an imported run: ``best.pt`` alone). The
    one exception, with ``resume``: a training killed between ``best.pt`` and ``last.pt`` of its
    first epoch (``best.pt`` of epoch 1, no history yet), whose first epoch is then redone."""
    folder = guard.inspect_run_folder(run_dir, "run_dir")
    last = runs.checkpoint_path(run_dir, "last")
    if folder.has(f"{runs.CHECKPOINT_DIR}/last.pt"):
        if not resume:
            raise ConfigError(f"run folder {run_dir} already holds a run ({last}); set resume=True to continue it "
                              f"or choose another run_dir")
        return folder
    if not folder.holds_run:
        return folder
    first_epoch_killed = _first_epoch_killed(folder)
    if resume and first_epoch_killed:
        return folder
    held = ", ".join(f for f in folder.files if f != runs.CONFIG_FILE)
    what = ("an imported run" if folder.imported else "a run killed in its first epoch" if first_epoch_killed
            else "a run whose last.pt was removed")
    raise ConfigError((f"cannot resume {run_dir}: it holds no {last} to continue from" if resume else
                       f"run folder {run_dir} already holds a run") + f" ({what} of kind {folder.kind!r}: {held}); "
                      + ("set resume=True to redo its first epoch" if first_epoch_killed else "choose another run_dir"))


def _first_epoch_killed(folder: guard.RunFolder) -> bool:
    """``best.pt`` of epoch 1 from a training, and neither ``last.pt`` nor ``history.csv`` yet."""
    if folder.imported or folder.has(runs.HISTORY_FILE) or not folder.has(f"{runs.CHECKPOINT_DIR}/best.pt"):
        return False
    return int(runs.load_checkpoint(runs.checkpoint_path(folder.path, "best")).get("epoch", 0)) <= 1
