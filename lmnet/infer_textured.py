"""Photographs → textured meshes with a trained mesh-estimation run (``lmnet infer --checkpoint
MESHRECON_RUN --images bird.jpg --out DIR``; :mod:`lmnet.methods.meshrecon`).

Each photograph becomes the network's input as a CUB / Pascal3D+ item would
(:func:`lmnet.data.photo_mask.object_crop`: the object's mask from ``--masks``, the photo's alpha
channel, or an automatic estimate; the square box around it with 5 % padding; RGB·mask and mask).

Output layout (``--out DIR``; ``<id>`` is a running 6-digit number in input order)::

    DIR/index.csv               id, source, mask, obj, texture, render, input (names relative to DIR)
    DIR/<id>.obj, <id>.mtl      the mesh in the template's object frame (+y up, mirror plane x = 0),
                                with the template's UVs (lmnet.uvmesh.obj_io)
    DIR/<id>.png                its texture (T × T, the network's texture resolution)
    DIR/<id>.render.png         a three-quarter picture of the textured mesh on white
    DIR/<id>.input.png          the network's input crop (RGB on black outside the mask)
    DIR/<id>.turntable.gif      with ``gif=True``: a turntable of the textured mesh

Nothing is half-written: every photograph (and mask) is read and its object found **before** the
model loads and anything is written, so a photo without a detectable object, a non-image or a
truncated file stops the command with one line and an untouched ``DIR``. The folder follows the
rules of :mod:`lmnet.runs.predictions` (never mixed with earlier outputs; ``index.csv`` last).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from lmnet import atomic_io
from lmnet.data.photo_mask import object_crop, read_photo_rgba
from lmnet.errors import ConfigError, DataError, NonFiniteError
from lmnet.methods.meshrecon.data import open_split
from lmnet.methods.meshrecon.pseudogt import generate_pseudogt
from lmnet.methods.meshrecon.trainer import network_input
from lmnet.registry import load_model, require_kind
from lmnet.render.textured_views import render_textured_mesh, to_uint8, view_rotations, write_gif
from lmnet.runs import guard
from lmnet.runs.folder import CONFIG_FILE, load_checkpoint, read_run_config
from lmnet.runs.predictions import INDEX_FILE, prepare_out
from lmnet.uvmesh.obj_io import write_textured_obj

__all__ = ["run_kind", "read_inputs", "predict_textured", "reconstruct_textured", "pseudogt_from_run"]

INDEX_FIELDS = ("id", "source", "mask", "obj", "texture", "render", "input")
RENDER_SIZE = 384
GIF_FRAMES = 36


def run_kind(run: str | Path) -> str | None:
    """The method that wrote ``run`` (a run folder's ``config.json`` ``kind``, or a ``.pt``'s), None
    when it cannot be told (then the caller's own loading reports what is wrong)."""
    run = Path(run)
    if run.is_dir() and (run / CONFIG_FILE).is_file():
        return read_run_config(run).get("kind")
    if run.is_file():
        return load_checkpoint(run).get("kind")
    return None


def read_inputs(images: Sequence[str | Path], masks: Sequence[str | Path] | None, size: int,
                background: str = "auto"):
    """Every photograph's network input, read before anything else happens: ``(B, 4, S, S)`` float32
    (RGB·mask in [−1, 1], mask). ``masks``: None or one mask file per photograph; ``background``:
    how an opaque photo's mask is found (:func:`lmnet.data.photo_mask.foreground`)."""
    if not images:
        raise DataError("no input images given")
    if masks is not None and len(masks) != len(images):
        raise ConfigError(f"--masks gives {len(masks)} file(s) for {len(images)} image(s): give one mask per image")
    inputs = []
    for i, path in enumerate(images):
        rgb, mask = read_photo_rgba(path, None if masks is None else masks[i], background)
        image, m = object_crop(rgb, mask, size)
        inputs.append(np.concatenate([image, m]))
    return torch.from_numpy(np.stack(inputs))


def _load(run, which: str, device: str):
    model, config = load_model(run, which=which, device=device)
    require_kind(config, "meshrecon", run, "textured-mesh inference")
    return model, config


@torch.no_grad()
def _meshes(model, inputs: torch.Tensor, names: Sequence[str], run, device: str):
    """One mesh dict per row of ``inputs (B, 4, S, S)`` (:func:`reconstruct_textured`'s layout)."""
    t = model.template
    for i, name in enumerate(names):
        texture, displacement, vertices = (a[0].float().cpu() for a in model.predict(inputs[i:i + 1].to(device)))
        if not (torch.isfinite(texture).all() and torch.isfinite(vertices).all()):
            raise NonFiniteError(f"{run} predicted NaN or infinite values for {name}: are its weights finite?")
        yield {"vertices": vertices.numpy(), "faces": t.faces, "uvs": t.uvs, "face_uvs": t.face_uvs,
               "texture": texture.numpy(), "displacement": displacement.numpy(), "input": inputs[i].numpy()}


def reconstruct_textured(images, run, *, masks=None, which: str = "best", device: str = "cpu") -> list[dict]:
    """Photographs → textured meshes in memory: one ``{"vertices" (V, 3), "faces" (F, 3), "uvs" (T, 2),
    "face_uvs" (F, 3), "texture" (3, T, T) in [−1, 1], "displacement" (3, 32, 32), "input" (4, S, S)}``
    (NumPy) per photograph; ``run`` a meshrecon run folder or ``.pt`` (``which``: best / last)."""
    images = [images] if isinstance(images, (str, Path)) else list(images)
    model, _ = _load(run, which, device)
    inputs = read_inputs(images, masks, model.generator.image_size)
    return list(_meshes(model, inputs, [str(p) for p in images], run, device))


def _write_png(path: Path, rgb01: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(rgb01 * 255), 0, 255).astype(np.uint8), "RGB").save(buf, "PNG")
    atomic_io.write_bytes(path, buf.getvalue())


def _write_one(out: Path, ident: str, mesh: dict, gif: bool) -> dict:
    obj = write_textured_obj(out / ident, mesh["vertices"], mesh["faces"], mesh["uvs"], mesh["face_uvs"], mesh["texture"])
    texture01 = (mesh["texture"] + 1) / 2
    args = (mesh["vertices"], mesh["faces"], mesh["uvs"], mesh["face_uvs"], texture01)
    render = render_textured_mesh(*args, view_rotations(1, 20.0, 30.0), RENDER_SIZE)[0].numpy()
    _write_png(out / f"{ident}.render.png", render)
    _write_png(out / f"{ident}.input.png", ((mesh["input"][:3] + 1) / 2 * mesh["input"][3:]).transpose(1, 2, 0))
    if gif:
        frames = render_textured_mesh(*args, view_rotations(GIF_FRAMES, 20.0), RENDER_SIZE // 2)
        write_gif(to_uint8(frames), out / f"{ident}.turntable.gif")
    return {"obj": obj.name, "texture": f"{ident}.png", "render": f"{ident}.render.png", "input": f"{ident}.input.png"}


def predict_textured(run, images: Sequence[str | Path], out: str | Path, *, masks=None, which: str = "best",
                     device: str = "cpu", gif: bool = False, overwrite: bool = False, background: str = "auto") -> Path:
    """Write the layout of the module docstring for ``images``; returns ``DIR/index.csv``
    (``background``: :func:`read_inputs`)."""
    images = [Path(p) for p in images]
    model, _ = _load(run, which, device)   # a wrong run is refused before any photograph is read
    inputs = read_inputs(images, masks, model.generator.image_size, background)
    with guard.lock_folder(out, "--out", "lmnet infer"):
        out = prepare_out(out, overwrite)
        rows = []
        for i, mesh in enumerate(_meshes(model, inputs, [str(p) for p in images], run, device)):
            ident = f"{i:06d}"
            rows.append({"id": ident, "source": str(images[i]), "mask": "" if masks is None else str(masks[i]),
                         **_write_one(out, ident, mesh, gif)})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        index = out / INDEX_FILE
        atomic_io.write_text(index, buf.getvalue())
        (out / ".lmnet-infer-partial").unlink(missing_ok=True)
        return index


def pseudogt_from_run(run, out: str | Path, *, which: str = "best", data_root=None, split=None, resolution: int = 512,
                      render_size: int = 1024, image_size: int = 299, batch_size: int = 8, device: str = "cpu",
                      progress: bool = True) -> dict:
    """convmesh's pseudo-ground-truth of a meshrecon run's training images (or ``split`` of
    ``data_root``) into ``out`` (:func:`lmnet.methods.meshrecon.pseudogt.generate_pseudogt`): the run's
    network predicts, its learned pose offsets of each image are applied (the mean offset for a split
    it was not trained on), and the stored poses are the dataset's. Returns its summary."""
    model, config = _load(run, which, device)
    cfg = {**config, "data_root": data_root or config["data_root"], "render_size": config["image_size"]}
    split = split or config["train_split"]
    dataset = open_split(cfg, split, extra_sizes=(image_size, render_size))
    own = split == config["train_split"] and dataset.num_images == model.dataset_params.num_images

    @torch.no_grad()
    def predict(batch: dict):
        x = network_input(batch).to(device)
        texture, displacement, vertices = model.predict(x)
        pose = [batch[k].to(device) for k in ("scale", "translation", "rotation")]
        vertices_img = model.pose(vertices, *pose, batch["index"].to(device) if own else None)
        return texture.float(), displacement.float(), vertices_img

    return generate_pseudogt(predict, dataset, out, template=model.template, resolution=resolution,
                             render_size=render_size, image_size=image_size, batch_size=batch_size,
                             progress=progress, source=str(Path(run).resolve()))
