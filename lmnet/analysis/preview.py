"""A quick look at a dataset on disk: renderings next to their ground-truth clouds."""

from __future__ import annotations

from pathlib import Path

from lmnet.data import layout
from lmnet.data.categories import name_of, to_synsets
from lmnet.errors import DataError
from lmnet.render.grids import compose, to_pil
from lmnet.render.pointclouds import render_cloud


def dataset_preview_grid(dataset_root, n_per_category: int = 4, views=(0,), categories=None,
                         cell: int = 160, n_points: int = 2048, cloud_view="r2n2",
                         color_by="height"):
    """A quick look at a dataset on disk: one row per category, ``(rendering | GT cloud)`` pairs
    for the first ``n_per_category`` models (sorted ids) that have both, for each of ``views``.

    The cloud is drawn from the rendering's own R2N2 camera (``cloud_view="r2n2"``; any
    :func:`~lmnet.render.pointclouds.render_cloud` view works), so shape and pose can be compared
    directly. Renderings are the full 137 px PNGs composited on white.

    Returns:
        an RGB ``PIL.Image`` (``2 * n_per_category * len(views)`` cells wide).
    Raises:
        DataError: the root has no category with renderings and point clouds.
    """
    root = Path(dataset_root)
    views = [int(v) for v in ([views] if isinstance(views, int) else views)]
    bad = [v for v in views if not 0 <= v < layout.N_VIEWS]
    if bad or not views:
        raise ValueError(f"views must be ints in 0..{layout.N_VIEWS - 1}, got {views}")
    wanted = to_synsets(categories)
    synsets = [s for s in layout.list_synsets(root) if wanted is None or s in wanted]
    cells, row_caps, caps = [], [], []
    for s in synsets:
        models = [m for m in layout.list_models(root, s)
                  if layout.pointcloud_path(root, s, m, n_points).is_file()][:int(n_per_category)]
        if not models:
            continue
        line, cap = [], []
        for m in models:
            pts = layout.read_pointcloud(layout.pointcloud_path(root, s, m, n_points), n_points)
            metas = layout.parse_metadata(layout.metadata_path(root, s, m))
            rgba = layout.read_image(layout.image_path(root, s, m, views[0]))  # validates early
            for j, v in enumerate(views):
                if j:
                    rgba = layout.read_image(layout.image_path(root, s, m, v))
                line.append(to_pil(rgba))
                cap.append(f"{m[:14]} · v{v}")
                img = render_cloud(pts, view=cloud_view, meta=metas[v], color_by=color_by,
                                   image_size=cell)
                line.append(to_pil(img[0]))
                cap.append(None)
        cells.append(line)
        caps.append(cap)
        row_caps.append(f"{name_of(s)} ({s})")
    if not cells:
        raise DataError(f"{root}: no category with both renderings and {n_points}-point clouds "
                        f"(categories={categories!r})")
    n = max(len(r) for r in cells)
    titles = ["rendering" if i % 2 == 0 else "GT cloud" for i in range(n)]
    return compose(cells, cell, titles, row_caps, caps)
