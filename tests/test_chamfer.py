"""Chamfer distance and nearest neighbours: every backend against the brute torch.cdist reference."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from lmnet.losses.chamfer import chamfer_distance, nearest_neighbors
from lmnet.losses import _kernels_nn as _kernels

CPU_BACKENDS = ["kdtree", "chunked"] + (["grid"] if _kernels.HAVE_NUMBA else [])


def _pair(b, n, m, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, 3, generator=g, dtype=dtype)
    y = torch.randn(b, m, 3, generator=g, dtype=dtype) * 0.7 + 0.2
    return x, y


def _reference(x, y, squared, weights):
    """Brute force by hand: full distance matrix, min both ways, weighted sum of means."""
    d2 = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)
    d = d2 if squared else d2.sqrt()
    return weights[0] * d.min(2).values.mean(1) + weights[1] * d.min(1).values.mean(1)


@pytest.mark.parametrize("backend", CPU_BACKENDS + ["brute"])
@pytest.mark.parametrize("squared", [False, True])
def test_values_and_gradients_match_reference(backend, squared):
    x, y = _pair(3, 70, 45, seed=1, dtype=torch.float64)
    weights = (1.0, 0.5)
    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    ref = _reference(xr, yr, squared, weights)
    ref.sum().backward()
    xb, yb = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = chamfer_distance(xb, yb, squared=squared, weights=weights, reduction="none",
                           backend=backend)
    assert out.shape == (3,)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    torch.testing.assert_close(xb.grad, xr.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(yb.grad, yr.grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_large_n_neq_m(backend):
    x, y = _pair(2, 1500, 900, seed=2)
    ref = chamfer_distance(x, y, backend="brute", reduction="none")
    out = chamfer_distance(x, y, backend=backend, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_reductions_and_weights():
    x, y = _pair(4, 30, 20, seed=3)
    per = chamfer_distance(x, y, reduction="none")
    torch.testing.assert_close(chamfer_distance(x, y), per.mean())
    torch.testing.assert_close(chamfer_distance(x, y, reduction="sum"), per.sum())
    a = chamfer_distance(x, y, reduction="none", weights=(1.0, 0.0))
    b = chamfer_distance(x, y, reduction="none", weights=(0.0, 1.0))
    torch.testing.assert_close(per, a + b)
    # the original TF weighting 1 : 0.5
    torch.testing.assert_close(chamfer_distance(x, y, reduction="none", weights=(1.0, 0.5)), a + 0.5 * b)
    # symmetric in its arguments with equal weights
    torch.testing.assert_close(chamfer_distance(y, x, reduction="none"), per)


def test_gradcheck_float64_tiny():
    x, y = _pair(2, 6, 5, seed=4, dtype=torch.float64)
    for squared in (False, True):
        fn = lambda a, b: chamfer_distance(a, b, squared=squared, reduction="none")  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(), y.clone().requires_grad_()))


def test_zero_distance_gives_zero_gradient_not_nan():
    x, _ = _pair(2, 40, 40, seed=5)
    x = x.requires_grad_()
    y = x.detach().clone()[:, torch.randperm(40)].requires_grad_()
    loss = chamfer_distance(x, y)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    assert (x.grad == 0).all()


def test_duplicate_points_ties():
    x, y = _pair(1, 50, 30, seed=6)
    y = torch.cat([y, y], dim=1)  # every y twice: ties in the argmin
    for be in CPU_BACKENDS:
        torch.testing.assert_close(chamfer_distance(x, y, backend=be), chamfer_distance(x, y, backend="brute"))


def test_degenerate_clouds():
    # all points of y at one spot, x far outside y's bounding box, a single point
    x = torch.tensor([[[10.0, -3.0, 2.0], [0.0, 0.0, 0.0], [-7.0, 1.0, 50.0]]])
    y = torch.zeros(1, 5, 3)
    for be in CPU_BACKENDS:
        torch.testing.assert_close(chamfer_distance(x, y, backend=be), chamfer_distance(x, y, backend="brute"))
    one = torch.ones(1, 1, 3)
    for be in CPU_BACKENDS:
        torch.testing.assert_close(chamfer_distance(one, x, backend=be), chamfer_distance(one, x, backend="brute"))


def test_nearest_neighbors_numpy_and_torch():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 3))
    y = rng.normal(size=(200, 3)) * 0.5
    d, i = nearest_neighbors(x, y)
    dr, ir = cKDTree(y).query(x)
    assert isinstance(d, np.ndarray) and d.shape == (300,) and d.dtype == np.float64
    np.testing.assert_array_equal(i, ir)
    np.testing.assert_allclose(d, dr, rtol=1e-12)
    xt, yt = torch.as_tensor(x[None]).float(), torch.as_tensor(y[None]).float()
    for be in CPU_BACKENDS + ["brute"]:
        dt, it = nearest_neighbors(xt, yt, backend=be)
        assert dt.shape == (1, 300) and it.dtype == torch.long
        np.testing.assert_allclose(dt[0].numpy(), dr, rtol=1e-5, atol=1e-6)
    big = rng.normal(size=(3000, 3))  # one large query set: split across threads
    np.testing.assert_array_equal(nearest_neighbors(big, y)[1], cKDTree(y).query(big)[1])


def test_bad_inputs_raise_clear_errors():
    x, y = _pair(2, 5, 5)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        chamfer_distance(x[0], y[0])
    with pytest.raises(ValueError, match="batch sizes differ"):
        chamfer_distance(x, y[:1])
    with pytest.raises(ValueError, match="backend 'nope'"):
        chamfer_distance(x, y, backend="nope")
    with pytest.raises(ValueError, match="reduction"):
        chamfer_distance(x, y, reduction="avg")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_chunked_matches_brute():
    x, y = _pair(4, 3000, 2000, seed=8)
    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    x, y = x.cuda().requires_grad_(), y.cuda().requires_grad_()
    out = chamfer_distance(x, y)
    ref = chamfer_distance(xr, yr, backend="brute")
    torch.testing.assert_close(out.cpu(), ref.detach(), rtol=1e-5, atol=1e-6)
    out.backward()
    ref.backward()
    torch.testing.assert_close(x.grad.cpu(), xr.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(y.grad.cpu(), yr.grad, rtol=1e-4, atol=1e-6)


# ---- the fused grid path: kernels against brute force ------------------------------------------


def _surface_like(rng, b, n):
    """Points on a few axis-aligned planes (thin, clustered: the grid's hard case) plus noise."""
    p = rng.random((b, n, 3))
    ax = rng.integers(0, 3, (b, n))
    p[np.arange(b)[:, None], np.arange(n)[None, :], ax] = rng.integers(0, 3, (b, n)) * 0.5
    return p + 1e-3 * rng.normal(size=p.shape)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_nn_kernel_against_brute_force(dtype):
    rng = np.random.default_rng(20)
    cases = [(rng.normal(size=(3, 500, 3)), rng.normal(size=(3, 300, 3)) * 0.3 + 1.0),  # y far away
             (_surface_like(rng, 2, 700), _surface_like(rng, 2, 400)),
             (rng.normal(size=(1, 200, 3)), np.repeat(rng.normal(size=(1, 7, 3)), 5, axis=1))]  # duplicates
    for q, r in cases:
        q, r = q.astype(dtype), r.astype(dtype)
        idx = np.empty(q.shape[:2], np.int64)
        d2 = np.empty(q.shape[:2])
        _kernels.grid_nn_serial(q, r, 1.0, idx, d2)
        q64, r64 = q.astype(np.float64), r.astype(np.float64)
        full = ((q64[:, :, None, :] - r64[:, None, :, :]) ** 2).sum(-1)
        np.testing.assert_allclose(d2, full.min(2), rtol=1e-12, atol=1e-15)
        got = np.take_along_axis(full, idx[:, :, None], 2)[:, :, 0]
        np.testing.assert_allclose(got, full.min(2), rtol=1e-12, atol=1e-15)  # ties: any argmin


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
@pytest.mark.parametrize("squared", [False, True])
def test_grid_float32_values_and_gradients_match_autograd_brute(squared):
    rng = np.random.default_rng(21)
    x = torch.tensor(_surface_like(rng, 4, 600), dtype=torch.float32)
    y = torch.tensor(_surface_like(rng, 4, 450), dtype=torch.float32)
    weights = (1.0, 0.5)
    xr, yr = x.double().requires_grad_(), y.double().requires_grad_()
    ref = _reference(xr, yr, squared, weights)
    (ref * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()  # non-uniform upstream grad
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = chamfer_distance(xg, yg, squared=squared, weights=weights, reduction="none", backend="grid")
    assert out.dtype == torch.float32 and out.shape == (4,)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5, atol=1e-7)
    (out * torch.arange(1.0, 5.0)).sum().backward()
    assert xg.grad.dtype == torch.float32 and yg.grad.dtype == torch.float32
    torch.testing.assert_close(xg.grad.double(), xr.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(yg.grad.double(), yr.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
def test_grid_mixed_dtypes_noncontiguous_no_grad_and_one_thread():
    x, y = _pair(3, 120, 80, seed=22, dtype=torch.float64)
    ref = chamfer_distance(x, y, backend="brute", reduction="none")
    # float32 x with float64 y: computed in float64, each gradient in its input's dtype
    x32 = x.float().requires_grad_()
    y64 = y.clone().requires_grad_()
    out = chamfer_distance(x32, y64, reduction="none", backend="grid")
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, chamfer_distance(x32.detach().double(), y, reduction="none",
                                                     backend="brute"), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    assert x32.grad.dtype == torch.float32 and y64.grad.dtype == torch.float64
    # non-contiguous inputs, no autograd
    xt = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not xt.is_contiguous()
    torch.testing.assert_close(chamfer_distance(xt, y, reduction="none", backend="grid"), ref)
    # one thread: same result
    nthreads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.testing.assert_close(chamfer_distance(x, y, reduction="none", backend="grid"), ref)
    finally:
        torch.set_num_threads(nthreads)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
def test_value_grad_kernel_against_hand_formula():
    rng = np.random.default_rng(23)
    x = rng.normal(size=(2, 30, 3))
    y = rng.normal(size=(2, 20, 3))
    x[0, 0] = y[0, 3]  # one zero distance: gradient 0, not NaN
    full = np.linalg.norm(x[:, :, None] - y[:, None], axis=-1)
    ixy, iyx = full.argmin(2), full.argmin(1)
    per = np.empty(2)
    gx, gy = np.empty_like(x), np.empty_like(y)
    _kernels.chamfer_value_grad(x, y, ixy, iyx, False, 1.0, 0.5, True, per, gx, gy)
    np.testing.assert_allclose(per, full.min(2).mean(1) + 0.5 * full.min(1).mean(1), rtol=1e-13)
    hx, hy = np.zeros_like(x), np.zeros_like(y)
    for k in range(2):
        for i in range(30):
            e = x[k, i] - y[k, ixy[k, i]]
            d = np.linalg.norm(e)
            g = e / d / 30 if d > 0 else 0 * e
            hx[k, i] += g
            hy[k, ixy[k, i]] -= g
        for j in range(20):
            e = y[k, j] - x[k, iyx[k, j]]
            d = np.linalg.norm(e)
            g = 0.5 * e / d / 20 if d > 0 else 0 * e
            hy[k, j] += g
            hx[k, iyx[k, j]] -= g
    np.testing.assert_allclose(gx, hx, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gy, hy, rtol=1e-12, atol=1e-15)
    assert np.isfinite(gx).all()


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
def test_grid_half_precision_inputs():
    """bfloat16 / float16 (CPU autocast): computed in float32, gradients in the input dtype."""
    x, y = _pair(2, 100, 90, seed=24)
    ref = chamfer_distance(x, y, reduction="none", backend="brute")
    for dt in (torch.bfloat16, torch.float16):
        xh, yh = x.to(dt).requires_grad_(), y.to(dt).requires_grad_()
        out = chamfer_distance(xh, yh, reduction="none", backend="grid")
        torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=1e-2)
        out.sum().backward()
        assert xh.grad.dtype == dt and yh.grad.dtype == dt and torch.isfinite(xh.grad.float()).all()
