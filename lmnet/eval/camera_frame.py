"""Move evaluation pairs into their view's R2N2 camera frame (the protocols of
:mod:`lmnet.eval.protocol_meshrcnn`), in the parent process of the evaluation: it needs torch
(:func:`lmnet.camera.r2n2_extrinsics`), which the pair workers never import.

A pair's view comes from its record fields ``azimuth``, ``elevation`` (degrees) and
``distance_ratio`` (one line of ``rendering_metadata.txt``, as :class:`lmnet.eval.run.ShapeNetSource`
records them). Both the prediction and the GT of a pair move by the same rigid map
``x_cam = p @ Rᵀ + t`` (docs/formats.md#the-r2n2-camera).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmnet.camera import r2n2_extrinsics
from lmnet.errors import ConfigError

VIEW_FIELDS = ("azimuth", "elevation", "distance_ratio")


def to_camera_frame(points, azimuth: float, elevation: float, distance_ratio: float) -> np.ndarray:
    """``(N, 3)`` 3D-LMNet-frame points → ``(N, 3)`` float64 in the OpenGL camera frame of the R2N2
    view (x right, y up, the object in front at negative z)."""
    r, t = r2n2_extrinsics(*(torch.tensor(float(v), dtype=torch.float64)
                             for v in (azimuth, elevation, distance_ratio)))
    return np.asarray(points, dtype=np.float64) @ r.numpy().T + t.numpy()


def move_pairs(preds: Sequence, gts: Sequence, fields: Sequence[Mapping[str, Any]],
               protocol: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both clouds of every pair into the camera frame of its view (``fields[i]``); raises
    :class:`ConfigError` naming ``protocol`` when the pairs carry no R2N2 view (Pix3D photographs)."""
    out_p, out_g = [], []
    for p, g, f in zip(preds, gts, fields):
        missing = [k for k in VIEW_FIELDS if k not in f]
        if missing:
            raise ConfigError(f"--protocol {protocol} needs each pair's R2N2 view (rendering_metadata.txt: "
                              f"{', '.join(VIEW_FIELDS)}); these pairs have none (Pix3D photographs?): "
                              f"use --dataset shapenet, or --protocol lmnet, official or pix3d")
        view = [float(f[k]) for k in VIEW_FIELDS]
        out_p.append(to_camera_frame(p, *view))
        out_g.append(to_camera_frame(g, *view))
    return out_p, out_g
