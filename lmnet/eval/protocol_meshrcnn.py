"""Mesh R-CNN's ShapeNet protocols (docs/evaluation.md#the-mesh-r-cnn-protocols): ``meshrcnn`` (its
scale-normalised protocol, Table 2 of the paper) and ``p2m`` (its Pixel2Mesh protocol, Table 1).

Ported from ``facebookresearch/meshrcnn``: ``meshrcnn/utils/metrics.py`` (``compare_meshes``,
``_scale_meshes``, ``_compute_sampling_metrics``), ``shapenet/evaluation/eval.py``
(``evaluate_test``: ``compare_meshes(pred, gt)`` with the defaults; ``evaluate_test_p2m``:
``scale=0.57, thresholds=[0.01, 0.014142]``), ``shapenet/data/mesh_vox.py`` (the GT moved by the
view's extrinsics ``RT``), ``tools/preprocess_shapenet.py`` (``RT`` from ``rendering_metadata.txt``)
and ``shapenet/utils/coords.py`` (``compute_extrinsic_matrix``, ``project_verts``). Steps, for a
prediction ``pred (N, 3)`` and its ground truth ``gt (M, 3)`` of one R2N2 view:

1. **Camera frame**: both clouds move into the view's R2N2 camera frame, ``x_cam = p @ Rᵀ + t``
   (:func:`lmnet.camera.r2n2_extrinsics` from the view's azimuth, elevation and distance ratio in
   ``rendering_metadata.txt``; Mesh R-CNN's ``RT`` on ShapeNet v1 coordinates is the same map).
   The runner does this in the parent process (:mod:`lmnet.eval.camera_frame`); the functions
   here take clouds already in that frame.
2. **Scale**, both clouds by the same factor. ``meshrcnn`` (``scale="gt-10"``): ``10 / L`` with
   ``L`` the longest edge of the GT's axis-aligned bounding box in the camera frame (per pair), so
   the GT's longest edge becomes 10; no centring (positions are multiplied). ``p2m``: ``0.57``.
3. **Nearest neighbours** both ways (exact), squared Euclidean distances ``d²``.
4. **Chamfer-L2** = mean over prediction points of ``d²`` to the GT + mean over GT points of
   ``d²`` to the prediction: a sum of two means of *squared* distances.
5. **F1@τ**: precision = 100 · fraction of prediction points with Euclidean NN distance ``< τ``
   to the GT, recall = the same from the GT, ``F1 = 2PR / (P + R + 1e-8)``. ``meshrcnn``: τ = 0.1,
   0.3, 0.5 (the thresholds its table prints). ``p2m``: τ = 0.01 and 0.014142 on Euclidean
   distances, i.e. Pixel2Mesh's 1e-4 and 2e-4 on squared distances (0.014142² = 1.99996e-4, as in
   the code).
6. Per category: the mean over its pairs; the class mean is the unweighted mean of the category
   means (``print_instances_class_histogram``'s "total" row).

Records keep Mesh R-CNN's values: ``chamfer_l2`` raw; F1 as a fraction (Mesh R-CNN's percent / 100,
so the ×100 tables print percent as its tables do). ``p2m`` also records ``chamfer_l2_x10``
(10 × ``chamfer_l2``), whose ×100 table is Chamfer-L2 ×1000.

**Differences from Mesh R-CNN** (it compares meshes): it samples 10,000 points on each mesh
surface and takes the bounding box of the GT mesh's vertices; lmnet compares the clouds as they
are (the prediction's points, the GT's 1024 points: its ``num_samples="verts"`` path) and takes the
bounding box of the GT points. Chamfer-L2 and F1 depend on the point density, so the numbers follow
Mesh R-CNN's computation but are not those of its tables; no normal consistency (clouds have no
normals). The lmnet clouds have ShapeNet v1's scale (centred, unit bounding-box diagonal), so
``p2m``'s 0.57 applies to them as to Mesh R-CNN's GT meshes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lmnet.errors import ConfigError
from lmnet.eval.protocol import _check_cloud
from lmnet.losses.chamfer_numpy import nn_distances

F1_EPS = 1e-8                                      #: compare_meshes' eps
MESHRCNN_THRESHOLDS = (0.1, 0.3, 0.5)              #: evaluate_test's F1 columns
P2M_THRESHOLDS = (0.01, 0.014142)                  #: evaluate_test_p2m's thresholds (√1e-4, ≈√2e-4)
P2M_SCALE = 0.57                                   #: evaluate_test_p2m's scale
GT_LONG_EDGE = 10.0                                #: compare_meshes' default scale "gt-10"
VARIANTS = ("meshrcnn", "p2m")

_TITLES = {
    "chamfer_l2": "Chamfer-L2 ×100 (Mesh R-CNN: mean sq NN dist pred→GT + GT→pred, camera frame, GT longest edge 10)",
    "f1_01": "F1@0.1 % (Mesh R-CNN: Euclidean τ = 0.1, GT longest edge 10)",
    "f1_03": "F1@0.3 % (Mesh R-CNN: Euclidean τ = 0.3, GT longest edge 10)",
    "f1_05": "F1@0.5 % (Mesh R-CNN: Euclidean τ = 0.5, GT longest edge 10)",
    "chamfer_l2_x10": "Chamfer-L2 ×1000 (p2m: mean sq NN dist pred→GT + GT→pred after ×0.57)",
    "f1_1e_4": "F1@1e-4 % (p2m: squared distance < 1e-4, i.e. Euclidean < 0.01, after ×0.57)",
    "f1_2e_4": "F1@2e-4 % (p2m: squared distance < 2e-4, i.e. Euclidean < 0.014142, after ×0.57)",
}


def gt_scale(gt_cam: np.ndarray, target: float = GT_LONG_EDGE) -> float:
    """``target / L``, ``L`` = the longest edge of the bounding box of ``gt_cam (M, 3)``
    (``_scale_meshes`` with ``scale="gt-<target>"``)."""
    long_edge = float((gt_cam.max(axis=0) - gt_cam.min(axis=0)).max())
    if long_edge <= 0.0:
        raise ValueError("gt_scale: all ground-truth points coincide; its bounding box has no edge")
    return target / long_edge


def sampling_metrics(pred, gt, thresholds: Sequence[float], eps: float = F1_EPS) -> dict[str, Any]:
    """Steps 3–5 on scaled clouds ``pred (N, 3)``, ``gt (M, 3)`` (``_compute_sampling_metrics``):
    ``{"chamfer_l2", "chamfer_l2_pred2gt", "chamfer_l2_gt2pred", "precision", "recall", "f1"}``,
    the last three lists in Mesh R-CNN's percent, one value per threshold."""
    d_pg = nn_distances(pred, gt)
    d_gp = nn_distances(gt, pred)
    out: dict[str, Any] = {"chamfer_l2_pred2gt": float((d_pg ** 2).mean()),
                           "chamfer_l2_gt2pred": float((d_gp ** 2).mean()),
                           "precision": [], "recall": [], "f1": []}
    out["chamfer_l2"] = out["chamfer_l2_pred2gt"] + out["chamfer_l2_gt2pred"]
    for t in thresholds:
        precision = 100.0 * float((d_pg < t).mean())
        recall = 100.0 * float((d_gp < t).mean())
        out["precision"].append(precision)
        out["recall"].append(recall)
        out["f1"].append(2.0 * precision * recall / (precision + recall + eps))
    return out


@dataclass(frozen=True)
class MeshRCNNProtocol:
    """Mesh R-CNN's protocol ``variant`` ``"meshrcnn"`` (scale-normalised) or ``"p2m"`` (its
    Pixel2Mesh protocol) for :func:`lmnet.eval.runner.evaluate`, which moves every pair into its
    view's camera frame first (``camera_frame``)."""

    variant: str = "meshrcnn"
    camera_frame = True  #: pairs must arrive in their view's R2N2 camera frame

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ConfigError(f"Mesh R-CNN protocol: variant must be one of {', '.join(VARIANTS)}, "
                              f"got {self.variant!r}")

    @property
    def name(self) -> str:
        return self.variant

    @property
    def seed(self) -> int:
        return 0  # no random step

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("chamfer_l2", "f1_01", "f1_03", "f1_05") if self.variant == "meshrcnn" else \
            ("chamfer_l2_x10", "f1_1e_4", "f1_2e_4")

    @property
    def titles(self) -> dict[str, str]:
        return {m: _TITLES[m] for m in self.metrics}

    def describe(self) -> str:
        """One line stating every step (printed above every table)."""
        if self.variant == "meshrcnn":
            scale, taus = "both scaled by 10 / longest edge of the GT bbox", "F1 at Euclidean 0.1, 0.3, 0.5"
        else:
            scale, taus = "both scaled by 0.57", "F1 at squared 1e-4, 2e-4 (Euclidean 0.01, 0.014142)"
        return (f"{self.variant} (facebookresearch/meshrcnn meshrcnn/utils/metrics.py, shapenet/evaluation/eval.py): "
                f"prediction (all its points) and GT pointcloud_1024 moved into the view's R2N2 camera frame; "
                f"{scale}; no ICP; Chamfer-L2 = mean squared NN dist pred->GT + GT->pred; {taus} "
                f"(F1 = 2PR/(P+R+1e-8), strict <); F1 in %")

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.name}

    def evaluate_pair(self, pred, gt, key: str = "") -> dict[str, Any]:
        """Steps 2–5 of one pair already in the camera frame: ``{"key", "scale", "chamfer_l2",
        "chamfer_l2_pred2gt", "chamfer_l2_gt2pred", <F1 keys as fractions>}`` (p2m: and
        ``chamfer_l2_x10``)."""
        p = _check_cloud(f"prediction {key!r}", pred)
        g = _check_cloud(f"ground truth {key!r}", gt)
        meshrcnn = self.variant == "meshrcnn"
        s = gt_scale(g) if meshrcnn else P2M_SCALE
        m = sampling_metrics(p * s, g * s, MESHRCNN_THRESHOLDS if meshrcnn else P2M_THRESHOLDS)
        rec = {"key": key, "scale": s, "chamfer_l2": m["chamfer_l2"],
               "chamfer_l2_pred2gt": m["chamfer_l2_pred2gt"], "chamfer_l2_gt2pred": m["chamfer_l2_gt2pred"]}
        if not meshrcnn:
            rec["chamfer_l2_x10"] = 10.0 * m["chamfer_l2"]
        f1_keys = self.metrics[1:]
        rec.update({k: f / 100.0 for k, f in zip(f1_keys, m["f1"])})
        return rec
