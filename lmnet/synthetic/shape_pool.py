"""Extra synthetic shapes for the point autoencoder: point clouds only, no renders.

The autoencoder needs no images, and a point cloud costs milliseconds where 24 renders cost
seconds, so it can learn its shape prior from far more shapes than the image networks have renders
for (measured: studies/results/shape_prior.md). :func:`generate_shape_pool` writes
``<out>/ShapeNet_pointclouds/<synset>/<model_id>/pointcloud_<n>.npy`` for ``n_models`` shapes per
category, drawn exactly like the rendered set's (:func:`lmnet.synthetic.generator.model_pointclouds`)
but at model indices from :data:`POOL_FIRST_INDEX` on, so a pool shape is never one of the models
of a rendered set (whose indices are ``0 .. n_models - 1``), in particular never a test shape.

The pool folder holds no renders: keep it apart from the rendered set's ``data_root`` (the
notebooks use ``<data_root>/ae_shape_pool``, which the data checks do not look into) and give it to
the autoencoder as ``extra_train_root``. Same arguments → byte-identical files; a re-run skips the
clouds already written (each file is written atomically).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from lmnet import atomic_io
from lmnet.data import layout
from lmnet.data.categories import to_synset
from lmnet.errors import ConfigError
from lmnet.synthetic.generator import model_id, model_pointclouds

#: model index of the first pool shape (the rendered sets use 0 .. n_models - 1)
POOL_FIRST_INDEX = 1_000_000


def generate_shape_pool(out_dir: str | Path, categories: Iterable[str] | str, n_models: int, seed: int = 0,
                        sizes: Iterable[int] = (2048,)) -> dict:
    """Write the ``pointcloud_<n>.npy`` files (``n`` in ``sizes``) of ``n_models`` pool shapes per
    category under ``out_dir``. Returns ``{"out_dir", "models": {synset: [model_id, ...]},
    "generated", "seconds"}`` (``generated``: shapes written now, the others were complete)."""
    if isinstance(categories, str):
        categories = [c for c in categories.split(",") if c.strip()]
    sizes = tuple(int(n) for n in sizes)
    bad = [n for n in sizes if n not in layout.POINT_COUNTS]
    if bad or not sizes:
        raise ConfigError(f"shape pool sizes must be among {layout.POINT_COUNTS}, got {list(sizes)}")
    if int(n_models) < 0:
        raise ConfigError(f"shape pool n_models must be >= 0, got {n_models}")
    out_dir, t0 = Path(out_dir), time.perf_counter()
    models: dict[str, list[str]] = {}
    generated = 0
    for synset in (to_synset(c) for c in categories):
        models[synset] = []
        for index in range(POOL_FIRST_INDEX, POOL_FIRST_INDEX + int(n_models)):
            mid = model_id(seed, synset, index)
            models[synset].append(mid)
            paths = {n: layout.pointcloud_path(out_dir, synset, mid, n) for n in sizes}
            if all(p.is_file() for p in paths.values()):
                continue
            clouds = model_pointclouds(synset, seed, index)
            for n, path in paths.items():
                atomic_io.save_npy(path, clouds[n])
            generated += 1
    return {"out_dir": str(out_dir), "models": models, "generated": generated,
            "seconds": time.perf_counter() - t0}
