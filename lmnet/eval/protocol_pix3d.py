"""The Pix3D benchmark protocol (docs/evaluation.md#the-pix3d-benchmark-protocol): CD and EMD as the
Pix3D authors' evaluation code computes them, one pair of clouds at a time.

Ported from ``xingyuansun/pix3d``: ``eval/eval.py`` (``load_pts_from_list``: the normalisation;
the ``__main__`` block: which metrics), ``eval/cd/tf_nndistance.py`` (``_cd_dis``: the Chamfer
distance) and ``eval/emd/tf_auctionmatch.py`` with ``eval/emd/tf_auctionmatch_g.cu`` (``EMD.emd_dis``
and ``AuctionMatchKernel``: the EMD). ``list1`` of that script is the prediction, ``list2`` the GT.
Steps, for a prediction ``pred (N, 3)`` and its ground truth ``gt (M, 3)``:

1. **Points**: the script takes point clouds of exactly ``pts_size`` = 1024 points. The GT
   (``pointcloud_1024`` / Pix3D's ``pcl_1024``) is kept; a larger cloud (the 2048-point
   prediction) is subsampled to 1024 without replacement by lmnet's per-pair generator
   (:func:`lmnet.eval.protocol.pair_rng`, seeded by ``(seed, crc32(key))``; the GT with
   ``key + "/gt"`` should it be larger). Pix3D samples its 1024 points from voxel isosurfaces; this
   choice of subset is lmnet's.
2. **Normalise** each cloud on its own, in float64: ``p − (min + max) / 2``, then divided by the
   longest side ``max(max − min)`` (bounding box centred at the origin, longest side 1). Then
   float32, as the TensorFlow ops take them.
3. **No ICP**, no other alignment.
4. **CD** = mean over prediction points of √(squared distance to the nearest GT point) + the same
   mean over GT points (``np.mean(np.sqrt(dist1), 1) + np.mean(np.sqrt(dist2), 1)``): a sum of two
   means of Euclidean distances. ``cd_pred2gt`` and ``cd_gt2pred`` are the two terms.
5. **EMD** = the mean Euclidean distance ``|pred_i − gt[match_i]|`` under the PSGN auction matching
   of ``AuctionMatchKernel`` (prediction points bid for GT points on float32 costs; ε = 1e-4,
   ×100 after every 40·N bids, at most 1): :func:`lmnet.eval.official.auction_emd_bound`, the
   same kernel as 3D-LMNet's released evaluation. A matching, so never below the exact EMD, and
   at most ε above it, ε being that of the last bid (``emd_eps`` in the record; on 1024-point
   clouds normalised as in step 2 the auction usually ends in its ε = 1e-2 stage, docs/evaluation.md).
6. Means are plain means over the pairs (the script prints ``np.array(cd_d).mean()``); lmnet's
   tables give the per-category means and their unweighted mean, ×100.

Pix3D's own model on its 2,894 chair photographs: CD 0.119, EMD 0.120 (raw units, the README of
``xingyuansun/pix3d``), i.e. 11.9 and 12.0 in these ×100 tables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lmnet.errors import ConfigError
from lmnet.eval.official import auction_emd_bound
from lmnet.eval.protocol import _check_cloud, normalize_cloud, subsample
from lmnet.losses.chamfer_numpy import nn_distances

PTS_SIZE = 1024  #: the script's --pts_size default: points per cloud


def pix3d_clouds(pred, gt, *, seed: int = 0, key: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Steps 1–2: ``(pred (1024, 3), gt (1024, 3))`` float32, each subsampled to 1024 points when
    larger, bbox-centred and scaled to longest side 1 on its own."""
    p = _check_cloud(f"prediction {key!r}", pred)
    g = _check_cloud(f"ground truth {key!r}", gt)
    p = subsample(p, PTS_SIZE, seed=seed, key=key)
    g = subsample(g, PTS_SIZE, seed=seed, key=f"{key}/gt")
    return normalize_cloud(p).astype(np.float32), normalize_cloud(g).astype(np.float32)


def pix3d_chamfer(pred, gt) -> tuple[float, float, float]:
    """Step 4 on prepared clouds: ``(cd, cd_pred2gt, cd_gt2pred)`` raw, float64 distances of the
    float32 coordinates."""
    d_pg = nn_distances(pred, gt)
    d_gp = nn_distances(gt, pred)
    return float(d_pg.mean() + d_gp.mean()), float(d_pg.mean()), float(d_gp.mean())


@dataclass(frozen=True)
class Pix3DProtocol:
    """The Pix3D benchmark's CD / EMD for :class:`lmnet.eval.parallel.PairEvaluator` and
    :func:`lmnet.eval.runner.evaluate`. ``seed``: the prediction's subsample (step 1); ``emd``:
    compute the auction EMD (the expensive step)."""

    seed: int = 0
    emd: bool = True

    name: ClassVar[str] = "pix3d"
    camera_frame: ClassVar[bool] = False  #: no per-view camera needed
    metrics: ClassVar[tuple[str, ...]] = ("cd", "emd")
    titles: ClassVar[dict[str, str]] = {
        "cd": "CD ×100 (Pix3D benchmark: mean √(sq NN dist) pred→GT + GT→pred, bbox-normalised, no ICP)",
        "emd": "EMD ×100 (Pix3D benchmark: PSGN auction matching, mean Euclidean, bbox-normalised)",
    }

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"pix3d protocol: seed must be a whole number >= 0, got {self.seed!r}")

    def describe(self) -> str:
        """One line stating every step (printed above every table)."""
        return (f"pix3d (the Pix3D benchmark, xingyuansun/pix3d eval/eval.py): GT {PTS_SIZE} points, prediction "
                f"subsampled to {PTS_SIZE} (seed {self.seed}, per pair); each cloud bbox-centred, longest side 1; "
                f"no ICP; CD = mean sqrt(sq NN dist) pred->GT + GT->pred; EMD = PSGN auction matching "
                f"(prediction bids, eps 1e-4 x100 per 40N bids), mean Euclidean: {'on' if self.emd else 'OFF'}; "
                f"values x100 (Pix3D prints raw units)")

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.name, **dataclasses.asdict(self)}

    def evaluate_pair(self, pred, gt, key: str = "") -> dict[str, Any]:
        """``{"key", "cd", "cd_pred2gt", "cd_gt2pred", "emd", "emd_eps"}`` of one pair, raw units
        (``emd`` and ``emd_eps`` NaN when EMD is off)."""
        p, g = pix3d_clouds(pred, gt, seed=self.seed, key=key)
        cd, fwd, bwd = pix3d_chamfer(p, g)
        emd, eps = auction_emd_bound(p, g) if self.emd else (float("nan"), float("nan"))
        return {"key": key, "cd": cd, "cd_pred2gt": fwd, "cd_gt2pred": bwd, "emd": emd, "emd_eps": eps}
