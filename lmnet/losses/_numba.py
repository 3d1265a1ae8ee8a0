"""The numba switch shared by the kernel modules of :mod:`lmnet.losses` (other packages reach it
through the public :mod:`lmnet.losses.kernels`, as :mod:`lmnet.eval._official_kernels` does).

``HAVE_NUMBA`` is False when numba is not installed; :func:`jit` then returns the plain Python
function and the public callers fall back to scipy (cKDTree for nearest neighbours,
``linear_sum_assignment`` for EMD). Every kernel is compiled ``cache=True, nogil=True``: it releases
the GIL, so callers may run items in Python threads.
"""

from __future__ import annotations

try:  # numba is optional: the public functions fall back to scipy without it
    import numba as _nb

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    _nb = None
    HAVE_NUMBA = False


def jit(**kw):
    """``numba.njit(cache=True, nogil=True, **kw)``, or the plain function without numba."""

    def deco(fn):
        if not HAVE_NUMBA:
            return fn
        return _nb.njit(cache=True, nogil=True, **kw)(fn)

    return deco
