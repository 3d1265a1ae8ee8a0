"""Evaluate many (prediction, ground truth) pairs in parallel with :func:`evaluate_pairs`.

Worker processes are started with the ``spawn`` method (safe after torch/OpenMP were used in the
parent) and with one BLAS / OpenMP / torch thread each, so ``workers`` processes use ``workers``
cores. Each pair's subsample is seeded by its key (:func:`lmnet.eval.protocol.pair_rng`), so results
do not depend on the number of workers or the chunking.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Sequence

import numpy as np

from lmnet.envvars import environ
from lmnet.eval.protocol import Protocol, evaluate_pair

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def _init_worker() -> None:
    """The protocols do not import torch; should anything else have loaded it, pin it to one thread
    (it reads OMP_NUM_THREADS=1 only at import)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _run_chunk(args: tuple[list, list, list, Any]) -> list[dict[str, Any]]:
    """A :class:`Protocol` runs :func:`evaluate_pair`; any other protocol object (the official
    one, :class:`lmnet.eval.official.OfficialProtocol`) its own ``evaluate_pair(pred, gt, key)``."""
    preds, gts, keys, proto = args
    if isinstance(proto, Protocol):
        return [evaluate_pair(p, g, proto, k) for p, g, k in zip(preds, gts, keys)]
    return [proto.evaluate_pair(p, g, k) for p, g, k in zip(preds, gts, keys)]


def _chunks(preds, gts, keys, proto, chunksize):
    return [([np.asarray(p, dtype=np.float32) for p in preds[i:i + chunksize]],
             [np.asarray(g, dtype=np.float32) for g in gts[i:i + chunksize]],
             list(keys[i:i + chunksize]), proto) for i in range(0, len(keys), chunksize)]


class PairEvaluator:
    """A reusable pool for streaming evaluation (predictions produced batch by batch).

    ``with PairEvaluator(protocol, workers=2) as ev: ev.submit(preds, gts, keys); ...; ev.results()``
    returns the records in submission order. At most ``max_pending`` chunks are in flight;
    :meth:`submit` blocks (collecting finished chunks) beyond that, so memory stays bounded.
    ``workers <= 1`` evaluates synchronously in this process.
    """

    def __init__(self, protocol: Protocol | None = None, *, workers: int = 2, chunksize: int = 8,
                 max_pending: int | None = None, progress_total: int | None = None):
        self.protocol = protocol or Protocol()
        self.workers = int(workers)
        self.chunksize = max(1, int(chunksize))
        self.max_pending = max_pending or 4 * max(1, self.workers)
        self._pending: list = []
        self._done: list[dict[str, Any]] = []
        self._pool = None
        self._bar = None
        if progress_total is not None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress_total, desc="eval", unit="pair")

    def __enter__(self) -> "PairEvaluator":
        if self.workers > 1:
            ctx = mp.get_context("spawn")
            with environ({k: "1" for k in _THREAD_VARS}):  # child processes read them at import
                self._pool = ctx.Pool(processes=self.workers, initializer=_init_worker)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] is not None else self._pool.close()
            self._pool.join()
            self._pool = None
        if self._bar is not None:
            self._bar.close()

    def _collect(self, res: list[dict[str, Any]]) -> None:
        self._done.extend(res)
        if self._bar is not None:
            self._bar.update(len(res))

    def submit(self, preds: Sequence, gts: Sequence, keys: Sequence[str]) -> None:
        if not (len(preds) == len(gts) == len(keys)):
            raise ValueError(f"submit: {len(preds)} predictions, {len(gts)} ground truths, {len(keys)} keys")
        for chunk in _chunks(preds, gts, [str(k) for k in keys], self.protocol, self.chunksize):
            if self._pool is None:
                self._collect(_run_chunk(chunk))
                continue
            while len(self._pending) >= self.max_pending:
                self._collect(self._pending.pop(0).get())
            self._pending.append(self._pool.apply_async(_run_chunk, (chunk,)))

    def results(self) -> list[dict[str, Any]]:
        """Wait for everything submitted; return all records so far, in submission order."""
        while self._pending:
            self._collect(self._pending.pop(0).get())
        return list(self._done)


def evaluate_pairs(preds: Sequence, gts: Sequence, keys: Sequence[str] | None = None, *,
                   protocol: Protocol | None = None, workers: int = 2, chunksize: int = 8,
                   progress: bool = False) -> list[dict[str, Any]]:
    """Run :func:`~lmnet.eval.protocol.evaluate_pair` on every pair, in input order.

    ``preds``: sequence of ``(N_i, 3)`` arrays (or a ``(P, N, 3)`` array); ``gts`` likewise with
    ``(M_i, 3)``; ``keys``: one string per pair (seeds the subsample and is copied into the record;
    default ``"0"``, ``"1"``, …). ``workers <= 1`` (or a single chunk) runs in this process.
    Returns one record per pair (see :func:`~lmnet.eval.protocol.evaluate_pair`), raw units.
    """
    n = len(preds)
    if len(gts) != n:
        raise ValueError(f"evaluate_pairs: {n} predictions but {len(gts)} ground truths")
    keys = [str(i) for i in range(n)] if keys is None else [str(k) for k in keys]
    if len(keys) != n:
        raise ValueError(f"evaluate_pairs: {n} pairs but {len(keys)} keys")
    n_chunks = -(-n // max(1, chunksize))
    with PairEvaluator(protocol, workers=workers if n_chunks > 1 else 1, chunksize=chunksize,
                       max_pending=n_chunks + 1, progress_total=n if progress else None) as ev:
        ev.submit(preds, gts, keys)
        return ev.results()
