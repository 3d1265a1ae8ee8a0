"""Run folders: layout, checkpoints, config.json, history and loss curve.

Layout of a run folder::

    <run_dir>/config.json            resolved training config + kind, git_commit, lmnet_version,
                                     created, world_size (feed it back with --config)
    <run_dir>/history.csv            one row per epoch (columns: see Trainer.columns)
    <run_dir>/loss_curve.png         train loss and validation metric(s) per epoch
    <run_dir>/checkpoints/last.pt    full resumable state after the latest epoch
    <run_dir>/checkpoints/best.pt    model weights of the best epoch (lowest best_metric)

``last.pt``: {"format", "kind", "model_config", "model" (state_dict), "optimizer", "scheduler"
(or None), "scaler" (or None), "epoch" (epochs completed), "best_metric_name", "best_metric",
"best_epoch", "history" (list of row dicts), "rng" (list, one snapshot per rank)}.
``best.pt``: {"format", "kind", "model_config", "model", "epoch", "best_metric_name",
"best_metric"}. Both load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import torch

from lmnet import atomic_io
from lmnet.data.inputs import run_image_input
from lmnet.errors import CorruptFileError, DataError

CHECKPOINT_FORMAT = "lmnet-checkpoint-v1"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CURVE_FILE = "loss_curve.png"
CHECKPOINT_DIR = "checkpoints"


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files that :mod:`lmnet.atomic_io` leaves in ``run_dir`` and its
    ``checkpoints/`` when a process is killed mid-write (only one trainer writes a run folder, so
    any found at its start are stale). Returns the removed paths."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR):
        for p in folder.glob(".*.tmp") if folder.is_dir() else []:
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def checkpoint_path(run_dir: str | Path, which: str = "last") -> Path:
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    return Path(run_dir) / CHECKPOINT_DIR / f"{which}.pt"


def load_checkpoint(path: str | Path) -> dict:
    """``torch.load(path, weights_only=True)`` on CPU, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many different types
        raise CorruptFileError(path, f"cannot load checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(path, f"not an lmnet checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return ckpt


def run_folder_of(run: str | Path) -> Path | None:
    """The run folder of ``run``: itself when it is a folder, the folder above ``checkpoints/`` for a
    checkpoint file inside one, else None (a loose ``.pt``)."""
    run = Path(run)
    if run.is_dir():
        return run
    return run.parent.parent if run.parent.name == CHECKPOINT_DIR else None


def load_run(run: str | Path, which: str = "best") -> tuple[dict, dict]:
    """A run's checkpoint and config → ``(checkpoint, config)``, whatever method wrote it.

    ``run``: a run folder (``which`` picks ``checkpoints/best.pt`` or ``last.pt``) or a checkpoint
    ``.pt`` file directly (then ``config`` comes from the folder above ``checkpoints/`` when
    present). ``config`` is that ``config.json`` dict, ``{}`` when there is none, with ``kind``
    set from the checkpoint when it lacks one. An image run's input convention must be known
    (:func:`lmnet.data.inputs.run_image_input`), else the error names its ``config.json``."""
    run = Path(run)
    if run.is_file():
        ckpt_file, folder = run, run_folder_of(run)
    else:
        if not run.is_dir():
            raise DataError(f"run folder {run} does not exist")
        ckpt_file, folder = checkpoint_path(run, which), run
    ckpt = load_checkpoint(ckpt_file)
    config = read_run_config(folder) if folder is not None and (folder / CONFIG_FILE).is_file() else {}
    config.setdefault("kind", ckpt["kind"])
    if config["kind"] == "image" and folder is not None:
        run_image_input(config, str(folder / CONFIG_FILE))  # its input convention is known, or refused here
    return ckpt, config


def git_commit() -> str:
    """``git rev-parse HEAD`` of the repository holding this package, or ``"unknown"`` (config.json's
    ``git_commit``)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def read_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist: {run_dir} is not an lmnet run folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not UTF-8 text (byte {exc.start}): expected a run's JSON config") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(path, f"invalid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CorruptFileError(path, f"expected a JSON object (a run's config), got a JSON {type(config).__name__}")
    return config


def write_history(run_dir: str | Path, history: list[dict], columns: list[str]) -> None:
    """Write ``history.csv`` atomically; missing values (e.g. no validation that epoch) are empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({c: _fmt(row.get(c)) for c in columns})
    atomic_io.write_text(Path(run_dir) / HISTORY_FILE, buf.getvalue())


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.8g}"
    return str(v)


def read_history(run_dir: str | Path) -> list[dict]:
    """``history.csv`` → list of dicts (numbers as float, empty cells as None, epoch as int)."""
    with open(Path(run_dir) / HISTORY_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (int(v) if k == "epoch" else float(v) if v != "" else None) for k, v in r.items()} for r in rows]


def plot_loss_curve(run_dir: str | Path, history: list[dict], train_key: str, val_keys: list[str]) -> None:
    """Write ``loss_curve.png``: left panel the losses (``train_key`` and any ``val_*_loss``), right
    panel the Chamfer metrics (``*chamfer*`` keys). Agg canvas, no pyplot: a notebook's backend is
    never touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric_keys = [k for k in val_keys if "chamfer" in k]
    panels = [[train_key] + [k for k in val_keys if k not in metric_keys]] + ([metric_keys] if metric_keys else [])
    fig = Figure(figsize=(5.0 * len(panels), 3.8), dpi=100)
    FigureCanvasAgg(fig)
    for i, keys in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for key in keys:
            pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title("loss" if i == 0 else "validation Chamfer (Euclidean, x100)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_io.write_bytes(Path(run_dir) / CURVE_FILE, buf.getvalue())
