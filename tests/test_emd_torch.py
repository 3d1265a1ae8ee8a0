"""The torch auction EMD (lmnet.losses.auction, backend="torch") against scipy's
linear_sum_assignment, on the CPU so that CI covers its logic; the same checks on CUDA where a GPU
is present; and the dispatch: tensors on a non-CPU device take the torch path, which never copies
them to the host."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from lmnet.losses import auction, emd
from lmnet.losses.emd import emd_approx, emd_exact, emd_exact_matching

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The auction's many tiny CPU ops are several times slower with OpenMP threads on a busy
    machine; one thread keeps these tests at seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lsa(x, y):
    c = cdist(x, y)
    r, col = linear_sum_assignment(c)
    return c[r, col].mean(), col


def _exact_bound(x, y):
    """The torch exact mode's documented tolerance on the mean cost: cmax·(N+1)·2^-46."""
    return cdist(x, y).max() * (len(x) + 1) * 2.0 ** -46


def _chair(rng, n):
    """Points on a seat, a back and four legs (boxes' surfaces)."""
    parts = [([-.25, -.05, -.25], [.25, 0, .25]), ([-.25, 0, .2], [.25, .5, .25]),
             ([-.25, -.5, -.25], [-.2, -.05, -.2]), ([.2, -.5, .2], [.25, -.05, .25])]
    cnt = rng.multinomial(n, [0.4, 0.4, 0.1, 0.1])
    out = []
    for c, (lo, hi) in zip(cnt, parts):
        lo, hi = np.asarray(lo), np.asarray(hi)
        p = lo + rng.random((c, 3)) * (hi - lo)
        face = rng.integers(0, 6, c)
        p[np.arange(c), face // 2] = np.where(face % 2 == 1, hi[face // 2], lo[face // 2])
        out.append(p)
    return np.concatenate(out)


# 100 random pairs, batched by size: mostly small N (fast), a few large
_SIZES = [(8, 30), (16, 24), (33, 20), (64, 14), (128, 8), (256, 3), (1024, 1)]


@pytest.mark.parametrize("n,b", _SIZES)
def test_exact_equals_linear_sum_assignment(n, b):
    assert sum(k for _, k in _SIZES) == 100
    rng = np.random.default_rng(n)
    x = rng.normal(size=(b, n, 3))
    y = rng.normal(size=(b, n, 3)) * rng.uniform(0.2, 1.5) + rng.uniform(-1, 1, 3)
    if n >= 128:  # shape-like pairs, as evaluation sees them
        x[0], y[0] = _chair(rng, n), _chair(rng, n) + 0.01 * rng.normal(size=(n, 3))
    perm = emd_exact_matching(torch.as_tensor(x), torch.as_tensor(y), backend="torch")
    vals = emd_exact(torch.as_tensor(x), torch.as_tensor(y), backend="torch")
    assert perm.shape == (b, n) and vals.shape == (b,) and vals.dtype == torch.float64
    for k in range(b):
        ref, _ = _lsa(x[k], y[k])
        assert sorted(perm[k].tolist()) == list(range(n))
        mine = np.linalg.norm(x[k] - y[k][perm[k].numpy()], axis=1).mean()
        assert abs(mine - float(vals[k])) < 1e-12
        assert abs(mine - ref) <= max(_exact_bound(x[k], y[k]), 1e-12) and abs(mine - ref) < 1e-9


def test_exact_ties_duplicates_and_trivial_sizes():
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3), -1).reshape(-1, 3)  # integer lattice: ties
    x = np.concatenate([grid, grid[:16]])  # duplicated points
    y = np.concatenate([grid + np.array([1.0, 0, 0]), grid[rng.permutation(64)[:16]]])
    assert abs(float(emd_exact(x, y, backend="torch")) - _lsa(x, y)[0]) < 1e-9
    p = rng.permutation(200)
    z = rng.normal(size=(200, 3))
    assert float(emd_exact(z, z[p], backend="torch")) == 0.0
    np.testing.assert_array_equal(p[emd_exact_matching(z, z[p], backend="torch")], np.arange(200))
    same = np.zeros((10, 3))
    assert float(emd_exact(same, same, backend="torch")) == 0.0
    for n in (1, 2, 3):
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        assert abs(float(emd_exact(a, b, backend="torch")) - _lsa(a, b)[0]) < 1e-12


def test_numpy_in_numpy_out_and_errors():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2, 50, 3)), rng.normal(size=(2, 50, 3))
    out = emd_exact(x, y, backend="torch")
    assert isinstance(out, np.ndarray) and out.shape == (2,)
    np.testing.assert_allclose(out, emd_exact(x, y, backend="numba"), atol=1e-9)
    single = emd_exact(x[0], y[0], backend="torch")
    assert isinstance(single, np.float64)
    with pytest.raises(ValueError, match="equal shapes"):
        emd_exact(x[:, :10], y, backend="torch")
    with pytest.raises(ValueError, match="NaN"):
        emd_exact(np.full((4, 3), np.nan), np.zeros((4, 3)), backend="torch")
    with pytest.raises(ValueError, match="backend 'gpu'"):
        emd_exact(x, y, backend="gpu")


@pytest.mark.parametrize("rel_eps", [1e-2, 1e-1])
def test_approx_within_its_bound(rel_eps):
    rng = np.random.default_rng(5)
    n = 512
    chair = _chair(rng, n)
    sphere = rng.normal(size=(n, 3))
    sphere = 0.5 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    xs = np.stack([chair, chair, sphere, rng.normal(size=(n, 3))])
    ys = np.stack([_chair(rng, n) + 0.01 * rng.normal(size=(n, 3)),
                   (chair + 0.03 * np.sin(3 * chair[:, [1, 2, 0]]))[rng.permutation(n)],
                   chair, rng.normal(size=(n, 3)) + 0.5])
    exact = np.array([_lsa(xs[k], ys[k])[0] for k in range(len(xs))])
    val = emd_approx(torch.as_tensor(xs), torch.as_tensor(ys), reduction="none", rel_eps=rel_eps,
                     backend="torch").numpy()
    assert (val >= exact - 1e-12).all() and (val <= (1 + rel_eps) * exact).all(), val / exact - 1


def test_approx_gradient_is_matched_distance_gradient():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(2, 150, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(2, 150, 3)), requires_grad=True)
    loss = emd_approx(x, y, reduction="sum", rel_eps=1e-9, backend="torch")  # tight: the optimum
    loss.backward()
    x2, y2 = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    ref = 0
    for k in range(2):
        _, col = _lsa(x2[k].detach().numpy(), y2[k].detach().numpy())
        ref = ref + (x2[k] - y2[k][torch.as_tensor(col)]).norm(dim=1).mean()
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-9
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(y.grad, y2.grad)
    z = torch.randn(2, 40, 3, dtype=torch.float64, requires_grad=True)  # coinciding points: 0, not NaN
    emd_approx(z, z.detach()[:, torch.randperm(40)], backend="torch").backward()
    assert torch.isfinite(z.grad).all() and (z.grad == 0).all()


def test_auction_ends_epsilon_complementary_on_integers():
    rng = np.random.default_rng(8)
    x, y = torch.as_tensor(rng.normal(size=(3, 200, 3))), torch.as_tensor(rng.normal(size=(3, 200, 3)))
    for mode in ("exact", "approx"):
        a, eps0, eps1 = auction.quantise(auction.pairwise_cost(x, y), mode, 1e-2)
        assert torch.equal(a, a.round()) and float(a.max()) <= 2.0 ** 47
        col4row, p, rounds = auction.auction(a, eps0, eps1, auction._EPS_FACTOR[mode])
        assert rounds > 0 and torch.equal(p, p.round())
        mine = a.gather(2, col4row[:, :, None])[:, :, 0] + p.gather(1, col4row)
        best = (a + p[:, None, :]).amin(2)
        assert (mine <= best + eps1[:, None]).all()
        assert all(sorted(r.tolist()) == list(range(200)) for r in col4row)


def test_pairwise_cost_is_elementwise_euclidean():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(2, 70, 3)), rng.normal(size=(2, 70, 3))
    c = auction.pairwise_cost(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    for k in range(2):
        np.testing.assert_allclose(c[k], cdist(x[k], y[k]), rtol=1e-15, atol=0)


# ---- dispatch and device residency ------------------------------------------------------------


def test_backend_resolution():
    assert emd._resolve_backend("auto", None) == "numba"
    assert emd._resolve_backend("auto", torch.device("cpu")) == "numba"
    assert emd._resolve_backend("auto", torch.device("cuda")) == "torch"
    assert emd._resolve_backend("auto", torch.device("cuda", 1)) == "torch"
    assert emd._resolve_backend("numba", torch.device("cuda")) == "numba"
    assert emd._resolve_backend("torch", None) == "torch"
    with pytest.raises(ValueError, match="backend"):
        emd._resolve_backend("cuda", None)


def _refuse_host_copies(monkeypatch):
    """Make every way of moving a tensor's data to the host (or to numpy) raise."""
    def refuse(name):
        def f(*a, **k):
            raise AssertionError(f"tensor data left the device via Tensor.{name}")
        return f

    for name in ("cpu", "numpy", "tolist", "__array__"):
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        dev = kwargs.get("device")
        for a in args:
            if isinstance(a, (str, torch.device)):
                dev = a
        if dev is not None and torch.device(dev).type == "cpu" and self.device.type != "cpu":
            raise AssertionError(f"tensor moved from {self.device} to {dev}")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)


@pytest.fixture
def no_host_copies(monkeypatch):
    _refuse_host_copies(monkeypatch)


def _pair(device, b=2, n=64, seed=10):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(b, n, 3, generator=g), torch.randn(b, n, 3, generator=g)
    return x.to(device).requires_grad_(), y.to(device).requires_grad_()


def test_torch_path_never_copies_to_host(no_host_copies):
    x, y = _pair("cpu")
    emd_approx(x, y, backend="torch").backward()
    assert x.grad is not None and y.grad is not None
    assert emd_exact(x, y, backend="torch").shape == (2,)
    assert emd_exact_matching(x, y, backend="torch").shape == (2, 64)


def test_auto_routes_non_cpu_tensors_to_the_torch_path(monkeypatch, no_host_copies):
    """With the device reported as CUDA (a fake flag), auto picks the torch auction, never the
    numba path (which converts to numpy on the host)."""
    x, y = _pair("cpu")
    want = emd_approx(x, y, backend="torch").detach()
    monkeypatch.setattr(emd, "_device_of", lambda t: torch.device("cuda"))

    def host_path(*a, **k):
        raise AssertionError("numba (host) path taken for a non-CPU tensor")

    monkeypatch.setattr(emd, "_as_batch", host_path)
    torch.testing.assert_close(emd_approx(x, y).detach(), want)
    assert emd_exact(x, y).shape == (2,)
    assert emd_exact_matching(x, y).shape == (2, 64)


# ---- on a GPU: the same results as the CPU references, and nothing leaves the device ----------


@needs_cuda
def test_cuda_exact_equals_lsa_and_stays_on_device():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(4, 300, 3)), rng.normal(size=(4, 300, 3)) + 0.2
    xc, yc = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")
    vals = emd_exact(xc, yc)
    perm = emd_exact_matching(xc, yc)
    assert vals.device.type == "cuda" and perm.device.type == "cuda"
    for k in range(4):
        assert abs(float(vals[k]) - _lsa(x[k], y[k])[0]) < 1e-9


@needs_cuda
def test_cuda_approx_value_and_gradient_match_cpu(monkeypatch):
    x, y = _pair("cpu", b=3, n=256, seed=12)
    ref = emd_approx(x, y, rel_eps=1e-9, backend="numba")  # the CPU reference, tight: the optimum
    ref.backward()
    xc = x.detach().to("cuda").requires_grad_()
    yc = y.detach().to("cuda").requires_grad_()
    _refuse_host_copies(monkeypatch)  # from here on, nothing may be copied to the host
    loss = emd_approx(xc, yc, rel_eps=1e-9)  # auto: the torch auction on the GPU
    loss.backward()
    assert loss.device.type == "cuda" and xc.grad.device.type == "cuda"
    torch.testing.assert_close(loss.detach(), ref.detach().to("cuda"), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(xc.grad.double(), x.grad.double().to("cuda"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(yc.grad.double(), y.grad.double().to("cuda"), rtol=1e-5, atol=1e-6)
