"""An independent reference for lmnet's ``meshrcnn`` and ``p2m`` protocols: Mesh R-CNN's evaluation
(``facebookresearch/meshrcnn``: ``meshrcnn/utils/metrics.py``, ``shapenet/evaluation/eval.py``,
``shapenet/utils/coords.py``, ``tools/preprocess_shapenet.py``) ported to plain torch, as close to
the original as point clouds allow.

Differences from the original, all forced by the inputs or the absence of PyTorch3D:

- clouds instead of meshes: the "mesh" is its points, so ``_sample_meshes(..., "verts")`` and the
  bounding box of ``get_bounding_boxes`` is that of the points;
- ``knn_points(K=1)`` is a brute-force minimum over all squared distances;
- the matrices are built in the dtype of the points (``torch.tensor`` of Python floats would make
  them float32); the tests run float64.

Nothing here imports lmnet. The 3D-LMNet frame is converted to ShapeNet v1 (the frame of the meshes
Mesh R-CNN loads) with ``p_v1 = p_lmnet @ A``, ``A = [[0, -1, 0], [-1, 0, 0], [0, 0, -1]]``.
"""

from __future__ import annotations

import math

import torch

MAX_CAMERA_DISTANCE = 1.75  # load_extrinsics: "Horrible constant from 3D-R2N2"
V1_FROM_LMNET = [[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]


def compute_extrinsic_matrix(azimuth, elevation, distance, dtype=torch.float64):
    """``shapenet/utils/coords.py``: the 4x4 world → camera matrix of a view."""
    azimuth, elevation, distance = (float(azimuth), float(elevation), float(distance))
    az_rad = -math.pi * azimuth / 180.0
    el_rad = -math.pi * elevation / 180.0
    sa = math.sin(az_rad)
    ca = math.cos(az_rad)
    se = math.sin(el_rad)
    ce = math.cos(el_rad)
    R_world2obj = torch.tensor([[ca * ce, sa * ce, -se], [-sa, ca, 0], [ca * se, sa * se, ce]], dtype=dtype)
    R_obj2cam = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    R_world2cam = R_obj2cam.mm(R_world2obj)
    cam_location = torch.tensor([[distance, 0, 0]], dtype=dtype).t()
    T_world2cam = -R_obj2cam.mm(cam_location)
    RT = torch.cat([R_world2cam, T_world2cam], dim=1)
    RT = torch.cat([RT, torch.tensor([[0.0, 0, 0, 1]], dtype=dtype)])
    rot = torch.tensor([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    RT = RT.mm(rot.to(RT))
    return RT


def load_extrinsic(metadata_line: str, dtype=torch.float64):
    """``load_extrinsics`` for one line of ``rendering_metadata.txt``."""
    vals = [float(v) for v in metadata_line.strip().split(" ")]
    azimuth, elevation, yaw, dist_ratio, fov = vals
    distance = MAX_CAMERA_DISTANCE * dist_ratio
    return compute_extrinsic_matrix(azimuth, elevation, distance, dtype)


def project_verts(verts, P, eps=1e-1):
    """``shapenet/utils/coords.py``, unbatched input ``(V, 3)``."""
    singleton = False
    if verts.dim() == 2:
        assert P.dim() == 2
        singleton = True
        verts, P = verts[None], P[None]
    N, V = verts.shape[0], verts.shape[1]
    ones = torch.ones(N, V, 1, dtype=verts.dtype, device=verts.device)
    verts_hom = torch.cat([verts, ones], dim=2)
    verts_cam_hom = torch.bmm(verts_hom, P.transpose(1, 2))
    w = verts_cam_hom[:, :, 3:]
    w_sign = w.sign()
    w_sign[w == 0] = 1
    w = w_sign * w.abs().clamp(min=eps)
    verts_proj = verts_cam_hom[:, :, :3] / w
    if singleton:
        return verts_proj[0]
    return verts_proj


def lmnet_cloud_to_camera(points_lmnet, metadata_line: str):
    """The GT / prediction of one view as ``MeshVoxDataset.__getitem__`` holds it: v1 coordinates
    moved by ``RT`` (``project_verts(verts, RT)``)."""
    pts = torch.as_tensor(points_lmnet, dtype=torch.float64) @ torch.tensor(V1_FROM_LMNET, dtype=torch.float64)
    return project_verts(pts, load_extrinsic(metadata_line))


def _knn_points_k1(p1, p2):
    """``knn_points(p1, p2, K=1).dists[..., 0]``: squared distance to the nearest point."""
    d = ((p1[:, :, None, :] - p2[:, None, :, :]) ** 2).sum(-1)
    return d.min(dim=2)[0]


def _scale(pred_points, gt_points, scale):
    """``_scale_meshes`` on clouds ``(N, S, 3)``."""
    if isinstance(scale, float):
        pred_scale = gt_scale = scale
    elif scale.startswith("gt-"):
        target = float(scale[3:])
        bbox = torch.stack([gt_points.min(dim=1)[0], gt_points.max(dim=1)[0]], dim=2)  # (N, 3, 2)
        long_edge = (bbox[:, :, 1] - bbox[:, :, 0]).max(dim=1)[0]  # (N,)
        scale = target / long_edge
        pred_scale, gt_scale = scale[:, None, None], scale[:, None, None]
    else:
        raise ValueError("Invalid scale: %r" % scale)
    return pred_points * pred_scale, gt_points * gt_scale


def compare_clouds(pred_points, gt_points, scale="gt-10", thresholds=None, eps=1e-8):
    """``compare_meshes(..., reduce=False)`` on clouds ``(N, S, 3)`` / ``(N, S', 3)``:
    ``{"Chamfer-L2", "Precision@t", "Recall@t", "F1@t"}`` tensors ``(N,)``, percent for the last three."""
    if thresholds is None:
        thresholds = [0.1, 0.2, 0.3, 0.4, 0.5]
    pred_points, gt_points = _scale(pred_points, gt_points, scale)
    metrics = {}
    pred_to_gt_dists2 = _knn_points_k1(pred_points, gt_points)
    pred_to_gt_dists = pred_to_gt_dists2.sqrt()
    gt_to_pred_dists2 = _knn_points_k1(gt_points, pred_points)
    gt_to_pred_dists = gt_to_pred_dists2.sqrt()
    chamfer_l2 = pred_to_gt_dists2.mean(dim=1) + gt_to_pred_dists2.mean(dim=1)
    metrics["Chamfer-L2"] = chamfer_l2
    for t in thresholds:
        precision = 100.0 * (pred_to_gt_dists < t).float().mean(dim=1)
        recall = 100.0 * (gt_to_pred_dists < t).float().mean(dim=1)
        f1 = (2.0 * precision * recall) / (precision + recall + eps)
        metrics["Precision@%f" % t] = precision
        metrics["Recall@%f" % t] = recall
        metrics["F1@%f" % t] = f1
    return metrics


def evaluate_test(pred_points, gt_points):
    """``evaluate_test``'s per-pair values: ``compare_meshes(pred, gt, reduce=False)``."""
    m = compare_clouds(pred_points, gt_points)
    return {"chamfer": m["Chamfer-L2"], "f1_01": m["F1@%f" % 0.1], "f1_03": m["F1@%f" % 0.3],
            "f1_05": m["F1@%f" % 0.5]}


def evaluate_test_p2m(pred_points, gt_points):
    """``evaluate_test_p2m``'s per-pair values: ``scale=0.57, thresholds=[0.01, 0.014142]``."""
    m = compare_clouds(pred_points, gt_points, scale=0.57, thresholds=[0.01, 0.014142])
    return {"chamfer": m["Chamfer-L2"], "f1_1e_4": m["F1@%f" % 0.01], "f1_2e_4": m["F1@%f" % 0.014142]}
