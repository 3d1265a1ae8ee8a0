"""An independent reference for lmnet's ``pix3d`` protocol: the Pix3D benchmark's evaluation code
(``xingyuansun/pix3d``, ``eval/eval.py``, ``eval/cd/tf_nndistance.py``,
``eval/emd/tf_auctionmatch.py``, ``eval/emd/tf_auctionmatch_g.cu``) ported to plain NumPy, as close
to the original as a CPU port can be.

- :func:`normalize_points`: the normalisation of ``load_pts_from_list`` (mode ``points``);
- :func:`nn_distance`: the ``NnDistance`` op (squared distances in float32, brute force);
- :func:`cd_dis`: ``_cd_dis``;
- :func:`auction_match`: ``AuctionMatchKernel`` run by one thread: the bidder at the queue head
  takes the smallest ``cost + price`` and the second smallest, and the kernel's bookkeeping follows
  line by line (the GPU's parallel reductions pick among exact ties in their own order; ties do
  not occur on random clouds);
- :func:`emd_dis`: ``EMD.emd_dis`` (gather the matched GT point, mean Euclidean distance).

Nothing here imports lmnet.
"""

from __future__ import annotations

import numpy as np


def normalize_points(points: np.ndarray) -> np.ndarray:
    """``load_pts_from_list``: bounding box centred at the origin, longest side 1."""
    bound_l = np.min(points, axis=0)
    bound_h = np.max(points, axis=0)
    points = points - (bound_l + bound_h) / 2
    points = points / (bound_h - bound_l).max()
    return points


def nn_distance(xyz1: np.ndarray, xyz2: np.ndarray):
    """``(dist1, idx1, dist2, idx2)``: squared float32 distance from every point of ``xyz1 (B, N, 3)``
    to its nearest point of ``xyz2 (B, M, 3)``, and back."""
    xyz1 = xyz1.astype(np.float32)
    xyz2 = xyz2.astype(np.float32)
    d = ((xyz1[:, :, None, :] - xyz2[:, None, :, :]) ** 2).sum(-1)  # (B, N, M) float32
    return d.min(2), d.argmin(2), d.min(1), d.argmin(1)


def cd_dis(xyz1: np.ndarray, xyz2: np.ndarray) -> np.ndarray:
    """``_cd_dis``: per pair ``mean(sqrt(dist1)) + mean(sqrt(dist2))``."""
    xyz1 = np.array(xyz1, dtype=np.float32)
    xyz2 = np.array(xyz2, dtype=np.float32)
    dist1, idx1, dist2, idx2 = nn_distance(xyz1, xyz2)
    return np.mean(np.sqrt(dist1), axis=1) + np.mean(np.sqrt(dist2), axis=1)


def _auction_one(x1: np.ndarray, x2: np.ndarray):
    """One item of ``AuctionMatchKernel``: ``(matchrbuf, bids)``."""
    n = x1.shape[0]
    cnt = 0
    tolerance = np.float32(1e-4)
    matchrbuf = np.full(n, -1, np.int64)
    queue = np.arange(n)
    pricer = np.zeros(n, np.float32)
    diff = x1[:, None, :] - x2[None, :, :]
    cost = np.sqrt(diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2])
    qhead, qlen, bids = 0, n, 0
    while qlen:
        i = queue[qhead]
        value = cost[i] + pricer
        bestj = int(np.argmin(value))
        best = value[bestj]
        value[bestj] = np.float32(1e38)
        best2 = value.min()
        delta = np.float32(best2 - best + tolerance)
        qhead += 1
        qlen -= 1
        if qhead >= n:
            qhead -= n
        old = matchrbuf[bestj]
        pricer[bestj] = np.float32(pricer[bestj] + delta)
        cnt += 1
        bids += 1
        if old != -1:
            tail = qhead + qlen
            qlen += 1
            if tail >= n:
                tail -= n
            queue[tail] = old
        if cnt == 40 * n:
            if tolerance == np.float32(1.0):
                qlen = 0
            tolerance = np.float32(min(np.float32(1.0), np.float32(tolerance * np.float32(100))))
            cnt = 0
        matchrbuf[bestj] = i
    return matchrbuf, bids


def auction_match(xyz1: np.ndarray, xyz2: np.ndarray):
    """``(matchl (B, N), matchr (B, N), bids (B,))``: ``xyz2[b, matchl[b, i]]`` is the object won by
    bidder ``xyz1[b, i]`` (``matchl[bno*n+matchrbuf[j]]=j``)."""
    b, n, _ = xyz1.shape
    matchl = np.full((b, n), -1, np.int64)
    matchr = np.full((b, n), -1, np.int64)
    bids = np.zeros(b, np.int64)
    for bno in range(b):
        matchrbuf, bids[bno] = _auction_one(xyz1[bno].astype(np.float32), xyz2[bno].astype(np.float32))
        matchr[bno] = matchrbuf
        ok = matchrbuf >= 0
        matchl[bno, matchrbuf[ok]] = np.arange(n)[ok]
    return matchl, matchr, bids


def emd_dis(pts1: np.ndarray, pts2: np.ndarray) -> np.ndarray:
    """``EMD.emd_dis``: per pair, the mean of ``sqrt(sum((xyz1 - xyz2[matchl])**2))``, float32."""
    xyz1 = np.asarray(pts1, dtype=np.float32)
    xyz2 = np.asarray(pts2, dtype=np.float32)
    matchl, _, _ = auction_match(xyz1, xyz2)
    ret = np.stack([xyz2[b][matchl[b]] for b in range(len(xyz2))])  # gather_point
    dis = np.sqrt(np.sum((xyz1 - ret) ** 2, axis=2))
    return np.mean(dis, axis=1)


def evaluate(pred_points: np.ndarray, gt_points: np.ndarray):
    """``eval.py --list1_mode points --list2_mode points --calc_cd --calc_emd`` on in-memory clouds
    ``(P, 1024, 3)`` each (list1 = predictions, list2 = GT): ``(cd_d (P,), emd_d (P,))``."""
    pts1 = np.array([normalize_points(p) for p in np.asarray(pred_points, dtype=np.float64)])
    pts2 = np.array([normalize_points(p) for p in np.asarray(gt_points, dtype=np.float64)])
    return cd_dis(pts1, pts2), emd_dis(pts1, pts2)
