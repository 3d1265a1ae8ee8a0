"""Inference: a trained image run → point clouds on disk, for a dataset split or for image files.

Inputs
------
- a run folder (``config.json`` + ``checkpoints/best.pt``) or a checkpoint ``.pt`` file
  (:func:`lmnet.registry.load_model`);
- either a dataset split (:func:`predict_split`; the split file is resolved like
  ``lmnet eval``: ``--split test|val|train`` or ``--split-file``) or user images
  (:func:`predict_images`; any size PNG/JPG, prepared by :func:`lmnet.data.photo_mask.photo_input`:
  an image with alpha as a rendering, a photo without alpha masked and framed as the renderings
  frame their object; the run's input convention throughout). ``<id>.input.png`` shows what the
  network saw; a photo unlike the training data gets one warning line on stderr.

With ``color`` each prediction also gets a colour per point from its input image
(:func:`lmnet.render.point_colours.colour_points`, the network crop's alpha as the mask): ``<id>.colors.npy``
and ``<id>.pred.ply`` (or ``.glb``, ``color_format``).

Output layout: :mod:`lmnet.runs.predictions` (the writer used here and the reader,
:func:`load_predictions`, importable from here too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import check_image_header, composite, run_background
from lmnet.data.photo_mask import BACKGROUND_METHODS, array_input, photo_crop, photo_input
from lmnet.envvars import MAX_SAMPLE_CLOUDS
from lmnet.errors import ConfigError, DataError
from lmnet.runs import guard
from lmnet.runs.folder import CONFIG_FILE, read_run_config, run_folder_of
from lmnet.registry import load_model, require_kind
from lmnet.render.point_colours import colour_points
from lmnet.runs.latent_ood import LATENT_OOD_FILE, latent_warning, read_latent_ood
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


def _colours(pred: np.ndarray, rgba: np.ndarray | None) -> np.ndarray | None:
    """``uint8 (N, 3)`` colours of ``pred (N, 3)`` from its input crop ``rgba uint8 (128, 128, 4)``,
    or None when colours were not asked for (``rgba`` None)."""
    return None if rgba is None else colour_points(pred, rgba).colours


def _split_rgba(image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """A dataset item's ``image (3, 128, 128)`` and ``mask (1, 128, 128)`` → ``uint8 (128, 128, 4)``."""
    rgba = torch.cat([image, mask * 255.0]).permute(1, 2, 0).round().clamp(0, 255)
    return rgba.to(torch.uint8).numpy()


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
                   batch_size: int = 16, device: str = "cpu", seed: int = 0, overwrite: bool = False,
                   masks: Sequence[str | Path] | None = None, background: str = "auto", color: bool = False,
                   color_format: str = "ply") -> Path:
    """Predict user image files; writes the layout of the module docstring; returns ``index.csv``.
    ``masks``: None or one mask file per image; ``background``: how an opaque photo's object is
    found (:func:`lmnet.data.photo_mask.photo_input`). One warning line per image unlike the
    training data goes to stderr (:func:`_warn_unlike`). ``color``: a colour per point from the
    network's crop of the image (its alpha the object's mask), as ``<id>.pred.<color_format>``."""
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
        prepared = photo_inputs(paths, masks, run_background(config), background)
        ood = _latent_reference(checkpoint)
        gen = _generator(device, seed)
        writer = PredictionWriter(out, overwrite, color_format)
        for i in range(0, len(paths), batch_size):
            chunk = paths[i:i + batch_size]
            imgs = np.stack([x for x, _, _ in prepared[i:i + batch_size]])
            pred, smp = _predict(model, torch.from_numpy(imgs).to(device), samples, gen)
            check_finite(pred, [str(p) for p in chunk], str(checkpoint))
            notes = _latent_notes(model, imgs, device, ood)
            for j, p in enumerate(chunk):
                crop = prepared[i + j][2] if color else None
                writer.add(str(p), imgs[j], pred[j], None if smp is None else smp[j], input_png=True,
                           colours=_colours(pred[j], crop))
                _warn_unlike(p, prepared[i + j][1] + notes[j])
        index = writer.close()
        if ood is None:
            _no_latent_note(checkpoint)
        return index


def photo_inputs(paths: Sequence[Path], masks, image_background: float | None, background: str = "auto"):
    """Every image's ``(network input (3, 128, 128), warnings, network crop uint8 (128, 128, 4))``
    (:func:`lmnet.data.photo_mask.photo_crop`, composited in the run's convention),
    all read before anything is written; ``masks`` None or one mask file per image."""
    if masks is not None and len(masks) != len(paths):
        raise ConfigError(f"--masks gives {len(masks)} file(s) for {len(paths)} image(s): give one mask per image")
    if background not in BACKGROUND_METHODS:
        raise ConfigError(f"--background must be one of {', '.join(BACKGROUND_METHODS)}, got {background!r}")
    out = []
    for k, p in enumerate(paths):
        crop, warnings = photo_crop(p, None if masks is None else masks[k], background)
        out.append((composite(crop, image_background)[0], warnings, crop))
    return out


def _latent_reference(checkpoint: str | Path) -> dict | None:
    """The run's :func:`~lmnet.runs.latent_ood.read_latent_ood`, or None (:func:`_no_latent_note`)."""
    folder = run_folder_of(checkpoint)
    return read_latent_ood(folder) if folder is not None else None


def _no_latent_note(checkpoint: str | Path) -> None:
    """Said once on stderr, after the outputs are written, for a run without the latent reference."""
    print(f"note: {checkpoint} has no {LATENT_OOD_FILE} (trained before it existed, or without a validation "
          f"set): photos were not checked against the training images' latents", file=sys.stderr)


def _latent_notes(model, imgs: np.ndarray, device: str, ood: dict | None) -> list[list[str]]:
    """Per image of ``imgs (B, 3, 128, 128)``: ``[phrase]`` when its μ is farther from the training
    latents than the run's threshold (:func:`~lmnet.runs.latent_ood.latent_warning`), else ``[]``."""
    if ood is None:
        return [[] for _ in imgs]
    with torch.no_grad():
        mu = model.encode_image(torch.from_numpy(imgs).to(device))[0].float().cpu().numpy()
    return [[w] if (w := latent_warning(ood, z)) else [] for z in mu]


def _warn_unlike(path: Path, phrases: Sequence[str]) -> None:
    """One stderr line for an image unlike the training data: ``warning: PATH: phrase; phrase``."""
    if phrases:
        print(f"warning: {path}: {'; '.join(phrases)}; the prediction may be poor", file=sys.stderr)


def reconstruct(images: Sequence[str | Path | np.ndarray], run: str | Path, *, which: str = "best",
                device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """Image files or arrays → predicted point clouds ``float32 (N, 2048, 3)`` in the 3D-LMNet frame,
    in memory (``lmnet.reconstruct``; :func:`predict_images` writes them to disk instead).

    ``images``: paths (any PNG/JPG, :func:`~lmnet.data.photo_mask.photo_input`) and/or arrays ``uint8
    (H, W, 3)`` / ``(H, W, 4)`` (:func:`~lmnet.data.photo_mask.array_input`), prepared in the run's
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
    prepared = np.stack([(array_input(x, f"images[{i}]", bg) if isinstance(x, np.ndarray)
                          else photo_input(x, None, bg))[0] for i, x in enumerate(images)])
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
                  overwrite: bool = False, color: bool = False, color_format: str = "ply") -> Path:
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
        writer = PredictionWriter(out, overwrite, color_format)
        for batch in loader:
            imgs = batch["image"]
            pred, smp = _predict(model, imgs.to(device), samples, gen)
            check_finite(pred, [f"{s}/{m}" for s, m in zip(batch["category"], batch["model_id"])], str(checkpoint))
            for j in range(imgs.shape[0]):
                s, m, v = batch["category"][j], batch["model_id"][j], int(batch["view"][j])
                rgba = _split_rgba(imgs[j], batch["mask"][j]) if color else None
                writer.add(f"{s}/{m}/{v:02d}", imgs[j].numpy(), pred[j], None if smp is None else smp[j],
                           gt=batch["points"][j].numpy(), synset=s, model_id=m, view=v, colours=_colours(pred[j], rgba))
        return writer.close()


__all__ = ["predict_split", "predict_images", "predict_prepared", "reconstruct", "load_predictions"]
