"""The "official" protocol: the evaluation exactly as the released 3D-LMNet code computes it.

lmnet's own protocol (:mod:`lmnet.eval.protocol`) computes the intended quantities; this module
reproduces the released computation step by step, so a number can be compared with the paper's
tables. For one category, pairs in the released order (models in the split file's order, then
views 0–23):

1. **RNG**: one legacy NumPy Mersenne-Twister stream seeded with 1024 once per category (the same
   draws as ``np.random.seed(1024)`` followed by ``np.random.permutation`` calls; a private
   ``RandomState`` is used so the caller's global RNG is left alone).
2. **Scale** (:func:`scale_released`) the GT (1024 points) and the *full* prediction (2048), each
   on its own, in float32: bounding box padded to a cube around its centre, scaled by 1 / longest
   side, min corner moved to −0.5.
3. **Subsample** after scaling: ``idx = permutation(2048)[:1024]``, one draw per pair.
4. **ICP** (:func:`icp_released`) moves the *GT* onto the subsampled prediction (tolerance 1e-10,
   at most 1000 iterations) and returns ``R, t`` with ``moved GT ≈ gt @ R.T + t``.
5. The prediction is mapped by ``pred @ R − t`` (row vectors) — the released quirk; the exact
   inverse would be ``(pred − t) @ R``.
6. **Chamfer** (:func:`chamfer_released`): ``fwd`` = mean √(squared NN distance) GT → pred,
   ``bwd`` = the same pred → GT, ``cd = fwd + bwd``. **EMD**: ``emd_auction`` = mean Euclidean
   distance under the released auction schedule's matching (:func:`auction_emd`, pred points bid
   for GT points; never below the exact value), and ``emd_exact`` = the optimum on the same pair
   (:func:`lmnet.losses.emd.emd_exact`).
7. Means are plain means over the pairs (the released script divides by 24 too often; fixed).

Everything here is in raw units (not ×100). Steps 4–6 run in float64 (the released ICP is NumPy
float64; its Chamfer ran in float32 on the GPU — a difference at float32 rounding, ~1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from lmnet.errors import ConfigError
from lmnet.eval import _official_kernels as _k
from lmnet.eval.protocol import emd, kabsch
from lmnet.losses.chamfer_numpy import GRID_CELLS_PER_POINT, chamfer_terms

SEED = 1024            #: the released script's np.random.seed
N_GT = 1024            #: GT points (pointcloud_1024) = points kept of the prediction
ICP_TOL = 1e-10        #: released ICP tolerance on the change of the mean NN distance
ICP_MAX_ITER = 1000    #: released ICP iteration limit

#: record keys → table titles of the official tables (lmnet.eval.report)
METRICS = ("cd", "emd_auction", "emd")
COLUMN_TITLES = {
    "cd": "CD ×100 (released: √ of squared NN distances, fwd + bwd)",
    "emd_auction": "EMD ×100 (released auction schedule)",
    "emd": "EMD ×100 (exact, same pairs)",
}


def scale_released(clouds) -> np.ndarray:
    """``(N, 3)`` or ``(B, N, 3)`` → float32, each cloud normalised on its own as the released
    ``scale()``: per axis ``length = max − min``; the box is padded to a cube of side
    ``size = max(length)`` around its centre (``new_min = min − (size − length) / 2``); points map
    to ``p / size + (−0.5 − new_min / size)``, so the cube becomes ``[−0.5, 0.5]^3``."""
    arr = np.asarray(clouds, dtype=np.float32)
    if arr.ndim not in (2, 3) or arr.shape[-1] != 3 or arr.shape[-2] == 0:
        raise ValueError(f"scale_released: expected (N, 3) or (B, N, 3) with N >= 1, got {arr.shape}")
    lo = arr.min(axis=-2, keepdims=True)
    hi = arr.max(axis=-2, keepdims=True)
    length = np.abs(hi - lo)
    size = length.max(axis=-1, keepdims=True)
    if not (size > 0).all():
        raise ValueError("scale_released: a cloud whose points all coincide cannot be scaled")
    new_min = lo - (size - length) / np.float32(2.0)
    factor = np.float32(1.0) / size
    adjust = np.float32(-0.5) - factor * new_min
    return (arr * factor + adjust).astype(np.float32)


class SubsetStream:
    """The released subsample draws: one seeded legacy NumPy stream per key (a category, or a
    (method, category) pair), ``permutation(n_pred)[:n_keep]`` per pair in order."""

    def __init__(self, seed: int = SEED):
        self.seed = int(seed)
        self._rngs: dict[Any, np.random.RandomState] = {}

    def draw(self, key: Any = "", n_pred: int = 2048, n_keep: int = N_GT) -> np.ndarray:
        """Indices ``(n_keep,)`` of the next pair of stream ``key``."""
        if n_pred < n_keep:
            raise ValueError(f"cannot subsample {n_pred} predicted points to {n_keep}")
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = np.random.RandomState(self.seed)
        return rng.permutation(n_pred)[:n_keep]


def subsample_indices(n_pairs: int, n_pred: int = 2048, n_keep: int = N_GT, seed: int = SEED) -> np.ndarray:
    """``(n_pairs, n_keep)`` int: the subsets of pairs 0, 1, … of one category (step 3)."""
    s = SubsetStream(seed)
    return np.stack([s.draw("", n_pred, n_keep) for _ in range(n_pairs)]) if n_pairs else \
        np.empty((0, n_keep), np.int64)


def _icp_numpy(gt: np.ndarray, pred: np.ndarray, tol: float, max_iter: int):
    """The released ICP loop with a KD-tree (fallback without numba); see :func:`icp_released`."""
    tree = cKDTree(pred)
    cur = gt.copy()
    prev = 0.0
    it = 0
    for it in range(1, max_iter + 1):
        dist, idx = tree.query(cur)
        r, t = kabsch(cur, pred[idx])
        cur = cur @ r.T + t
        err = float(dist.mean())
        if abs(prev - err) < tol:
            break
        prev = err
    r, t = kabsch(gt, cur)
    return r, t, it


def icp_released(gt, pred, *, tol: float = ICP_TOL, max_iter: int = ICP_MAX_ITER):
    """ICP moving ``gt (M, 3)`` onto ``pred (N, 3)`` as the released ``icp(A=gt, B=pred)``.

    Each iteration matches every moved GT point to its nearest prediction point, takes the mean
    Euclidean NN distance (before the update), fits and applies the rigid transform by SVD
    (reflection fixed); stops when that mean changed by less than ``tol`` from the previous
    iteration's (the first compares with 0) or after ``max_iter``. Returns ``(R (3, 3), t (3,),
    iterations)``: the least-squares fit from the original to the moved GT, ``moved ≈ gt @ R.T + t``.
    """
    g = np.ascontiguousarray(gt, dtype=np.float64)
    p = np.ascontiguousarray(pred, dtype=np.float64)
    if not _k.HAVE_NUMBA:
        return _icp_numpy(g, p, tol, max_iter)
    r, t, it = _k.icp_gt_onto_pred(g, p, float(tol), int(max_iter), GRID_CELLS_PER_POINT)
    return r, t, int(it)


def apply_released_inverse(pred, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``pred @ R − t`` (row vectors), float64: what the released code applies to the
    prediction after ICP (not the exact inverse ``(pred − t) @ R``)."""
    return np.asarray(pred, dtype=np.float64) @ rotation - translation


def chamfer_released(pred, gt) -> tuple[float, float, float]:
    """``(cd, fwd, bwd)`` raw: ``fwd`` = mean over GT points of √(squared distance to the nearest
    prediction point), ``bwd`` = the same from the prediction to the GT, ``cd = fwd + bwd``."""
    c = chamfer_terms(pred, gt)
    return c["cd"], c["cd_gt2pred"], c["cd_pred2gt"]


def auction_emd(pred, gt) -> float:
    """Mean Euclidean distance ``pred_i → gt[match_i]`` under the released auction schedule's
    matching (``auction_match(pred, gt)``: prediction points bid, float32 costs), raw units. A
    matching, so never below the exact EMD; bidders left unmatched (not seen on unit-cube clouds)
    are paired with the remaining GT points in index order."""
    return auction_emd_bound(pred, gt)[0]


def auction_eps_last(bids: int, n: int) -> float:
    """ε of the last of ``bids`` bids of the released schedule on ``n`` points: ``1e-4 · 100^k``
    for the ``k``-th block of ``40·n`` bids, at most 1 (float32 values, as the kernel)."""
    eps = np.float32(1e-4)
    for _ in range(max(0, (int(bids) - 1) // (40 * int(n)))):
        eps = min(np.float32(1.0), np.float32(eps * np.float32(100.0)))
    return float(eps)


def auction_emd_bound(pred, gt) -> tuple[float, float]:
    """``(emd, eps)``: :func:`auction_emd` and the ε of the auction's last bid. Every bidder ends
    within its own bid's ε (≤ ``eps``) of its best object, so ``exact EMD ≤ emd ≤ exact EMD + eps``
    (up to float32 rounding); ``eps`` is ``inf`` when bidders were left unmatched."""
    p = np.ascontiguousarray(pred, dtype=np.float32)
    g = np.ascontiguousarray(gt, dtype=np.float32)
    if p.shape != g.shape:
        raise ValueError(f"auction_emd needs equal point counts, got {p.shape} and {g.shape}")
    match, bids = _k.auction_match(p, g)
    eps = auction_eps_last(bids, len(p))
    if (match < 0).any():
        free = np.setdiff1d(np.arange(len(g)), match[match >= 0])
        match = match.copy()
        match[match < 0] = free
        eps = float("inf")
    return float(np.linalg.norm(p.astype(np.float64) - g[match].astype(np.float64), axis=1).mean()), eps


def evaluate_prepared(pred_sub, gt_scaled, *, with_emd: bool = True) -> dict[str, Any]:
    """Steps 4–6 for one pair already scaled and subsampled: ``pred_sub (1024, 3)``,
    ``gt_scaled (1024, 3)``. Returns raw ``{"cd", "fwd", "bwd", "emd_auction", "emd_exact",
    "icp_iters"}`` (EMDs NaN when ``with_emd`` is False)."""
    g = np.asarray(gt_scaled, dtype=np.float64)
    r, t, it = icp_released(g, pred_sub)
    p = apply_released_inverse(pred_sub, r, t)
    cd, fwd, bwd = chamfer_released(p, g)
    rec = {"cd": cd, "fwd": fwd, "bwd": bwd, "icp_iters": it,
           "emd_auction": float("nan"), "emd_exact": float("nan")}
    if with_emd:
        rec["emd_auction"] = auction_emd(p, g)
        rec["emd_exact"] = emd(p, g)
    return rec


def evaluate_pairs(preds, gts, seed: int = SEED, *, with_emd: bool = True) -> dict[str, np.ndarray]:
    """The released evaluation of one category's pairs, in their order.

    ``preds (P, 2048, 3)``, ``gts (P, 1024, 3)`` (any float dtype; the subset size is the GT's
    point count). The subset stream is seeded with ``seed`` once, at the start. Returns per-pair
    arrays ``{"cd", "fwd", "bwd", "emd_auction", "emd_exact", "icp_iters"}`` ``(P,)``, raw units
    (not ×100).
    """
    preds = np.asarray(preds)
    gts = np.asarray(gts)
    if preds.ndim != 3 or gts.ndim != 3 or len(preds) != len(gts) or preds.shape[-1] != 3 or gts.shape[-1] != 3:
        raise ValueError(f"evaluate_pairs: preds (P, N, 3) and gts (P, M, 3) with equal P, "
                         f"got {preds.shape} and {gts.shape}")
    stream = SubsetStream(seed)
    recs = []
    if len(preds):
        gs, ps = scale_released(gts), scale_released(preds)
        for p, g in zip(ps, gs):
            idx = stream.draw("", p.shape[0], g.shape[0])
            recs.append(evaluate_prepared(p[idx], g, with_emd=with_emd))
    keys = ("cd", "fwd", "bwd", "emd_auction", "emd_exact", "icp_iters")
    return {k: np.array([r[k] for r in recs], dtype=np.int64 if k == "icp_iters" else np.float64)
            for k in keys}


@dataclass(frozen=True)
class OfficialProtocol:
    """The official protocol for :class:`lmnet.eval.parallel.PairEvaluator`: the parent process
    scales and subsamples (it owns the ordered subset streams, :meth:`prepare`), the workers run
    :meth:`evaluate_pair` on the prepared pair."""

    seed: int = SEED
    emd: bool = True

    def __post_init__(self):
        if not isinstance(self.seed, int):
            raise ConfigError(f"official protocol: seed must be an int, got {self.seed!r}")

    def describe(self) -> str:
        """One line naming the protocol and every step (printed above every table)."""
        return (f"official (the released 3D-LMNet evaluation, mean over pairs): GT pointcloud_1024 and the full "
                f"prediction each scaled to the unit cube [-0.5, 0.5]^3 (bbox padded to a cube); then per pair "
                f"permutation(N)[:1024] from one NumPy stream seeded {self.seed} per category, in split-file "
                f"order x views; ICP moves the GT onto the prediction (tol {ICP_TOL:g}, <= {ICP_MAX_ITER} it), "
                f"prediction mapped by pred @ R - t; CD = mean sqrt(sq NN dist) gt->pred + pred->gt; EMD = "
                f"released auction schedule{' and exact' if self.emd else ' OFF'}; values x100")

    def prepare(self, stream: SubsetStream, stream_key: Any, pred, gt) -> tuple[np.ndarray, np.ndarray]:
        """Steps 2–3 of one pair: ``(pred_sub (1024, 3), gt_scaled (1024, 3))`` float32, drawing
        the pair's subset from ``stream[stream_key]``."""
        p = scale_released(pred)
        g = scale_released(gt)
        return p[stream.draw(stream_key, p.shape[0], g.shape[0])], g

    def evaluate_pair(self, pred_sub, gt_scaled, key: str = "") -> dict[str, Any]:
        """Record of one prepared pair in lmnet's record keys: ``cd``, ``cd_gt2pred`` (fwd),
        ``cd_pred2gt`` (bwd), ``emd_auction``, ``emd`` (exact), ``icp_iters``; raw units."""
        r = evaluate_prepared(pred_sub, gt_scaled, with_emd=self.emd)
        return {"key": key, "cd": r["cd"], "cd_gt2pred": r["fwd"], "cd_pred2gt": r["bwd"],
                "emd_auction": r["emd_auction"], "emd": r["emd_exact"], "icp_iters": r["icp_iters"]}


def released_csv(cd: float, fwd: float, bwd: float, emd_value: float) -> str:
    """One category's file in the released layout: the header ``Chamfer, Fwd, Bwd, Emd`` and one
    line of the category means, raw units (not ×100), ``Emd`` = the auction EMD."""
    return "Chamfer, Fwd, Bwd, Emd\n" + ", ".join(f"{v:.8f}" for v in (cd, fwd, bwd, emd_value)) + "\n"
