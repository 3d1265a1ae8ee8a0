"""The official (released-code) protocol against a plain reference written here from its
definition: scale each cloud to the padded unit cube, subsample the scaled prediction with
``np.random.permutation(2048)[:1024]`` after ``np.random.seed(1024)``, ICP moving the GT onto the
prediction (brute-force NN, SVD fit, stop on |prev - err| < 1e-10 with prev = 0, final fit from
the original to the moved GT), map the prediction by ``pred @ R - t``, Chamfer as the sum of the two
mean √(squared NN distance), exact EMD by linear_sum_assignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from lmnet.eval import official


# ---------------------------------------------------------------- the plain reference


def ref_scale(cloud: np.ndarray) -> np.ndarray:
    c = cloud.astype(np.float32).astype(np.float64)
    lo, hi = c.min(axis=0), c.max(axis=0)
    side = (hi - lo).max()
    cube_min = (lo + hi) / 2 - side / 2          # bbox padded to a cube around its centre
    return (c - cube_min) / side - 0.5           # scaled by 1/side, min corner at -0.5


def ref_fit(a: np.ndarray, b: np.ndarray):
    """Least-squares R, t with b ≈ a @ R.T + t (SVD of the centred cross-covariance)."""
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:
        vt[2, :] *= -1
        r = vt.T @ u.T
    return r, cb - r @ ca


def ref_icp(a: np.ndarray, b: np.ndarray, tol=1e-10, max_iter=1000):
    src = a.copy()
    prev = 0.0
    for _ in range(max_iter):
        d = cdist(src, b)
        nn = d.argmin(axis=1)
        err = d[np.arange(len(src)), nn].mean()
        r, t = ref_fit(src, b[nn])
        src = src @ r.T + t
        if abs(prev - err) < tol:
            break
        prev = err
    return ref_fit(a, src)


def ref_pair(pred2048: np.ndarray, gt: np.ndarray):
    g = ref_scale(gt)
    p = ref_scale(pred2048)[np.random.permutation(2048)[:1024]]
    r, t = ref_icp(g, p)
    p = p @ r - t                                 # the released quirk
    d2 = cdist(g, p) ** 2
    fwd = np.sqrt(d2.min(axis=1)).mean()
    bwd = np.sqrt(d2.min(axis=0)).mean()
    cost = cdist(p, g)
    rows, cols = linear_sum_assignment(cost)
    return {"cd": fwd + bwd, "fwd": fwd, "bwd": bwd, "emd_exact": cost[rows, cols].mean()}


# ---------------------------------------------------------------- data


def _shape(rng, n):
    """Points on the surface of a random box, stretched and shifted (not unit-scaled)."""
    pts = rng.uniform(-1, 1, (n, 3))
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = np.sign(pts[np.arange(n), axis])
    return pts * rng.uniform(0.2, 1.0, 3) * 3.0 + rng.normal(size=3)


def _rot(angle, axis=2):
    c, s = np.cos(angle), np.sin(angle)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(7)
    gts, preds = [], []
    for k in range(3):
        gt = _shape(rng, 1024)
        base = _shape(rng, 2048) if k == 2 else gt[rng.integers(0, 1024, 2048)]  # last pair: another shape
        pred = base @ _rot(0.15 * (k + 1)).T * 1.3 + rng.normal(0, 0.03, (2048, 3)) + [0.5, -0.2, 0.1]
        gts.append(gt.astype(np.float32))
        preds.append(pred.astype(np.float32))
    return np.stack(preds), np.stack(gts)


@pytest.fixture(scope="module")
def both(pairs):
    preds, gts = pairs
    state = np.random.get_state()
    np.random.seed(1024)
    ref = [ref_pair(p, g) for p, g in zip(preds, gts)]
    np.random.set_state(state)
    return official.evaluate_pairs(preds, gts, seed=1024), ref


# ---------------------------------------------------------------- tests


def test_scale_matches_the_definition(pairs):
    preds, gts = pairs
    for c in (preds[0], gts[1]):
        s = official.scale_released(c)
        assert s.dtype == np.float32
        np.testing.assert_allclose(s, ref_scale(c), atol=1e-6)
        assert s.min() == pytest.approx(-0.5, abs=1e-6)
        assert (s.max(axis=0) - s.min(axis=0)).max() == pytest.approx(1.0, abs=1e-6)


def test_subsets_follow_the_seeded_global_rng():
    state = np.random.get_state()
    np.random.seed(1024)
    expected = [np.random.permutation(2048)[:1024] for _ in range(3)]
    np.random.set_state(state)
    got = official.subsample_indices(3, 2048, 1024, seed=1024)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    # an independent stream per key, and the caller's global RNG is not touched
    before = np.random.get_state()[1].copy()
    s = official.SubsetStream(1024)
    a0, b0, a1 = s.draw("a"), s.draw("b"), s.draw("a")
    np.testing.assert_array_equal(a0, expected[0])
    np.testing.assert_array_equal(b0, expected[0])
    np.testing.assert_array_equal(a1, expected[1])
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("name", ["cd", "fwd", "bwd", "emd_exact"])
def test_fast_equals_reference_per_pair(both, name):
    got, ref = both
    np.testing.assert_allclose(got[name], [r[name] for r in ref], rtol=0, atol=1e-6)


def test_auction_never_below_exact_and_within_20_percent(both):
    got, _ = both
    assert (got["emd_auction"] >= got["emd_exact"] - 1e-9).all()
    assert (got["emd_auction"] <= 1.2 * got["emd_exact"]).all()


def test_icp_quirk_differs_from_the_exact_inverse(pairs):
    """The released map pred @ R - t is not the inverse of the fitted transform: on a pair with a
    rotation and translation left after scaling it gives a larger Chamfer than (pred - t) @ R."""
    preds, gts = pairs
    g = official.scale_released(gts[0]).astype(np.float64)
    p = official.scale_released(preds[0])[official.subsample_indices(1)[0]].astype(np.float64)
    r, t, _ = official.icp_released(g, p)
    quirk = official.chamfer_released(official.apply_released_inverse(p, r, t), g)[0]
    exact = official.chamfer_released((p - t) @ r, g)[0]
    assert np.abs(t).max() > 1e-4 and quirk > exact


def test_auction_is_exact_on_a_permuted_copy():
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, (300, 3)).astype(np.float32)
    perm = rng.permutation(300)
    match, bids = official._k.auction_match(x, x[perm])
    assert bids >= 300
    np.testing.assert_array_equal(perm[match], np.arange(300))
    assert official.auction_emd(x, x[perm]) == 0.0


def test_released_csv_layout():
    text = official.released_csv(0.05, 0.02, 0.03, 0.07)
    assert text.splitlines() == ["Chamfer, Fwd, Bwd, Emd", "0.05000000, 0.02000000, 0.03000000, 0.07000000"]


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="preds"):
        official.evaluate_pairs(np.zeros((2, 2048, 3)), np.zeros((3, 1024, 3)))
    with pytest.raises(ValueError, match="coincide"):
        official.scale_released(np.zeros((5, 3)))


def ref_auction(x, y):
    """The released auction schedule written out plainly (float32 costs and prices): bidders from a
    circular queue, price += second - best + eps, eps x100 after every 40 n bids (cap 1), stop after
    40 n bids at eps = 1."""
    n = len(x)
    c = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1, dtype=np.float32)).astype(np.float32)
    price = np.zeros(n, np.float32)
    owner = [-1] * n
    queue = list(range(n))
    eps, count = np.float32(1e-4), 0
    while queue:
        i = queue.pop(0)
        v = c[i] + price
        j = int(np.argmin(v))
        second = np.min(np.delete(v, j)) if n > 1 else v[j]
        price[j] += second - v[j] + eps
        if owner[j] != -1:
            queue.append(owner[j])
        owner[j] = i
        count += 1
        if count == 40 * n:
            if eps == np.float32(1.0):
                queue = []
            eps, count = min(np.float32(1.0), np.float32(eps * np.float32(100))), 0
    match = np.full(n, -1)
    for j, i in enumerate(owner):
        if i != -1:
            match[i] = j
    return match


@pytest.mark.parametrize("case", ["uniform", "near", "clustered", "line"])
def test_auction_kernel_equals_the_plain_schedule(case):
    """Same matching as the plain loop; "clustered" and "line" need more than 40 n bids at
    eps = 1e-4, so the eps increase is exercised too."""
    n = 40
    rng = np.random.default_rng(0)
    y = rng.uniform(-0.5, 0.5, (n, 3)).astype(np.float32)
    x = {"uniform": rng.uniform(-0.5, 0.5, (n, 3)),
         "near": y[rng.permutation(n)] + rng.normal(0, 0.05, (n, 3)),
         "clustered": rng.normal(0, 1e-3, (n, 3)),
         "line": np.stack([np.linspace(0, 0.01, n), np.zeros(n), np.zeros(n)], 1)}[case].astype(np.float32)
    if case == "line":
        y = np.stack([np.linspace(0, 1, n), np.zeros(n), np.zeros(n)], 1).astype(np.float32)
    match, bids = official._k.auction_match(x, y)
    np.testing.assert_array_equal(match, ref_auction(x, y))
    assert sorted(match) == list(range(n))
    if case in ("clustered", "line"):
        assert bids > 40 * n
