"""Chamfer distance and nearest neighbours: every backend against the brute torch.cdist reference."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from lmnet.losses import chamfer_distance, nearest_neighbors
from lmnet.losses import _kernels

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
    x, y = x.cuda().requires_grad_(), y.cuda().requires_grad_()
    out = chamfer_distance(x, y)
    ref = chamfer_distance(x.detach().cpu(), y.detach().cpu(), backend="brute")
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-5, atol=1e-6)
    out.backward()
    assert torch.isfinite(x.grad).all()
