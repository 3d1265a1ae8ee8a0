"""Inference: a trained image run → point clouds on disk, for a dataset split or for image files.

Inputs
------
- a run folder (``config.json`` + ``checkpoints/best.pt``) or a checkpoint ``.pt`` file
  (:func:`lmnet.registry.load_model`);
- either a dataset split (:func:`predict_split`; the split file is resolved like
  ``lmnet eval``: ``--split test|val|train`` or ``--split-file``) or user images
  (:func:`predict_images`; any size PNG/JPG, prepared by :func:`lmnet.data.inputs.prepare_image`:
  padding, resize, crop, alpha and the run's input convention are stated there).

Output layout: :mod:`lmnet.runs.predictions` (the writer used here and the reader,
:func:`load_predictions`, importable from here too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import check_image_header, prepare_array, prepare_image, run_background
from lmnet.envvars import MAX_SAMPLE_CLOUDS
from lmnet.errors import ConfigError, DataError
from lmnet.runs import guard
from lmnet.runs.folder import CONFIG_FILE, read_run_config
from lmnet.registry import load_model, require_kind
from lmnet.runs.predictions import PredictionWriter, check_finite, check_out, load_predictions
from lmnet.runs.splits import resolve_split_file


def _load(checkpoint: str | Path, device: str, samples: int = 0):
    folder = Path(checkpoint)
    if samples and (folder / CONFIG_FILE).is_file():  # refuse before the (slow) weight load
        variant = read_run_config(folder).get("variant")
        if variant is not None and variant != "probabilistic":
            raise ConfigError(f"--samples {samples}: this run is deterministic (variant {variant!r}, Variant I); "
                              "sampling needs a Variant II ('probabilistic') run. Use --samples 0.")
    model, config = load_model(checkpoint, which="best", device=device)
    require_kind(config, "image", checkpoint, "inference")
    return model, config


def _predict(model, images: torch.Tensor, samples: int, gen: torch.Generator | None):
    """``(B, 3, 128, 128)`` → ``(pred (B, 2048, 3), samples (B, K, 2048, 3) or None)``."""
    with torch.no_grad():
        mu, logvar = model.encode_image(images)
        pred = model.decoder(mu)
        smp = None
        if samples > 0 and logvar is not None:
            smp = model.sample(images, samples, generator=gen)
    return pred.cpu().numpy(), (smp.cpu().numpy() if smp is not None else None)


def _check_samples(model, samples: int) -> None:
    if samples < 0:
        raise ConfigError(f"--samples must be >= 0, got {samples}")
    if samples > 0 and not getattr(model, "probabilistic", False):
        raise ConfigError(f"--samples {samples}: this run is deterministic (Variant I); sampling needs a "
                          "Variant II ('probabilistic') run. Use --samples 0.")


def _check_counts(batch_size: int, limit: int = 0) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"--limit must be a whole number >= 0 (0 = all), got {limit!r}")


def _check_sample_memory(samples: int, batch: int) -> None:
    """Refuse, before the model loads, ``samples`` per image for batches of ``batch`` images when the
    sample clouds decoded at once (``batch × samples``, 2048 points each) are over the limit."""
    if samples > 0:
        MAX_SAMPLE_CLOUDS.check(batch * samples, f"--samples {samples} for batches of {batch} image(s) decodes "
                                f"{batch * samples * 2048 * 3 * 4 / 1e9:.3g} GB of sample clouds at once",
                                hint="lower --samples or --batch-size")


def _generator(device: str, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def predict_prepared(model, images: np.ndarray, *, samples: int = 0, device: str = "cpu", seed: int = 0,
                     names: Sequence[str] = (), source: str = "the model") -> tuple[np.ndarray, np.ndarray | None]:
    """Prepared inputs ``float32 (B, 3, 128, 128)`` (:func:`~lmnet.data.inputs.prepare_image`) through a
    loaded image network → ``(pred (B, 2048, 3), samples (B, K, 2048, 3) or None)``, computed as
    :func:`predict_images` computes one batch: the same ``seed`` gives the same samples. A non-finite
    prediction's error names ``source`` (the run) and the image (``names``, one per image)."""
    _check_samples(model, samples)
    pred, smp = _predict(model, torch.from_numpy(images).to(device), samples, _generator(device, seed))
    check_finite(pred, list(names) or [f"images[{i}]" for i in range(len(pred))], source)
    return pred, smp


def predict_images(checkpoint: str | Path, images: Sequence[str | Path], out: str | Path, *, samples: int = 0,
                   batch_size: int = 16, device: str = "cpu", seed: int = 0, overwrite: bool = False) -> Path:
    """Predict user image files; writes the layout of the module docstring; returns ``index.csv``."""
    if not images:
        raise DataError("no input images given")
    _check_counts(batch_size)
    paths = [Path(p) for p in images]
    for p in paths:  # fail on a bad path, image or size before the lock and the (slow) model load
        if not p.is_file():
            raise DataError(f"image {p} does not exist")
        check_image_header(p)
    _check_sample_memory(samples, min(batch_size, len(paths)))
    with guard.lock_folder(out, "--out", "lmnet infer"):  # one writer; released on errors and Ctrl-C
        check_out(out, overwrite)

        model, config = _load(checkpoint, device, samples)
        _check_samples(model, samples)
        bg = run_background(config)
        gen = _generator(device, seed)
        writer = PredictionWriter(out, overwrite)
        for i in range(0, len(paths), batch_size):
            chunk = paths[i:i + batch_size]
            imgs = np.stack([prepare_image(p, bg) for p in chunk])
            pred, smp = _predict(model, torch.from_numpy(imgs).to(device), samples, gen)
            check_finite(pred, [str(p) for p in chunk], str(checkpoint))
            for j, p in enumerate(chunk):
                writer.add(str(p), imgs[j], pred[j], None if smp is None else smp[j])
        return writer.close()


def reconstruct(images: Sequence[str | Path | np.ndarray], run: str | Path, *, which: str = "best",
                device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """Image files or arrays → predicted point clouds ``float32 (N, 2048, 3)`` in the 3D-LMNet frame,
    in memory (``lmnet.reconstruct``; :func:`predict_images` writes them to disk instead).

    ``images``: paths (any PNG/JPG, :func:`~lmnet.data.inputs.prepare_image`) and/or arrays ``uint8
    (H, W, 3)`` / ``(H, W, 4)`` (:func:`~lmnet.data.inputs.prepare_array`), prepared in the run's
    input convention. ``run``: an image run folder or ``.pt`` (``which``: its best / last checkpoint).
    Variant II returns μ's decoding (no sampling)."""
    if isinstance(images, (str, Path, np.ndarray)):
        images = [images]
    if len(images) == 0:
        raise DataError("no input images given")
    _check_counts(batch_size)
    model, config = load_model(run, which=which, device=device)
    require_kind(config, "image", run, "reconstruct")
    bg = run_background(config)
    prepared = np.stack([prepare_array(x, bg, f"images[{i}]") if isinstance(x, np.ndarray) else prepare_image(x, bg)
                         for i, x in enumerate(images)])
    names = [f"images[{i}]" if isinstance(x, np.ndarray) else str(x) for i, x in enumerate(images)]
    out = []
    for i in range(0, len(prepared), batch_size):
        pred, _ = _predict(model, torch.from_numpy(prepared[i:i + batch_size]).to(device), 0, None)
        check_finite(pred, names[i:i + batch_size], str(run))
        out.append(pred)
    return np.concatenate(out).astype(np.float32, copy=False)


def predict_split(checkpoint: str | Path, out: str | Path, *, split: str = "test", split_file=None,
                  views: str | Sequence[int] = (0,), categories=None, samples: int = 0, batch_size: int = 16,
                  device: str = "cpu", seed: int = 0, limit: int = 0, data_root=None,
                  overwrite: bool = False) -> Path:
    """Predict the (shape, view) items of a dataset split (the run's data_root unless ``data_root``);
    ``limit`` > 0 keeps the first N items. Writes images, GT (pointcloud_1024) and predictions."""

    _check_counts(batch_size, limit)
    _check_sample_memory(samples, min(batch_size, limit) if limit else batch_size)
    with guard.lock_folder(out, "--out", "lmnet infer"):  # one writer; released on errors and Ctrl-C
        check_out(out, overwrite)
        model, config = _load(checkpoint, device, samples)
        _check_samples(model, samples)
        split_path = resolve_split_file(config, split, split_file)
        cats = to_synsets(categories if categories is not None else config.get("categories"))
        ds = ShapeNetDataset(Path(data_root or config.get("data_root") or "data"), split=split_path, categories=cats,
                             views=views, n_points=1024, load_images=True, image_cache=config.get("image_cache", True),
                             background=run_background(config))
        n = len(ds) if not limit else min(len(ds), int(limit))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=batch_size,
                                             shuffle=False, num_workers=0)
        gen = _generator(device, seed)
        writer = PredictionWriter(out, overwrite)
        for batch in loader:
            imgs = batch["image"]
            pred, smp = _predict(model, imgs.to(device), samples, gen)
            check_finite(pred, [f"{s}/{m}" for s, m in zip(batch["category"], batch["model_id"])], str(checkpoint))
            for j in range(imgs.shape[0]):
                s, m, v = batch["category"][j], batch["model_id"][j], int(batch["view"][j])
                writer.add(f"{s}/{m}/{v:02d}", imgs[j].numpy(), pred[j], None if smp is None else smp[j],
                           gt=batch["points"][j].numpy(), synset=s, model_id=m, view=v)
        return writer.close()


__all__ = ["predict_split", "predict_images", "predict_prepared", "reconstruct", "load_predictions"]
