"""``lmnet build-dataset``: a folder of the user's meshes → a dataset in the ShapeNet layout lmnet
trains on (docs/formats.md, :mod:`lmnet.data.layout`), written by the synthetic generator's writers.

Per model: the mesh read by :func:`lmnet.synthetic.mesh_files.read_mesh` (3D-LMNet frame, centred,
unit bbox diagonal, its own colours), 24 RGBA renders (137×137, transparent background) under
R2N2-like random views (:func:`lmnet.synthetic.generator.sample_views`: azimuth 0–360°, elevation
25–30°, in-plane 0, distance ratio 0.65–0.9, fov 25), ``renderings.txt``,
``rendering_metadata.txt`` and ``pointcloud_{1024,2048,16384}.npy`` sampled area-weighted on the
same surface. Then ``<out>/splits/meshes_{train,val,test}_models.json``
(:func:`lmnet.data.splits.make_splits`) and ``<out>/build_dataset.json``: the settings, the
categories, which file each model came from and which files were skipped.

Determinism: views and points of a model come from
``numpy.random.default_rng([seed, int(synset), hash(model_id), stream])``.

Resumability: each file is written atomically and a model's marker
``<out>/.build_done/<synset>/<model_id>`` (which holds the source file's SHA-256) last; a re-run skips
complete models whose file is unchanged, rebuilds the others, and deletes the models whose file is
gone or went bad, so the tree always mirrors the meshes folder. ``<out>`` must be new, empty or an
earlier build with the same settings (``build_dataset.json``); anything else is refused.

Bad meshes (unreadable, no faces, non-finite or degenerate) are named in one warning line each,
skipped, and listed in the summary.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from lmnet import atomic_io
from lmnet.config import parse_json_object
from lmnet.data import layout
from lmnet.data.splits import DEFAULT_RATIOS, make_splits, write_splits
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.synthetic.generator import (is_complete, map_jobs, marker_path, remove_partial_files, render_views,
                                       sample_pointclouds, sample_views, write_model)
from lmnet.synthetic.mesh_files import UP_AXES, SourceMesh, closed_and_outward, find_meshes, read_mesh

log = logging.getLogger("lmnet.synthetic")

MANIFEST = "build_dataset.json"
MARKER_DIR = ".build_done"
SPLIT_PREFIX = "meshes"
_STREAM_VIEWS, _STREAM_POINTS = 1, 2
#: samples per pixel along each axis. Thin parts seen nearly edge-on (wings, chair legs) are
#: narrower than a pixel; with the synthetic generator's 3, 1.8 % of the pyvista airplane's
#: ground-truth points fell on alpha-0 pixels in its worst view, with 4, 0.8 % (seed 0; the test,
#: seed 3, asserts at most 1 % for every model and view: tests/test_build_dataset.py).
RENDER_SUPERSAMPLE = 4
_SETTINGS = ("tool", "meshes", "category", "up", "seed")


def _rng(seed: int, src: SourceMesh, stream: int) -> np.random.Generator:
    model = int(hashlib.blake2b(src.model_id.encode(), digest_size=8).hexdigest(), 16)
    return np.random.default_rng([seed, int(src.synset), model, stream])


def claim_root(out_dir: Path, settings: dict) -> None:
    """Make ``out_dir`` this build's: a new or empty folder gets the manifest; an earlier build
    with the same ``settings`` is resumed; anything else raises :class:`DataError`."""
    manifest = out_dir / MANIFEST
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir} is a file, not a folder")
    if manifest.is_file():
        recorded = parse_json_object(manifest.read_text(), f"{manifest}", DataError)
        other = [k for k in _SETTINGS if recorded.get(k) != settings[k]]
        if other:
            was = ", ".join(f"{k}={recorded.get(k)!r} (now {settings[k]!r})" for k in other)
            raise DataError(f"{out_dir} holds a build-dataset run with other settings: {was}; "
                            "use another --out, or the same settings to resume it")
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise DataError(f"--out {out_dir} is not empty and was not written by lmnet build-dataset (no {MANIFEST}): "
                        "choose a new or empty folder, so the dataset is not mixed with other files")
    atomic_io.write_json(manifest, settings)


def _stamp(src: SourceMesh, up: str) -> str:
    """The marker's text: which file (and which bytes of it) the model was built from."""
    digest = hashlib.sha256(src.path.read_bytes()).hexdigest()
    return f"{src.rel}\nsha256 {digest}\nup {up}\n"


def build_model(out_dir: Path, src: SourceMesh, up: str, seed: int) -> bool:
    """Write one model (skipped when complete and built from the same file). Returns whether it was
    written. Raises :class:`CorruptFileError` for a bad mesh, before anything is written."""
    marker = marker_path(out_dir, src.synset, src.model_id, MARKER_DIR)
    stamp = _stamp(src, up)
    if is_complete(out_dir, src.synset, src.model_id, MARKER_DIR) and marker.read_text() == stamp:
        return False
    vertices, faces, colors = read_mesh(src.path, up)
    marker.unlink(missing_ok=True)  # a rebuild killed half-way must not look complete
    remove_partial_files(out_dir, src.synset, src.model_id)
    views = sample_views(_rng(seed, src, _STREAM_VIEWS))
    # user meshes need not be closed or consistently oriented: both sides of every face are drawn
    # unless the surface is closed and outward-oriented (then back faces are hidden: half the work)
    images = render_views(vertices, faces, views, colors, cull_backfaces=closed_and_outward(vertices, faces),
                          supersample=RENDER_SUPERSAMPLE)
    clouds = sample_pointclouds(vertices, faces, _rng(seed, src, _STREAM_POINTS))
    write_model(out_dir, src.synset, src.model_id, images, views, clouds, marker, stamp)
    return True


def _build_job(job: tuple) -> tuple[SourceMesh, str, str | None]:
    """One model for :func:`map_jobs` → ``(src, "built" | "reused" | "bad", "<file>: <reason>" | None)``;
    a bad mesh is logged (one line) where it is met."""
    out_dir, src, up, seed = job
    try:
        return src, "built" if build_model(Path(out_dir), src, up, seed) else "reused", None
    except CorruptFileError as exc:
        log.warning("skipped %s", exc)
        return src, "bad", str(exc)


def _build_all(out_dir: Path, sources: list[SourceMesh], up: str, seed: int, workers: int | None, progress: bool):
    """Build every source → ``(built, reused, bad)``: the sources written, those already complete,
    and ``["<file>: <reason>", ...]`` for the bad meshes, each in the sources' order."""
    jobs = [(str(out_dir), src, up, seed) for src in sources]
    done = {r[0].rel: r for r in map_jobs(_build_job, jobs, workers, progress, desc="build-dataset", unit="mesh")}
    results = [done[src.rel] for src in sources]
    return ([src for src, status, _ in results if status == "built"],
            [src for src, status, _ in results if status == "reused"],
            [message for _, status, message in results if status == "bad"])


def remove_stale_models(out_dir: Path, keep: set[str]) -> list[str]:
    """Delete the models under ``out_dir`` (both trees and the marker) whose ``"synset/model"`` key is
    not in ``keep``: their file was removed from the meshes folder, went bad, or a killed run left
    them half-written. Only for a folder :func:`claim_root` made this build's. Returns their keys."""
    stale = set()
    for base in (out_dir / layout.RENDERING_DIR, out_dir / layout.POINTCLOUD_DIR, out_dir / MARKER_DIR):
        for d in sorted(base.glob("*/*")) if base.is_dir() else []:
            if f"{d.parent.name}/{d.name}" not in keep:
                stale.add(f"{d.parent.name}/{d.name}")
                if d.is_dir():
                    shutil.rmtree(d)
                else:
                    d.unlink()
    return sorted(stale)


def build_dataset(meshes_dir: str | Path, out_dir: str | Path, category: str | None = None, up: str = "y",
                  seed: int = 0, ratios=DEFAULT_RATIOS, workers: int | None = 1, progress: bool = True) -> dict:
    """Build the dataset of every mesh under ``meshes_dir`` into ``out_dir`` (module docs; the
    folder → category rule is :mod:`lmnet.synthetic.mesh_files`'s). ``workers``: processes
    (``None`` → the number of CPUs; the files do not depend on it).

    Returns:
        ``{"out_dir", "models": {synset: [model_id, ...]}, "categories": {synset: name}, "built",
        "reused", "bad": ["<file>: <reason>", ...], "removed": [stale "synset/model", ...], "seconds",
        "splits": {name: path}}``.
    Raises:
        DataError: no mesh files, no usable mesh, or an ``out_dir`` that is not this build's.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if up not in UP_AXES:
        raise ConfigError(f"up must be one of {UP_AXES}, got {up!r}")
    make_splits({}, ratios=ratios, seed=int(seed))  # checks ratios and seed before any work
    sources = find_meshes(meshes_dir, category)
    settings = {"tool": "lmnet build-dataset", "meshes": str(Path(meshes_dir).resolve()), "category": category,
                "up": up, "seed": int(seed)}
    claim_root(out_dir, settings)
    built, reused, bad = _build_all(out_dir, sources, up, int(seed), workers, progress)
    good = built + reused
    if not good:
        raise DataError(f"{meshes_dir}: none of the {len(sources)} mesh files is usable: " + "; ".join(bad[:5]))
    removed = remove_stale_models(out_dir, {f"{src.synset}/{src.model_id}" for src in good})
    models: dict[str, list[str]] = {}
    for src in good:
        models.setdefault(src.synset, []).append(src.model_id)
    models = {s: sorted(m) for s, m in sorted(models.items())}
    paths = write_splits(out_dir / "splits", make_splits(models, ratios=ratios, seed=int(seed)), prefix=SPLIT_PREFIX)
    categories = {src.synset: src.category for src in good}
    atomic_io.write_json(out_dir / MANIFEST, {
        **settings, "categories": dict(sorted(categories.items())),
        "models": {f"{s.synset}/{s.model_id}": s.rel for s in good}, "skipped": bad})
    return {"out_dir": str(out_dir), "models": models, "categories": categories, "built": len(built),
            "reused": len(reused), "bad": bad, "removed": removed, "seconds": time.perf_counter() - t0,
            "splits": {k: str(v) for k, v in paths.items()}}
