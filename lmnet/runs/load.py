"""Loading a run folder's network: :func:`load_model` (trained or imported runs), :func:`build_model`
and :func:`require_kind` for the consumers that need one kind of run."""

from __future__ import annotations

from pathlib import Path

import torch

from lmnet.errors import ConfigError, DataError
from lmnet.runs.folder import CHECKPOINT_DIR, CONFIG_FILE, checkpoint_path, load_checkpoint, read_run_config
from lmnet.runs.kinds import get_kind


def build_model(model_config: dict) -> torch.nn.Module:
    """Instantiate the network described by a checkpoint's ``model_config`` (its ``kind`` picks the
    builder of :data:`lmnet.runs.kinds.KINDS`)."""
    kind = model_config.get("kind")
    return get_kind(kind, "model kind in checkpoint model_config").build_model(model_config)


def load_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"):
    """Load a trained network → ``(model, config)``, the model in eval mode on ``device``.

    ``run_dir``: a run folder (``which`` picks ``checkpoints/best.pt`` or ``last.pt``) or a
    checkpoint ``.pt`` file directly (then ``config`` comes from the folder above ``checkpoints/``
    when present, else ``{"kind": ...}`` only). The model is a :class:`PointAutoencoder`
    (``config["kind"] == "autoencoder"``) or an :class:`ImageToPointCloud` (``"image"``), decided
    by the checkpoint. ``config`` is the run's ``config.json`` dict (resolved training config plus
    ``kind``, ``git_commit``, ...). A mask-supervised run (kind ``"silhouette"``) loads as a
    :class:`~lmnet.models.pose.SilhouetteNetwork` (an ``ImageToPointCloud``) with ``config["kind"]``
    reported as ``"image"`` and ``config["train_kind"] = "silhouette"``. Imported runs
    (:mod:`lmnet.weights.imported_run`) have the same layout and load the same way.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        ckpt_file = run_dir
        folder = run_dir.parent.parent if run_dir.parent.name == CHECKPOINT_DIR else None
    else:
        ckpt_file = checkpoint_path(run_dir, which)
        folder = run_dir
        if not run_dir.is_dir():
            raise DataError(f"run folder {run_dir} does not exist")
    ckpt = load_checkpoint(ckpt_file)
    config = read_run_config(folder) if folder is not None and (folder / CONFIG_FILE).is_file() else {}
    config.setdefault("kind", ckpt["kind"])
    loads_as = get_kind(config["kind"], f"{ckpt_file}: run kind").loads_as
    if loads_as:
        # e.g. a silhouette run *is* an image → point-cloud network: consumers that check for kind
        # "image" (lmnet eval / lmnet infer) take it as one; the training kind stays in train_kind
        config["kind"], config["train_kind"] = loads_as, config["kind"]
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), config


def require_kind(config: dict, kind: str, source, what: str) -> None:
    """Raise :class:`ConfigError` unless the loaded run ``config`` (from :func:`load_model`) is of
    ``kind``; the message names ``source`` (the run) and ``what`` needed it."""
    if config.get("kind") != kind:
        raise ConfigError(f"{source}: {what} needs an {kind} run (kind {kind!r}), got kind {config.get('kind')!r}")
