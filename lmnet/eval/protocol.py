"""The 3D-LMNet evaluation protocol (docs/evaluation.md#the-lmnet-protocol-step-by-step), one pair of clouds at a time.

Steps, in order, for a prediction ``pred (N, 3)`` and its ground truth ``gt (M, 3)``:

1. **Subsample** the prediction to ``n_points`` (1024, the size of ``pointcloud_1024.npy``) without
   replacement, with a generator seeded by ``(seed, crc32(key))`` so a pair's subset never depends
   on the order or the process it is evaluated in. A prediction with exactly ``n_points`` points is
   kept; fewer is an error. The ground truth is never resampled.
2. **Normalise** each cloud on its own: centre its axis-aligned bounding box at the origin and
   scale it uniformly so the longest side is 1 (the cloud then lies inside ``[-0.5, 0.5]^3``).
3. **ICP**: rigid point-to-point ICP of the prediction onto the ground truth (exact nearest
   neighbours in the GT — a numba uniform grid built once, equal to a KD-tree query — rotation +
   translation by SVD/Kabsch with the reflection fix, no scale),
   at most ``icp_max_iter`` iterations, stopping when the mean NN distance improves by less than
   ``icp_tol`` (absolute, in normalised units).
4. **Chamfer** (:func:`lmnet.losses.chamfer_numpy.chamfer_terms`) ``cd`` = mean Euclidean NN distance gt→pred +
   mean Euclidean NN distance pred→gt
   (a sum of two means, distances *not* squared). The two terms are kept as ``cd_gt2pred`` (how
   well the GT is covered) and ``cd_pred2gt`` (how precise the prediction is).
5. **EMD** ``emd`` = mean Euclidean distance under the optimal one-to-one matching (exact linear
   assignment; needs equal point counts).
6. ``cd_sq`` = the PyTorch3D-style "chamfer": mean *squared* NN distance gt→pred + pred→gt.
   A different number from ``cd``; never mix the two columns.
7. **F-score** at each threshold τ of :data:`FSCORE_TAUS` (0.01 and 0.02: 1 % and 2 % of the
   normalised size, the longest bbox side being 1), from the NN distances of step 4 (after ICP):
   precision = fraction of predicted points within τ of the GT, recall = fraction of GT points
   within τ of the prediction, F = 2PR / (P + R) (0 when both are 0) (:func:`fscore_terms`).

All values returned here are raw (not ×100); :mod:`lmnet.eval.report` multiplies by 100 for the
tables. Steps 2 and 3 can be switched off (:class:`Protocol`), and :meth:`Protocol.describe` states
which steps were on; every table prints it.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from lmnet.errors import ConfigError
from lmnet.losses import _kernels_icp
from lmnet.losses.chamfer_numpy import GRID_CELLS_PER_POINT, chamfer_from_distances, nn_distances
from lmnet.losses.emd_numpy import emd_exact_pair


#: F-score thresholds τ, in normalised units (the longest bbox side is 1): 1 % and 2 % of the size
FSCORE_TAUS = (0.01, 0.02)


def fscore_key(tau: float) -> str:
    """The record key suffix of a threshold: ``0.01`` → ``"1pct"`` (τ as a percentage of the size)."""
    return f"{100.0 * tau:g}pct"


@dataclass(frozen=True)
class Protocol:
    """Switches and constants of the protocol. Defaults are the paper's protocol."""

    n_points: int = 1024          #: prediction subsampled to this many points (GT: pointcloud_1024)
    seed: int = 0                 #: subsampling seed, combined with the pair key
    normalize: bool = True        #: per-cloud bbox centring + longest side 1
    icp: bool = True              #: rigid ICP of the prediction onto the GT
    icp_max_iter: int = 50
    icp_tol: float = 1e-6
    emd: bool = True              #: exact EMD (the expensive step)
    emd_backend: str = "auto"     #: "auto" (lmnet.losses.emd_exact if present, else scipy) | "scipy"

    def __post_init__(self):
        if self.n_points < 1:
            raise ConfigError(f"protocol: n_points must be >= 1, got {self.n_points}")
        if self.icp_max_iter < 1:
            raise ConfigError(f"protocol: icp_max_iter must be >= 1, got {self.icp_max_iter}")
        if self.emd_backend not in ("auto", "scipy", "lmnet"):
            raise ConfigError(f"protocol: emd_backend must be auto, scipy or lmnet, got {self.emd_backend!r}")

    def describe(self) -> str:
        """One line stating every step and whether it was on (printed above every table)."""
        icp = (f"on (point-to-point, SVD, <= {self.icp_max_iter} it, tol {self.icp_tol:g})"
               if self.icp else "OFF")
        return (f"GT pointcloud_1024; prediction subsampled to {self.n_points} (seed {self.seed}); "
                f"per-cloud bbox normalisation (longest side 1): {'on' if self.normalize else 'OFF'}; "
                f"ICP pred->GT: {icp}; CD = mean Euclidean NN dist gt->pred + pred->gt (not squared); "
                f"EMD = exact assignment, mean Euclidean: {'on' if self.emd else 'OFF'}; "
                f"CD^2 (PyTorch3D-style, squared distances) separate column; "
                f"F-score at tau = {', '.join(f'{t:g}' for t in FSCORE_TAUS)} "
                f"({'of the normalised size' if self.normalize else 'raw units'}) after ICP; values x100")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# steps


def _check_cloud(name: str, points) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a point cloud of shape (N, 3) with N >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def pair_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one pair: seeded by ``(seed, crc32(key))``, independent of order/process."""
    return np.random.default_rng([int(seed), zlib.crc32(str(key).encode("utf-8"))])


def subsample(points, n: int, *, seed: int = 0, key: str = "") -> np.ndarray:
    """``(N, 3)`` → ``(n, 3)``: ``n`` distinct points drawn with :func:`pair_rng`; ``N == n`` is
    returned unchanged; ``N < n`` raises ``ValueError``."""
    arr = np.asarray(points)
    if arr.shape[0] < n:
        raise ValueError(f"cannot subsample {arr.shape[0]} points to {n} (pair {key!r})")
    if arr.shape[0] == n:
        return arr
    idx = pair_rng(seed, key).choice(arr.shape[0], size=n, replace=False)
    return arr[np.sort(idx)]


def normalize_cloud(points) -> np.ndarray:
    """``(N, 3)`` → ``(N, 3)`` float64: bounding box centred at the origin, longest side scaled to 1,
    so the cloud lies in ``[-0.5, 0.5]^3`` and touches ±0.5 along its longest axis."""
    arr = _check_cloud("normalize_cloud", points)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    extent = float((hi - lo).max())
    if extent <= 0.0:
        raise ValueError("normalize_cloud: all points coincide; cannot scale to unit size")
    return (arr - (lo + hi) / 2.0) / extent


def kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transform ``dst ≈ src @ R.T + t`` for paired ``(N, 3)`` points.
    Returns ``R (3, 3)`` (a proper rotation, det +1) and ``t (3,)``."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    h = (src - cs).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cd - r @ cs


@dataclass
class IcpResult:
    aligned: np.ndarray   #: (N, 3) the source after the transform
    rotation: np.ndarray  #: (3, 3); aligned = source @ rotation.T + translation
    translation: np.ndarray  #: (3,)
    iterations: int
    converged: bool       #: the improvement dropped below tol before max_iter
    mean_dist: float      #: final mean NN distance source→target (Euclidean)


def icp_reference(source, target, *, max_iter: int = 50, tol: float = 1e-6,
                  target_tree: cKDTree | None = None) -> IcpResult:
    """Straightforward ICP (KD-tree + :func:`kabsch` per iteration): the definition that
    :func:`icp` must reproduce, kept for tests and as the fallback without numba."""
    src = _check_cloud("icp source", source)
    tgt = _check_cloud("icp target", target)
    tree = target_tree if target_tree is not None else cKDTree(tgt)
    r_tot, t_tot = np.eye(3), np.zeros(3)
    cur = src
    dist, idx = tree.query(cur)
    prev = float(dist.mean())
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        r, t = kabsch(cur, tgt[idx])
        cur = cur @ r.T + t
        r_tot, t_tot = r @ r_tot, r @ t_tot + t
        dist, idx = tree.query(cur)
        err = float(dist.mean())
        if prev - err < tol:
            converged = True
            break
        prev = err
    return IcpResult(cur, r_tot, t_tot, it, converged, float(dist.mean()))


def icp(source, target, *, max_iter: int = 50, tol: float = 1e-6, target_tree: cKDTree | None = None) -> IcpResult:
    """Rigid point-to-point ICP moving ``source (N, 3)`` onto ``target (M, 3)``.

    Each iteration matches every source point to its nearest target point, then solves the rigid
    transform by SVD (:func:`kabsch`); rotation + translation only, no scale. Stops after
    ``max_iter`` iterations or when the mean NN distance improves by less than ``tol``.
    Same result as :func:`icp_reference` (to float rounding), computed by a numba kernel with an
    exact uniform-grid NN built once on the target; ``target_tree`` is only used by the fallback
    (no numba).
    """
    src = _check_cloud("icp source", source)
    tgt = _check_cloud("icp target", target)
    if not _kernels_icp.HAVE_NUMBA:
        return icp_reference(src, tgt, max_iter=max_iter, tol=tol, target_tree=target_tree)
    cur, r, t, it, conv, dist = _kernels_icp.icp_grid(np.ascontiguousarray(src), np.ascontiguousarray(tgt),
                                                      int(max_iter), float(tol), GRID_CELLS_PER_POINT)
    return IcpResult(cur, r, t, int(it), bool(conv), float(dist.mean()))


def emd_scipy(a, b) -> float:
    """Exact EMD reference: mean Euclidean distance under the optimal one-to-one matching of
    ``a (N, 3)`` and ``b (N, 3)`` (Hungarian / LAPJV via :func:`scipy.optimize.linear_sum_assignment`)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    a = _check_cloud("emd a", a)
    b = _check_cloud("emd b", b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"EMD needs equal point counts, got {a.shape[0]} and {b.shape[0]}")
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def emd(a, b, backend: str = "auto") -> float:
    """Exact EMD (mean matched Euclidean distance) of two ``(N, 3)`` clouds, raw units.

    ``backend``: ``"lmnet"`` or ``"auto"`` = :func:`lmnet.losses.emd_numpy.emd_exact_pair` (the
    solver of :func:`lmnet.losses.emd.emd_exact`, without torch); ``"scipy"`` = :func:`emd_scipy`
    (the independent reference). Both are exact, so they agree to rounding.
    """
    if backend in ("auto", "lmnet"):
        x = _check_cloud("emd a", a)
        y = _check_cloud("emd b", b)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"EMD needs equal point counts, got {x.shape[0]} and {y.shape[0]}")
        return emd_exact_pair(x, y)
    return emd_scipy(a, b)


def fscore_terms(d_gp: np.ndarray, d_pg: np.ndarray, taus=FSCORE_TAUS) -> dict[str, float]:
    """Precision, recall and F-score of one pair from its NN distances (those of the Chamfer terms):
    ``d_gp (M,)`` from each GT point to the prediction, ``d_pg (N,)`` from each predicted point to
    the GT, Euclidean, in the units of the clouds (normalised: the longest bbox side is 1).

    For each ``tau``: precision ``P`` = fraction of ``d_pg`` <= tau (predicted points near the GT),
    recall ``R`` = fraction of ``d_gp`` <= tau (GT points covered), ``F = 2PR / (P + R)``, 0 when
    ``P + R = 0``. Keys ``precision_<k>``, ``recall_<k>``, ``fscore_<k>`` with ``<k>`` =
    :func:`fscore_key` (``"1pct"``); values in [0, 1] (the tables print ×100)."""
    out: dict[str, float] = {}
    for tau in taus:
        prec = float(np.mean(np.asarray(d_pg) <= tau))
        rec = float(np.mean(np.asarray(d_gp) <= tau))
        k = fscore_key(tau)
        out[f"precision_{k}"], out[f"recall_{k}"] = prec, rec
        out[f"fscore_{k}"] = 2.0 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return out


def evaluate_pair(pred, gt, protocol: Protocol | None = None, key: str = "") -> dict[str, Any]:
    """Run the whole protocol on one pair. ``pred (N, 3)`` with ``N >= n_points``, ``gt (M, 3)``.

    Returns ``{"key", "cd", "cd_gt2pred", "cd_pred2gt", "cd_sq", "emd" (NaN when off),
    "icp_iters", "icp_converged"}`` and :func:`fscore_terms`'s ``precision_/recall_/fscore_1pct``,
    ``_2pct`` in raw units (not ×100). ``icp_iters`` is 0 and
    ``icp_converged`` empty when ICP is off.
    """
    proto = protocol or Protocol()
    p = _check_cloud(f"prediction {key!r}", pred)
    g = _check_cloud(f"ground truth {key!r}", gt)
    p = subsample(p, proto.n_points, seed=proto.seed, key=key)
    if proto.normalize:
        p, g = normalize_cloud(p), normalize_cloud(g)
    rec: dict[str, Any] = {"key": key}
    if proto.icp:
        res = icp(p, g, max_iter=proto.icp_max_iter, tol=proto.icp_tol)
        p = res.aligned
        rec.update(icp_iters=res.iterations, icp_converged=res.converged)
    else:
        rec.update(icp_iters=0, icp_converged="")
    d_gp, d_pg = nn_distances(g, p), nn_distances(p, g)
    rec.update(chamfer_from_distances(d_gp, d_pg))
    rec.update(fscore_terms(d_gp, d_pg))
    if proto.emd:
        if p.shape[0] != g.shape[0]:
            raise ValueError(f"pair {key!r}: EMD needs equal point counts; prediction has {p.shape[0]} "
                             f"after subsampling, GT has {g.shape[0]} (use n_points = GT size)")
        rec["emd"] = emd(p, g, proto.emd_backend)
    else:
        rec["emd"] = float("nan")
    return rec
