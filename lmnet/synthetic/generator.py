"""Write a synthetic dataset in the exact ShapeNet on-disk format (docs/formats.md, :mod:`lmnet.data.layout`).

Per model: 24 RGBA renders (137×137, transparent background) with R2N2-like random views,
``renderings.txt``, ``rendering_metadata.txt`` and ``pointcloud_{1024,2048,16384}.npy`` sampled
uniformly on the same (normalised, 3D-LMNet-frame) mesh that was rendered. With ``colors``, each part
has its own colour (:mod:`lmnet.synthetic.part_colours`) in the renders, which are unlit (:data:`UNLIT`), and
``pointcloud_{n}_colors.npy`` (``uint8 (n, 3)``) holds each point's colour. Plus seeded 60/20/20
split files ``<out>/splits/synthetic_{train,val,test}_models.json``.

Determinism: everything about model ``index`` of ``category`` derives from
``numpy.random.default_rng([seed, synset, index, stream])`` and rendering runs single-threaded, so
the same arguments give byte-identical files whatever the number of workers.

Resumability: each file is written atomically, and a model's completion marker
``<out>/.synth_done/<synset>/<model_id>`` is written last; a re-run skips marked models.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lmnet import atomic_io
from lmnet.camera import LMNET_FROM_V1, R2N2_IMAGE_SIZE
from lmnet.data import layout
from lmnet.data.categories import name_of, to_synset
from lmnet.data.meshes import normalize_unit_diagonal, sample_surface
from lmnet.data.splits import DEFAULT_RATIOS, check_ratios, make_splits, write_splits
from lmnet.errors import ConfigError
from lmnet.render import render_mesh
from lmnet.render.shading import DEFAULT_LIGHTS, Lights
from lmnet.synthetic.part_colours import part_face_colours, point_colours
from lmnet.synthetic.shapes import BUILDERS

DEFAULT_CATEGORIES = ("chair", "table", "airplane", "car", "lamp")
MARKER_DIR = ".synth_done"
SPLIT_PREFIX = "synthetic"
# R2N2-like view ranges (degrees / ratio)
AZIMUTH_RANGE = (0.0, 360.0)
ELEVATION_RANGE = (25.0, 30.0)
DISTANCE_RATIO_RANGE = (0.65, 0.9)
FOV = 25.0

#: ``colors=True`` renders are unlit (ambient light only): a pixel shows its part's colour exactly,
#: so the colour of a point seen in the image can be checked against the point's stored colour
UNLIT = Lights(ambient=1.0, key=0.0, fill=0.0)
_STREAM_SHAPE, _STREAM_VIEWS, _STREAM_POINTS, _STREAM_COLOURS = 0, 1, 2, 3


def model_id(seed: int, synset: str, index: int) -> str:
    """ShapeNet-looking id: 32 hex characters, a hash of ``(seed, synset, index)``."""
    return hashlib.blake2b(f"lmnet-synth/{seed}/{synset}/{index}".encode(), digest_size=16).hexdigest()


def _rng(seed: int, synset: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(synset), index, stream])


def build_mesh(category: str, seed: int, index: int, colors: bool = False):
    """The normalised mesh of one model in the 3D-LMNet frame (+x down, front +z, unit bbox
    diagonal, bbox centred at the origin): ``vertices (V, 3), faces (F, 3), face_colors (F, 3)``;
    with ``colors`` the face colours are per part (:func:`~lmnet.synthetic.part_colours.part_face_colours`)."""
    synset = to_synset(category)
    name = name_of(synset)
    if name not in BUILDERS:
        raise ConfigError(f"no synthetic shape for category {category!r}; available: {', '.join(BUILDERS)}")
    v, f, c = BUILDERS[name](_rng(seed, synset, index, _STREAM_SHAPE))
    if colors:
        c = part_face_colours(v, f, _rng(seed, synset, index, _STREAM_COLOURS))

    v = normalize_unit_diagonal(v) @ LMNET_FROM_V1.numpy().astype(np.float64)
    return v, f, c


def model_pointclouds(category: str, seed: int, index: int, mesh=None) -> dict[int, np.ndarray]:
    """The ``pointcloud_{1024,2048,16384}.npy`` arrays of one model, ``{n: (n, 3) float32}``, exactly
    as :func:`generate_model` writes them, without rendering anything. ``mesh``: the
    ``(vertices, faces)`` of :func:`build_mesh` when the caller already has them."""
    return {n: pts for n, (pts, _) in _sampled_clouds(category, seed, index, mesh).items()}


def _sampled_clouds(category: str, seed: int, index: int, mesh=None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{n: (points (n, 3) float32, face index (n,))}``: the clouds of :func:`model_pointclouds`."""
    synset = to_synset(category)
    verts, faces = mesh if mesh is not None else build_mesh(synset, seed, index)[:2]
    return sample_pointclouds(verts, faces, _rng(seed, synset, index, _STREAM_POINTS), return_faces=True)


def model_point_colours(category: str, seed: int, index: int) -> dict[int, np.ndarray]:
    """``{n: uint8 (n, 3)}``: the colour of each point of :func:`model_pointclouds` on the per-part
    coloured mesh (``colors=True``), exactly as ``pointcloud_{n}_colors.npy`` stores it."""
    verts, faces, face_colours = build_mesh(category, seed, index, colors=True)
    clouds = _sampled_clouds(category, seed, index, mesh=(verts, faces))
    return {n: point_colours(face_colours, face) for n, (_, face) in clouds.items()}


def sample_pointclouds(vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator,
                       return_faces: bool = False) -> dict:
    """``{n: (n, 3) float32}`` for every size of ``layout.POINT_COUNTS``, drawn one after the other
    from ``rng`` on the surface of ``vertices (V, 3)`` / ``faces (F, 3)`` (area-weighted,
    :func:`lmnet.data.meshes.sample_surface`); ``return_faces``: ``{n: (points, face index (n,))}``."""
    out = {}
    for n in layout.POINT_COUNTS:
        pts, face = sample_surface(vertices, faces, n, rng, return_faces=True)
        out[n] = (pts.astype(np.float32), face) if return_faces else pts.astype(np.float32)
    return out


def sample_views(rng: np.random.Generator, n_views: int = layout.N_VIEWS) -> list[layout.ViewMeta]:
    """R2N2-like random views, rounded exactly as ``rendering_metadata.txt`` stores them."""
    az = rng.uniform(*AZIMUTH_RANGE, n_views)
    el = rng.uniform(*ELEVATION_RANGE, n_views)
    dr = rng.uniform(*DISTANCE_RATIO_RANGE, n_views)
    metas = []
    for a, e, d in zip(az, el, dr):
        line = layout.format_metadata_line(layout.ViewMeta(float(a), float(e), 0.0, float(d), FOV))
        metas.append(layout.ViewMeta(*(float(x) for x in line.split())))
    return metas


def marker_path(out_dir: Path, synset: str, mid: str, marker_dir: str = MARKER_DIR) -> Path:
    """The completion marker of a model: ``<out_dir>/<marker_dir>/<synset>/<model_id>``."""
    return Path(out_dir) / marker_dir / synset / mid


def is_complete(out_dir: Path, synset: str, mid: str, marker_dir: str = MARKER_DIR, colors: bool = False) -> bool:
    """Whether the model's marker and all of its files exist (``colors``: the points' colour files too)."""
    if not marker_path(out_dir, synset, mid, marker_dir).is_file():
        return False
    files = [layout.metadata_path(out_dir, synset, mid),
             layout.rendering_dir(out_dir, synset, mid) / "renderings.txt"]
    files += [layout.image_path(out_dir, synset, mid, i) for i in range(layout.N_VIEWS)]
    files += [layout.pointcloud_path(out_dir, synset, mid, n) for n in layout.POINT_COUNTS]
    if colors:
        files += [layout.pointcloud_colours_path(out_dir, synset, mid, n) for n in layout.POINT_COUNTS]
    return all(p.is_file() for p in files)


def _write_png(path: Path, rgba: np.ndarray) -> None:
    from PIL import Image

    with atomic_io.atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(rgba, "RGBA").save(tmp, format="PNG", compress_level=6)


def remove_partial_files(out_dir: Path, synset: str, mid: str) -> None:
    """Drop the temporary files of atomic writes that a killed run left in a model's folders."""
    for d in (layout.rendering_dir(out_dir, synset, mid), layout.pointcloud_path(out_dir, synset, mid, 1024).parent):
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                tmp.unlink()


def render_views(vertices: np.ndarray, faces: np.ndarray, views: list[layout.ViewMeta], colors,
                 cull_backfaces: bool, supersample: int = 3, lights: Lights = DEFAULT_LIGHTS) -> np.ndarray:
    """The R2N2 renders of one mesh (3D-LMNet frame) under ``views`` → ``uint8 (K, 137, 137, 4)``,
    transparent background. ``colors``: ``(3,)``, ``(F, 3)`` or per-corner ``(F, 3, 3)`` in [0, 1]
    (:func:`lmnet.render.render_mesh`); ``supersample``: samples per pixel along each axis (alpha is
    the covered fraction). Single-threaded, so the bytes do not depend on the worker
    count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return render_mesh(
            torch.from_numpy(vertices).float(), torch.from_numpy(faces),
            torch.tensor([m.azimuth for m in views]), torch.tensor([m.elevation for m in views]),
            torch.tensor([m.distance_ratio for m in views]), torch.tensor([m.fov for m in views]),
            image_size=R2N2_IMAGE_SIZE, color=torch.as_tensor(np.asarray(colors)).float(),
            cull_backfaces=cull_backfaces, supersample=supersample, lights=lights,
        ).numpy()
    finally:
        torch.set_num_threads(threads)


def write_model(out_dir: Path, synset: str, mid: str, images: np.ndarray, views: list[layout.ViewMeta],
                clouds: dict[int, np.ndarray], marker: Path, marker_text: str) -> None:
    """Write one model's files, each atomically: point clouds, PNGs, ``renderings.txt``,
    ``rendering_metadata.txt``, then the completion ``marker`` (last, so a killed run never leaves a
    model marked complete with files missing)."""
    for n, pts in clouds.items():
        atomic_io.save_npy(layout.pointcloud_path(out_dir, synset, mid, n), pts)
    for i, img in enumerate(images):
        _write_png(layout.image_path(out_dir, synset, mid, i), img)
    rdir = layout.rendering_dir(out_dir, synset, mid)
    atomic_io.write_text(rdir / "renderings.txt", "".join(f"{i:02d}.png\n" for i in range(len(images))))
    atomic_io.write_text(layout.metadata_path(out_dir, synset, mid),
                         "".join(layout.format_metadata_line(m) + "\n" for m in views))
    atomic_io.write_text(marker, marker_text)


def generate_model(out_dir: str | Path, category: str, index: int, seed: int = 0,
                   colors: bool = False) -> tuple[str, str, bool]:
    """Write one model (skipped if already complete; ``colors``: per-part colours and the points'
    colour files). Returns ``(synset, model_id, generated)``."""
    out_dir = Path(out_dir)
    synset = to_synset(category)
    mid = model_id(seed, synset, index)
    if is_complete(out_dir, synset, mid, colors=colors):
        return synset, mid, False
    remove_partial_files(out_dir, synset, mid)
    verts, faces, face_colours = build_mesh(synset, seed, index, colors)
    views = sample_views(_rng(seed, synset, index, _STREAM_VIEWS))
    # every part is closed and outward-oriented (tested), so back faces can be culled
    images = render_views(verts, faces, views, face_colours, cull_backfaces=True,
                          lights=UNLIT if colors else DEFAULT_LIGHTS)
    clouds = _sampled_clouds(synset, seed, index, mesh=(verts, faces))
    if colors:  # before write_model, whose completion marker comes last
        for n, (_, face) in clouds.items():
            atomic_io.save_npy(layout.pointcloud_colours_path(out_dir, synset, mid, n), point_colours(face_colours, face))
    write_model(out_dir, synset, mid, images, views, {n: pts for n, (pts, _) in clouds.items()},
                marker_path(out_dir, synset, mid), f"{category} {index} {seed}\n")
    return synset, mid, True


def _job(args):
    return generate_model(*args)


def _worker_init():
    import torch

    torch.set_num_threads(1)


def map_jobs(fn, jobs: list, workers: int | None, progress: bool, desc: str, unit: str) -> list:
    """``[fn(job) for job in jobs]``, in completion order, in this process (``workers`` 1) or in a
    pool of ``workers`` processes (``None`` → the number of CPUs), each single-threaded in torch, with
    a tqdm bar when ``progress``. ``fn`` must be a module-level function (it is pickled)."""
    from tqdm import tqdm

    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    workers = max(1, min(workers, len(jobs)))
    results = []
    with tqdm(total=len(jobs), unit=unit, desc=desc, disable=not progress) as bar:
        if workers == 1:
            for job in jobs:
                results.append(fn(job))
                bar.update(1)
            return results
        import multiprocessing as mp

        # fork (Linux) needs no `if __name__ == "__main__"` guard in the caller's script, and
        # is what torch's DataLoader uses; spawn elsewhere
        method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform.startswith("linux") else "spawn"
        with mp.get_context(method).Pool(workers, initializer=_worker_init) as pool:
            for res in pool.imap_unordered(fn, jobs, chunksize=1):
                results.append(res)
                bar.update(1)
    return results


def generate_dataset(out_dir: str | Path, categories: Iterable[str] | str = DEFAULT_CATEGORIES,
                     n_models: int = 40, seed: int = 0, workers: int | None = None,
                     progress: bool = True, colors: bool = False,
                     ratios: Sequence[float] = DEFAULT_RATIOS) -> dict:
    """Generate ``n_models`` per category under ``out_dir`` (resumable) and write split files.

    Args:
        categories: names or synset ids (a list or a comma-separated string).
        n_models: models per category.
        workers: processes (``None`` → number of CPUs; ``1`` → in this process).
        colors: per-part colours in the renders and ``pointcloud_{n}_colors.npy`` (module docs).
        ratios: train/val/test proportions of each category's models
            (:func:`lmnet.data.splits.make_splits`; the split files are rewritten on every call).
    Returns:
        ``{"out_dir", "models": {synset: [model_id, ...]}, "generated", "skipped", "seconds",
        "splits": {"train"|"val"|"test": path}}``.
    """

    if isinstance(categories, str):
        categories = [c for c in categories.split(",") if c.strip()]
    synsets = [to_synset(c) for c in categories]
    if not synsets:
        raise ConfigError("categories: expected at least one category")
    for s in synsets:
        if name_of(s) not in BUILDERS:
            raise ConfigError(f"no synthetic shape for category {name_of(s)!r} ({s}); "
                              f"available: {', '.join(BUILDERS)}")
    if int(n_models) < 1:
        raise ConfigError(f"n_models must be >= 1, got {n_models}")
    ratios = check_ratios(ratios)  # before any work
    out_dir = Path(out_dir)
    jobs = [(str(out_dir), s, i, int(seed), bool(colors)) for s in synsets for i in range(int(n_models))]
    t0 = time.perf_counter()
    results = map_jobs(_job, jobs, workers, progress, desc="synth", unit="model")
    models: dict[str, list[str]] = {s: [] for s in synsets}
    for synset, mid, _ in results:
        models[synset].append(mid)
    models = {s: sorted(m) for s, m in models.items()}
    splits = make_splits(models, ratios=ratios, seed=int(seed))
    paths = write_splits(out_dir / "splits", splits, prefix=SPLIT_PREFIX)
    generated = sum(1 for r in results if r[2])
    return {
        "out_dir": str(out_dir),
        "models": models,
        "generated": generated,
        "skipped": len(results) - generated,
        "seconds": time.perf_counter() - t0,
        "splits": {k: str(v) for k, v in paths.items()},
    }
