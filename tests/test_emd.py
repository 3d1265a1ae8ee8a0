"""Exact EMD against scipy's linear_sum_assignment; approximate EMD against exact."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from lmnet.losses.emd import emd_approx, emd_exact, emd_exact_matching


def _lsa(x, y):
    c = cdist(x, y)
    r, col = linear_sum_assignment(c)
    return c[r, col].mean()


def _box_surface(rng, n, lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    p = lo + rng.random((n, 3)) * (hi - lo)
    face = rng.integers(0, 6, n)
    ax = face // 2
    p[np.arange(n), ax] = np.where(face % 2 == 1, hi[ax], lo[ax])
    return p


def _chair(rng, n):
    """Points on the surfaces of a seat, a back and four legs (a real-looking cloud)."""
    parts = [([-.25, -.05, -.25], [.25, 0, .25]), ([-.25, 0, .2], [.25, .5, .25]),
             ([-.25, -.5, -.25], [-.2, -.05, -.2]), ([.2, -.5, -.25], [.25, -.05, -.2]),
             ([-.25, -.5, .2], [-.2, -.05, .25]), ([.2, -.5, .2], [.25, -.05, .25])]
    cnt = rng.multinomial(n, [0.35, 0.33, 0.08, 0.08, 0.08, 0.08])
    return np.concatenate([_box_surface(rng, c, lo, hi) for c, (lo, hi) in zip(cnt, parts)])


def _sphere(rng, n):
    p = rng.normal(size=(n, 3))
    return 0.5 * p / np.linalg.norm(p, axis=1, keepdims=True)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 300, 1024])
def test_exact_matches_linear_sum_assignment(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3))
    y = rng.normal(size=(n, 3)) * 0.8 + 0.3
    assert abs(float(emd_exact(x, y)) - _lsa(x, y)) < 1e-9


def test_exact_real_looking_clouds():
    rng = np.random.default_rng(11)
    n = 512
    chair = _chair(rng, n)
    cases = [(chair, _chair(rng, n) + 0.01 * rng.normal(size=(n, 3))),
             (chair, _sphere(rng, n)),
             (0.05 * rng.normal(size=(n, 3)), chair)]
    for x, y in cases:
        assert abs(float(emd_exact(x, y)) - _lsa(x, y)) < 1e-9


def test_exact_with_ties_and_duplicates():
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3), -1).reshape(-1, 3)  # integer lattice: ties
    x = np.concatenate([grid, grid[:16]])  # duplicated points
    y = np.concatenate([grid + np.array([1.0, 0, 0]), grid[rng.permutation(64)[:16]]])
    val = float(emd_exact(x, y))
    assert abs(val - _lsa(x, y)) < 1e-9
    perm = emd_exact_matching(x, y)
    assert sorted(perm.tolist()) == list(range(len(x)))
    assert abs(np.linalg.norm(x - y[perm], axis=1).mean() - val) < 1e-12


def test_permutation_of_itself_is_zero():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 3))
    p = rng.permutation(500)
    assert float(emd_exact(x, x[p])) == 0.0
    perm = emd_exact_matching(x, x[p])
    np.testing.assert_array_equal(p[perm], np.arange(500))
    same = np.zeros((10, 3))
    assert float(emd_exact(same, same)) == 0.0


def test_batched_types_and_shapes():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 100, 3))
    y = rng.normal(size=(3, 100, 3))
    ref = np.array([_lsa(x[k], y[k]) for k in range(3)])
    out = emd_exact(x, y)
    assert isinstance(out, np.ndarray) and out.shape == (3,) and out.dtype == np.float64
    np.testing.assert_allclose(out, ref, atol=1e-9)
    t = emd_exact(torch.as_tensor(x).float(), torch.as_tensor(y).float())
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.shape == (3,)
    np.testing.assert_allclose(t.numpy(), ref, atol=1e-6)
    perm = emd_exact_matching(torch.as_tensor(x), torch.as_tensor(y))
    assert isinstance(perm, torch.Tensor) and perm.shape == (3, 100)
    single = emd_exact(x[0], y[0])
    assert np.ndim(single) == 0 and abs(float(single) - ref[0]) < 1e-9
    with pytest.raises(ValueError, match="equal shapes"):
        emd_exact(x[:, :50], y)


def test_approx_within_two_percent_at_2048():
    rng = np.random.default_rng(6)
    n = 2048
    chair = _chair(rng, n)
    deformed = chair + 0.03 * np.sin(3 * chair[:, [1, 2, 0]] + 1.0)
    xs = np.stack([chair, chair, _sphere(rng, n)])
    ys = np.stack([_chair(rng, n) + 0.01 * rng.normal(size=(n, 3)), deformed[rng.permutation(n)],
                   _chair(rng, n)])
    exact = emd_exact(xs, ys)
    approx = emd_approx(torch.as_tensor(xs), torch.as_tensor(ys), reduction="none").numpy()
    rel = approx / exact - 1
    assert (rel >= -1e-9).all() and (rel <= 0.02).all(), rel


def test_approx_gradient_is_matched_distance_gradient():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(2, 200, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(2, 200, 3)), requires_grad=True)
    loss = emd_approx(x, y, reduction="sum")
    loss.backward()
    # reference: the optimal matching, distances recomputed by hand with autograd
    perm = torch.as_tensor(emd_exact_matching(x.detach(), y.detach()))
    x2, y2 = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    ref = sum((x2[k] - y2[k][perm[k]]).norm(dim=1).mean() for k in range(2))
    ref.backward()
    # default rel_eps: value within the documented bound; rel_eps → 0: the optimum, same gradient
    assert loss.item() >= ref.item() - 1e-9 and loss.item() <= ref.item() * 1.01
    tight = emd_approx(x.detach().clone().requires_grad_(), y, reduction="sum", rel_eps=1e-9)
    assert abs(tight.item() - ref.item()) < 1e-9
    xt = x.detach().clone().requires_grad_()
    yt = y.detach().clone().requires_grad_()
    emd_approx(xt, yt, reduction="sum", rel_eps=1e-9).backward()
    torch.testing.assert_close(xt.grad, x2.grad)
    torch.testing.assert_close(yt.grad, y2.grad)


def test_approx_reductions_and_zero():
    x = torch.randn(3, 50, 3)
    none = emd_approx(x, x[:, torch.randperm(50)], reduction="none")
    assert none.shape == (3,) and (none == 0).all()
    y = torch.randn(3, 50, 3)
    per = emd_approx(x, y, reduction="none")
    torch.testing.assert_close(emd_approx(x, y), per.mean())
    torch.testing.assert_close(emd_approx(x, y, reduction="sum"), per.sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs():
    """On CUDA (the torch auction on the device): values and gradients against the CPU kernels."""
    g = torch.Generator().manual_seed(0)
    xc = torch.randn(2, 128, 3, generator=g).double()
    yc = torch.randn(2, 128, 3, generator=g).double()
    x = xc.cuda().requires_grad_()
    y = yc.cuda().requires_grad_()
    loss = emd_approx(x, y)
    loss.backward()
    assert loss.device.type == "cuda" and x.grad.device.type == "cuda"
    ref = emd_exact(xc, yc)  # numba, CPU
    assert ref.mean().item() - 1e-9 <= loss.item() <= 1.01 * ref.mean().item()
    exact = emd_exact(x.detach(), y.detach())
    assert exact.device.type == "cuda"
    torch.testing.assert_close(exact.cpu(), ref, rtol=0, atol=1e-9)
    xt, yt = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    emd_approx(xt, yt, rel_eps=1e-9).backward()  # the optimum: the same gradient as on the CPU
    xr, yr = xc.clone().requires_grad_(), yc.clone().requires_grad_()
    emd_approx(xr, yr, rel_eps=1e-9).backward()
    torch.testing.assert_close(xt.grad.cpu(), xr.grad)
    torch.testing.assert_close(yt.grad.cpu(), yr.grad)


# ---- the exact solver's kernels against brute force -------------------------------------------

from lmnet.losses import _kernels_emd as _kernels  # noqa: E402
from lmnet.losses.kernels import bid_scan_f32  # noqa: E402

needs_numba = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")


@needs_numba
def test_bid_scan_f32_against_sort():
    rng = np.random.default_rng(30)
    for n in (1, 2, 3, 17, 64, 1000):
        c = rng.random(n).astype(np.float32)
        p = (rng.random(n) * 0.5).astype(np.float32)
        if n >= 3:
            c[1] = c[n - 1] = 0.0  # a tie for the best
            p[1] = p[n - 1] = 0.0
        buf = np.empty(n, np.float32)
        w1, w2, j1 = bid_scan_f32(c, p, buf, buf.view(np.int32))
        w = c + p
        srt = np.sort(w)
        assert w1 == srt[0] and w[j1] == srt[0]
        assert w2 == (srt[1] if n > 1 else srt[0])


def _cost(x, y):
    c = np.empty((len(x), len(y)))
    c32 = np.empty((len(x), len(y)), np.float32)
    _kernels.dense_cost_into(x, y, c, c32)
    return c, c32


@needs_numba
def test_dense_cost_into_matches_cdist():
    rng = np.random.default_rng(31)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    c, c32 = _cost(x, y)
    np.testing.assert_allclose(c, cdist(x, y), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(c32, c.astype(np.float32))


@needs_numba
def test_auction_f32_eps_complementary_slackness():
    rng = np.random.default_rng(32)
    x = _chair(rng, 300)
    y = _chair(rng, 300) + 0.01 * rng.normal(size=(300, 3))
    c, c32 = _cost(x, y)
    eps = 1e-3
    col4row, p, nbids = _kernels.auction_f32(c32, eps, 0.05, 5.0)
    assert sorted(col4row.tolist()) == list(range(300)) and nbids >= 300
    w = c32.astype(np.float64) + p[None, :]
    own = w[np.arange(300), col4row]
    # ε-CS up to float32 rounding of the bid values
    assert (own <= w.min(1) + eps + 1e-6).all()


@needs_numba
def test_exact_finish_from_arbitrary_start_is_optimal():
    """The finishing step alone must reach the optimum from any matching and any duals."""
    rng = np.random.default_rng(33)
    grid = np.stack(np.meshgrid(*[np.arange(3.0)] * 3), -1).reshape(-1, 3)
    cases = [(rng.normal(size=(n, 3)), rng.normal(size=(n, 3))) for n in (1, 2, 5, 33, 150)]
    cases.append((grid, grid[rng.permutation(27)] + np.array([1.0, 0.0, 0.0])))  # many ties
    for x, y in cases:
        n = len(x)
        c, _ = _cost(x, y)
        r, col = linear_sum_assignment(c)
        best = c[r, col].sum()
        for v in (np.zeros(n), rng.normal(size=n), -rng.random(n) * 5):
            perm, u, vv = _kernels.dense_ssp_finish_simd(c, rng.permutation(n), v.copy(), 1e-13)
            assert sorted(perm.tolist()) == list(range(n))
            assert abs(c[np.arange(n), perm].sum() - best) < 1e-9
            # the certificate: dual feasible on all pairs, tight on the matching
            red = c - u[:, None] - vv[None, :]
            assert red.min() > -1e-9 and np.abs(red[np.arange(n), perm]).max() < 1e-9


@pytest.mark.parametrize("kind", ["noisy resample", "other chair", "uniform"])
def test_exact_eval_like_pairs_1024(kind):
    """The evaluation's situation: 1024 vs 1024, value equal to LSA's to 1e-9."""
    rng = np.random.default_rng(34)
    gt = _chair(rng, 1024)
    if kind == "noisy resample":
        pred = _chair(rng, 1024) + 0.01 * rng.normal(size=(1024, 3))
    elif kind == "other chair":
        pred = _chair(rng, 1024) * np.array([1.1, 0.9, 1.0]) + 0.005 * rng.normal(size=(1024, 3))
    else:
        pred = rng.random((1024, 3)) - 0.5
    assert abs(float(emd_exact(pred, gt)) - _lsa(pred, gt)) < 1e-9
