"""Batched ε-scaling auction for the EMD assignment in plain torch: runs on any device.

The device path of :mod:`lmnet.losses.emd` (CUDA by default; CPU on request — the numba kernels
are faster there). Everything stays on the inputs' device: only 0-d control flags (is any row
still bidding?) are read by the host.

Problem: for each item b of a batch, a permutation π minimising Σ_i c[b, i, π(i)], with
``c = |x_i − y_j|`` (Euclidean). How:

1. **Integer costs.** ``c`` is computed in float64 and quantised per item to integers
   ``a = round(c / q)`` held exactly in float64 (all arithmetic below is on integers < 2^53, so it
   is exact: no rounding anywhere in the auction). Replacing ``c`` by ``q·a`` moves any matching's
   mean cost by at most ``q/2``, so a matching optimal for ``a`` is within ``q`` of the optimum
   of ``c`` on the mean.
2. **Jacobi auction** (Bertsekas), vectorised over the batch and over all bidding rows: every
   unassigned row bids for its best column j₁ = argmin_j a_ij + p_j, raising p_j₁ by
   (second best − best + ε); each column takes its highest bid (ties: the lowest row) and evicts
   its previous owner. Every bid keeps ε-complementary slackness (a row's column is within ε of
   its best), so at the end Σ a(π) ≤ min Σ a + N·ε.
3. **ε-scaling**, per item, from the column-reduction prices p_j = −min_i a_ij: ε starts at a fraction of the largest cost and is divided by a factor
   when an item's rows are all assigned, until it reaches ε_final. At a new phase, prices are
   shifted to a minimum of 0 (relative prices are all that matter) and only the rows that break
   ε-slackness under the new ε are unassigned.

Modes (see :func:`quantise`): **exact** — costs scaled by (N + 1) and ε_final = 1, i.e. ε < 1/N
in units of the quantised cost, which makes the matching optimal for ``a`` (integer costs); with
``q = cmax·(N+1)·2^-46`` the mean cost is within ``q`` (~1e-10·cmax at N = 2048) of the true
optimum. **approx** — ``q = rel_eps·LB / (1 + E)`` and ε_final = E quanta, with LB ≤ EMD the larger
mean nearest-neighbour distance, so EMD ≤ value ≤ EMD + q·(1 + E) ≤ (1 + rel_eps)·EMD.

Memory, for ``(B, N, 3)`` inputs: the quantised cost, B·N² float64, quantised in place (items are
solved in groups of at most ``_COST_ENTRIES`` = 2^27 entries: 1 GiB, i.e. 32 items of 2048 points
in one group), plus temporaries of at most ``_CHUNK_ENTRIES`` = 2^23 float64 entries (64 MiB) each,
a few at a time, and O(B·N) state (measured at 32 × 2048: docs/gpu.md#the-torch-auction-lmnetlossesauctionpy).
"""

from __future__ import annotations

import torch

#: largest quantised cost (integers below 2^53 are exact in float64; the rest is headroom for prices)
_EXACT_INT_MAX = 2.0 ** 46
#: approx mode: final ε in quanta (the quantisation takes 1/(1+E) of the error budget)
_APPROX_EPS_QUANTA = 15.0
#: first ε as a fraction of the largest cost, and the ε divisor per phase
_EPS_START_FRAC = {"exact": 0.05, "approx": 0.25}
_EPS_FACTOR = {"exact": 4.0, "approx": 8.0}
#: entries per temporary block (bids, cost rows, row minima): 64 MiB of float64
_CHUNK_ENTRIES = 1 << 23
#: entries of one group's cost matrix (B_group · N²): 1 GiB of float64, i.e. 32 items of 2048
_COST_ENTRIES = 1 << 27


def pairwise_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``c[b, i, j] = |x[b, i] − y[b, j]|`` in float64 for ``x, y (B, N, 3)`` → ``(B, N, N)``.

    Elementwise differences (not the matmul expansion of ``torch.cdist``), so the values are
    correctly rounded distances, computed in row blocks of bounded size.
    """
    x64, y64 = x.detach().to(torch.float64), y.detach().to(torch.float64)
    b, n, _ = x64.shape
    m = y64.shape[1]
    out = torch.empty(b, n, m, dtype=torch.float64, device=x.device)
    rows = max(1, _CHUNK_ENTRIES // max(1, 3 * b * m))
    for s in range(0, n, rows):
        d = x64[:, s:s + rows, None, :] - y64[:, None, :, :]
        out[:, s:s + rows] = torch.sqrt((d * d).sum(-1))
    return out


def _row_min_nn(c: torch.Tensor) -> torch.Tensor:
    """max(mean_i min_j c_ij, mean_j min_i c_ij) per item: a lower bound on the EMD, ``(B,)``."""
    return torch.maximum(c.amin(2).mean(1), c.amin(1).mean(1))


def quantise(c: torch.Tensor, mode: str, rel_eps: float = 1e-2):
    """Integer costs for :func:`auction`: ``c (B, N, N)`` float64 → ``(a, eps_start, eps_final)``.

    ``a`` is ``(B, N, N)`` float64 holding integers, **computed in place in** ``c``; ``eps_start``/``eps_final`` are ``(B,)``
    integers. ``mode="exact"``: ``a = round(c/q)·(N+1)``, ε_final = 1, q = cmax·(N+1)·2^-46.
    ``mode="approx"``: ``a = round(c/q)``, ε_final = E = 15, q = rel_eps·LB/(1+E), but never
    finer than cmax·2^-46 (only binds when LB < ~1e-10·cmax: clouds that nearly coincide).
    """
    b, n, _ = c.shape
    cmax = c.flatten(1).amax(1)
    floor_q = cmax / _EXACT_INT_MAX
    if mode == "exact":
        q = floor_q * (n + 1)
        scale, eps_final = float(n + 1), torch.ones(b, dtype=torch.float64, device=c.device)
    elif mode == "approx":
        q = torch.maximum(rel_eps * _row_min_nn(c) / (1.0 + _APPROX_EPS_QUANTA), floor_q)
        scale = 1.0
        eps_final = torch.full((b,), _APPROX_EPS_QUANTA, dtype=torch.float64, device=c.device)
    else:
        raise ValueError(f"auction: mode {mode!r} is not 'exact' or 'approx'")
    q = torch.where(q > 0, q, torch.ones_like(q))  # all-zero costs: any q
    a = c.div_(q[:, None, None]).round_()  # in place: c is not needed any more
    if scale != 1.0:
        a.mul_(scale)
    amax = a.flatten(1).amax(1)
    eps_start = torch.maximum(torch.floor(_EPS_START_FRAC[mode] * amax), eps_final)
    return a, eps_start, eps_final


def _unassign_slack(a, p, c4r, r4c, eps, items):
    """Unassign, in ``items`` (1-D index tensor), the rows whose column is more than ``eps`` above
    their best ``min_j a_ij + p_j`` (the start of a new ε phase). ``p (B, N)`` and the flat
    ``c4r``/``r4c`` (B·N + 1, last slot a write sink) are updated in place."""
    b, n, _ = a.shape
    sink = b * n
    col4row = c4r[:sink].view(b, n)
    per = max(1, _CHUNK_ENTRIES // max(1, n * n))
    cols = torch.arange(n, device=a.device)
    for s in range(0, items.numel(), per):
        it = items[s:s + per]
        w = a[it] + p[it][:, None, :]                       # (k, N, N)
        best = w.amin(2)
        mine_col = col4row[it]
        mine = w.gather(2, mine_col.clamp_min(0)[:, :, None])[:, :, 0]
        del w
        bad = (mine_col >= 0) & (mine > best + eps[it][:, None])
        base = (it * n)[:, None]
        r4c[torch.where(bad, base + mine_col, sink)] = -1
        c4r[torch.where(bad, base + cols, sink)] = -1


def _bids(a, p, bi, ri, eps):
    """Bids of rows ``(bi, ri)``: ``(column, new price)`` each, computed in bounded blocks."""
    b, n, _ = a.shape
    flat_a = a.view(b * n, n)
    cols = torch.empty_like(bi)
    price = torch.empty(bi.shape, dtype=a.dtype, device=a.device)
    per = max(1, _CHUNK_ENTRIES // max(1, n))
    for s in range(0, bi.numel(), per):
        bs, rs = bi[s:s + per], ri[s:s + per]
        w = flat_a.index_select(0, bs * n + rs)
        w.add_(p.index_select(0, bs))
        if n > 1:
            top = torch.topk(w, 2, dim=1, largest=False, sorted=True)
            w1, w2, j1 = top.values[:, 0], top.values[:, 1], top.indices[:, 0]
        else:
            w1, j1 = w[:, 0], torch.zeros_like(bs)
            w2 = w1
        cols[s:s + per] = j1
        price[s:s + per] = p.view(-1)[bs * n + j1] + (w2 - w1) + eps[bs]
    return cols, price


def auction(a: torch.Tensor, eps_start: torch.Tensor, eps_final: torch.Tensor,
            factor: float, max_rounds: int = 10_000_000):
    """Jacobi ε-scaling auction minimising Σ_i a[b, i, π(i)] for every item (see module docstring).

    ``a (B, N, N)`` float64 integer costs, ``eps_start``/``eps_final (B,)`` integers ≥ 1.
    Returns ``(col4row (B, N) int64, prices (B, N) float64, rounds)``: row i ↔ column col4row[i],
    each row's column within ε_final of its best under the prices, so
    Σ a(π) ≤ min Σ a + N·ε_final. All on ``a``'s device; per round the host synchronises once,
    to learn how many rows bid (their indices have a data-dependent size) and whether an item
    starts a new phase.
    """
    b, n, _ = a.shape
    dev = a.device
    sink = b * n  # updates of losing bids are written to this extra slot and never read
    p_flat = torch.zeros(sink + 1, dtype=a.dtype, device=dev)
    p = p_flat[:sink].view(b, n)
    p.sub_(a.amin(1))  # start from the column-reduction duals (fewer rounds: docs/results.md#kernel-tuning)
    p.sub_(p.amin(1, keepdim=True))
    c4r = torch.full((sink + 1,), -1, dtype=torch.long, device=dev)
    r4c = torch.full((sink + 1,), -1, dtype=torch.long, device=dev)
    col4row = c4r[:sink].view(b, n)
    eps = eps_start.clone()
    rounds = 0
    while True:
        free = col4row < 0
        advance = ~free.any(1) & (eps > eps_final)
        # one host synchronisation per round: the free rows and the items done with their phase
        idx = torch.cat([free.view(-1), advance]).nonzero()[:, 0]  # sorted: advancing items last
        if idx.numel() > 0 and int(idx[-1]) >= sink:
            adv = idx[idx >= sink] - sink
            eps = torch.where(advance, torch.maximum(torch.floor(eps / factor), eps_final), eps)
            p.sub_(torch.where(advance[:, None], p.amin(1, keepdim=True), 0.0))
            _unassign_slack(a, p, c4r, r4c, eps, adv)
            idx = (col4row < 0).view(-1).nonzero()[:, 0]
        if idx.numel() == 0:
            break
        bi, ri = idx // n, idx % n
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"auction: no convergence after {max_rounds} rounds")
        cols, price = _bids(a, p, bi, ri, eps)
        flat = bi * n + cols
        best = torch.full((sink,), -1.0, dtype=a.dtype, device=dev)
        best.scatter_reduce_(0, flat, price, reduce="amax")
        top = price == best[flat]
        first = torch.full((sink,), n, dtype=torch.long, device=dev)
        first.scatter_reduce_(0, flat, torch.where(top, ri, n), reduce="amin")
        win = top & (ri == first[flat])           # one winner per bid-on column
        old = r4c[flat]
        c4r[torch.where(win & (old >= 0), bi * n + old, sink)] = -1   # evict the previous owner
        r4c[torch.where(win, flat, sink)] = ri
        c4r[torch.where(win, bi * n + ri, sink)] = cols
        p_flat[torch.where(win, flat, sink)] = price
    if rounds and float(p.max()) >= 2.0 ** 52:  # never seen (prices stay ~ the largest cost)
        raise RuntimeError("auction: prices left the range of exact float64 integers")
    return col4row.clone(), p.clone(), rounds


def assignment(x: torch.Tensor, y: torch.Tensor, mode: str, rel_eps: float = 1e-2) -> torch.Tensor:
    """Matching ``perm (B, N)`` int64 on x's device with x[b, i] ↔ y[b, perm[b, i]].

    ``x, y (B, N, 3)`` on one device (any float dtype; computed in float64). ``mode="exact"``:
    optimal to within cmax·(N+1)·2^-46 on the mean cost; ``"approx"``: mean cost ≤
    (1 + rel_eps)·EMD. Items are solved in groups of at most ``_COST_ENTRIES // N²`` so the
    cost matrix stays within ``_COST_ENTRIES`` float64 entries. See the module docstring.
    """
    b, n, _ = x.shape
    per = max(1, _COST_ENTRIES // max(1, n * n))
    out = torch.empty(b, n, dtype=torch.long, device=x.device)
    for s in range(0, b, per):
        a, eps_start, eps_final = quantise(pairwise_cost(x[s:s + per], y[s:s + per]), mode, rel_eps)
        out[s:s + per], _, _ = auction(a, eps_start, eps_final, _EPS_FACTOR[mode])
        del a
    return out
