"""Textured meshes from a trained GAN run, as convmesh's ``--save_results`` writes them
(``lmnet generate --run GANRUN --out DIR``; :mod:`lmnet.methods.meshgan`).

Output (``--out DIR``)::

    DIR/mesh_<i>.obj, .mtl, .png   i = 0 … count−1: the generated mesh with the template's UVs and its
                                   texture (T × T); vertices written "Y up" (y and z swapped, faces
                                   re-wound), as the original exports
    DIR/samples.png                the renders in a grid of 8 a row: each mesh at 512² under the
                                   stored pose of a random training image, on white, 2× average-pooled
                                   (16 meshes: 2048 × 512, the original's picture)
    DIR/index.csv                  i, class, pose image (the training image whose pose and class were
                                   used), obj, texture; written last

Conditioning (not the original's defect of always conditioning): a class-conditional run samples
the classes of the drawn training images, or ``class_id`` for all when given; an unconditional run
takes no class (``class_id`` is then an error). Noise is truncated at ``truncation`` (None: the
run's σ). Everything is drawn from ``seed``. ``DIR`` follows :mod:`lmnet.runs.guard`: missing or
empty, or (with ``overwrite``) a previous output of this command, which is cleared first.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lmnet import atomic_io
from lmnet.data import cmr_cache
from lmnet.errors import ConfigError, DataError, NonFiniteError
from lmnet.methods.meshgan.data import PseudoGTDataset
from lmnet.registry import load_model, require_kind
from lmnet.render.template_render import render_template
from lmnet.render.textured import transform_vertices
from lmnet.runs import guard
from lmnet.uvmesh.obj_io import write_textured_obj

__all__ = ["RENDER_SIZE", "PER_ROW", "generate", "render_on_white"]

RENDER_SIZE = 512
PER_ROW = 8
MARKER = ".lmnet-generate"
_OUTPUT = ("index.csv", "samples.png", MARKER)
_MESH_FILE = re.compile(r"^mesh_\d+\.(obj|mtl|png)$|^\.[^/]+\.tmp$")


def render_on_white(template, vertices, texture, poses: dict, size: int = RENDER_SIZE) -> torch.Tensor:
    """``(N, 3, size/2, size/2)`` in [0, 1]: ``vertices (N, V, 3)`` with ``texture (N, 3, T, T)`` in
    [−1, 1] rendered under ``poses`` (``scale (N, 1)``, ``translation (N, 3)``, ``rotation (N, 4)``) at
    ``size``², composited on white with the soft alpha, then 2× average-pooled."""
    v_img = transform_vertices(vertices.float(), poses["scale"].float(), poses["translation"].float(),
                               poses["rotation"].float())
    rgb, alpha, _ = render_template(template, v_img, texture.float(), size)
    picture = ((rgb + 1) / 2) * alpha + (1 - alpha)
    return F.avg_pool2d(picture.clamp(0, 1), 2)


def _grid(pictures: torch.Tensor) -> np.ndarray:
    n, _, h, w = pictures.shape
    rows = -(-n // PER_ROW)
    grid = torch.ones(3, rows * h, min(n, PER_ROW) * w)
    for i, p in enumerate(pictures):
        r, c = divmod(i, PER_ROW)
        grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = p
    return np.rint(grid.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def _prepare_out(out: Path, overwrite: bool) -> None:
    present = guard.entries(out)
    if not present:
        return
    foreign = [n for n in present if MARKER not in present or not (n in _OUTPUT or _MESH_FILE.match(n))]
    if not overwrite or foreign:
        why = (f"holds files lmnet generate did not write ({guard.listing(foreign)})" if MARKER not in present
               or foreign else "is not empty (pass --overwrite to replace the previous samples)")
        raise ConfigError(f"--out {out} {why}")
    (out / "index.csv").unlink(missing_ok=True)
    for name in present:
        if name != MARKER:
            (out / name).unlink(missing_ok=True)


def _classes(model, dataset: PseudoGTDataset, picks: np.ndarray, class_id: int | None):
    cond = model.generator_running_avg.conditioning
    if cond == "none":
        if class_id is not None:
            raise ConfigError("--class: this run's generator is unconditional (conditional='none')")
        return None
    classes = torch.stack([dataset.class_ids[int(i)] for i in picks])
    if class_id is not None:
        n_classes = dataset.num_classes[0]
        if not 0 <= class_id < n_classes:
            raise ConfigError(f"--class must be in 0..{n_classes - 1} for this run, got {class_id}")
        classes[:, 0] = class_id
    return classes


def generate(run, out, *, count: int = 16, class_id: int | None = None, truncation: float | None = None,
             seed: int = 0, which: str = "best", cache_dir=None, data_root=None, device: str = "cpu",
             overwrite: bool = False) -> Path:
    """Write the layout of the module docstring; returns ``DIR/index.csv``."""
    if count < 1:
        raise ConfigError(f"--count must be >= 1, got {count}")
    if truncation is not None and not truncation > 0:
        raise ConfigError(f"--truncation must be > 0, got {truncation}")
    model, config = load_model(run, which=which, device=device)
    require_kind(config, "meshgan", run, "lmnet generate")
    cache = Path(cache_dir or config["cache_dir"])
    dataset = PseudoGTDataset(cache, data_root or config["data_root"], config["dataset"], config["texture_resolution"],
                              config["conditional"], mirror=False)
    poses = cmr_cache.read_poses_metadata(cache / cmr_cache.POSES_FILE)
    rng = np.random.default_rng([seed, 20])
    picks = rng.choice(len(dataset), size=count, replace=count > len(dataset))
    classes = _classes(model, dataset, picks, class_id)
    gen = torch.Generator().manual_seed(int(seed))
    texture, _, vertices = model.sample(count, classes, truncation, gen)
    if not (torch.isfinite(texture).all() and torch.isfinite(vertices).all()):
        raise NonFiniteError(f"{run}: the generator produced NaN or infinite values: are its weights finite?")
    rows_of = [dataset.image_indices[int(i)] for i in picks]
    pose = {k: torch.as_tensor(poses[k])[rows_of] for k in ("scale", "translation", "rotation")}
    pictures = torch.cat([render_on_white(model.template, vertices[i:i + 4].cpu(), texture[i:i + 4].cpu(),
                                          {k: v[i:i + 4] for k, v in pose.items()}) for i in range(0, count, 4)])
    out = guard.require_folder_path(out, "--out")
    with guard.lock_folder(out, "--out", "lmnet generate"):
        _prepare_out(out, overwrite)
        atomic_io.write_text(out / MARKER, "written by lmnet generate\n")
        t = model.template
        rows = []
        for i in range(count):
            obj = write_textured_obj(out / f"mesh_{i}", vertices[i].cpu(), t.faces, t.uvs, t.face_uvs,
                                     texture[i].cpu(), axes="y_up")
            rows.append({"i": i, "class": "" if classes is None else " ".join(map(str, classes[i].tolist())),
                         "pose_image": poses["path"][rows_of[i]], "obj": obj.name, "texture": f"mesh_{i}.png"})
        buf = io.BytesIO()
        Image.fromarray(_grid(pictures)).save(buf, "PNG")
        atomic_io.write_bytes(out / "samples.png", buf.getvalue())
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=("i", "class", "pose_image", "obj", "texture"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_io.write_text(out / "index.csv", text.getvalue())
    return out / "index.csv"
