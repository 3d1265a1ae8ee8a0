"""Fréchet distance and kernel distance between two sets of image features (docs/fid.md).

Features are rows: ``acts`` is ``(N, D)`` (N images, D features; 2048 for Inception-v3's pool3).
Everything is computed in float64 with NumPy / SciPy (no torch), so an evaluation worker can import
this module cheaply.

- :func:`activation_statistics`: ``(mu (D,), sigma (D, D))``, sigma = ``np.cov(acts, rowvar=False)``
  (the unbiased sample covariance, divided by N − 1), as pytorch-fid and convmesh compute them.
- :func:`frechet_distance`: ``|mu1 − mu2|² + tr(S1) + tr(S2) − 2 tr((S1 S2)^½)``, pytorch-fid's
  algorithm (its regularised fallback for a singular product included, with the ``warnings`` import
  the original lacks).
- :func:`kernel_inception_distance`: the unbiased MMD² with the cubic polynomial kernel, over random
  subsets (Bińkowski et al. 2018).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

#: the largest imaginary part tolerated on the diagonal of sqrtm(S1 S2) (pytorch-fid's bound)
IMAGINARY_TOLERANCE = 1e-3


def _features(acts, name: str) -> np.ndarray:
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 2:
        raise ValueError(f"{name}: expected features (N, D), got shape {acts.shape}")
    if not np.all(np.isfinite(acts)):
        raise ValueError(f"{name}: features hold NaN or infinite values")
    return acts


def activation_statistics(acts) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(N, D)`` → ``(mu (D,), sigma (D, D))`` in float64. ``sigma`` is
    ``np.cov(acts, rowvar=False)``: the sample covariance divided by N − 1, so N ≥ 2."""
    acts = _features(acts, "activation_statistics")
    if acts.shape[0] < 2:
        raise ValueError(f"activation_statistics: a covariance needs at least 2 feature rows, got {acts.shape[0]}")
    return acts.mean(axis=0), np.cov(acts, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """The Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ``d² = |mu1 − mu2|² + tr(sigma1) + tr(sigma2) − 2 tr(sqrtm(sigma1 · sigma2))``

    as pytorch-fid computes it (``scipy.linalg.sqrtm``). When the square root is not finite (a
    singular product), ``eps`` is added to both diagonals and the root taken again, with a
    :class:`RuntimeWarning`. A complex root is accepted when the imaginary parts of its diagonal are
    below :data:`IMAGINARY_TOLERANCE` (its real part is used), else ``ValueError``. The result is the
    squared distance that FID tables report (not its square root)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"frechet_distance: mean vectors of shapes {mu1.shape} and {mu2.shape}; expected two (D,)")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: covariances of shapes {sigma1.shape} and {sigma2.shape}; expected ({d}, {d})")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        warnings.warn(f"frechet_distance: sqrtm(sigma1 · sigma2) is singular; adding {eps} to the diagonals",
                      RuntimeWarning, stacklevel=2)
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_TOLERANCE):
            raise ValueError(f"frechet_distance: sqrtm(sigma1 · sigma2) has an imaginary component of "
                             f"{np.max(np.abs(covmean.imag)):.3g} (expected < {IMAGINARY_TOLERANCE})")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel ``k(x, y) = (x·y / D + 1)³`` between the rows of ``x (M, D)`` and ``y (K, D)`` →
    ``(M, K)``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² estimate between two samples of equal size m (diagonals of the within-set
    kernel matrices left out)."""
    m = x.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_inception_distance(acts1, acts2, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD² between two feature sets ``(N1, D)`` and ``(N2, D)`` with the cubic
    polynomial kernel :func:`polynomial_kernel`, averaged over ``subsets`` random draws.

    Each draw takes ``m = min(subset_size, N1, N2)`` rows of each set without replacement
    (independently per set and per draw; NumPy PCG64 seeded with ``seed``) and computes

    ``MMD²_u = Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_{i,j} k(x_i, y_j)/m²``

    → ``(mean, std)`` over the draws (std with ddof=0, as torch-fidelity reports it). The estimate
    is unbiased: its expectation is 0 when both sets come from one distribution, so a single value
    can be slightly negative. Tables usually print it ×1000."""
    x, y = _features(acts1, "kernel_inception_distance"), _features(acts2, "kernel_inception_distance")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"kernel_inception_distance: feature sizes {x.shape[1]} and {y.shape[1]} differ")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2 or subsets < 1:
        raise ValueError(f"kernel_inception_distance: needs subsets ≥ 1 and ≥ 2 rows per subset, "
                         f"got subsets={subsets}, m={m}")
    rng = np.random.Generator(np.random.PCG64(seed))
    values = [_unbiased_mmd2(x[rng.choice(x.shape[0], m, replace=False)],
                             y[rng.choice(y.shape[0], m, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
