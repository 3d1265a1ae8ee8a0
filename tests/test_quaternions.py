"""lmnet/quaternions.py against SciPy's Rotation (an independent implementation)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lmnet.quaternions import qmul, qrot, quaternion_from_matrix, quaternion_to_matrix


def _random_rotations(n, seed=0):
    return Rotation.random(n, random_state=seed)


def test_quaternion_from_matrix_matches_scipy_with_w_nonnegative():
    for r in _random_rotations(20):
        q = quaternion_from_matrix(r.as_matrix())
        x, y, z, w = r.as_quat()  # SciPy is scalar-last
        ref = np.array([w, x, y, z]) * (1 if w >= 0 else -1)
        np.testing.assert_allclose(q, ref, atol=1e-12)
        assert q[0] >= 0
        np.testing.assert_allclose(quaternion_to_matrix(q), r.as_matrix(), atol=1e-12)


def test_nearly_orthogonal_matrix_gives_the_closest_rotation():
    r = _random_rotations(1, seed=3)[0].as_matrix()
    noisy = r + 1e-4 * np.random.default_rng(0).standard_normal((3, 3))
    np.testing.assert_allclose(quaternion_to_matrix(quaternion_from_matrix(noisy)), r, atol=1e-3)


def test_qrot_equals_matrix_product_and_broadcasts():
    rots = _random_rotations(4, seed=1)
    q = torch.tensor(np.stack([quaternion_from_matrix(m) for m in rots.as_matrix()]))  # (4, 4)
    v = torch.randn(4, 10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = qrot(q[:, None, :], v)
    ref = torch.einsum("bij,bvj->bvi", torch.tensor(rots.as_matrix()), v)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


def test_qmul_composes_rotations():
    a, b = _random_rotations(2, seed=2)
    qa = torch.tensor(quaternion_from_matrix(a.as_matrix()))
    qb = torch.tensor(quaternion_from_matrix(b.as_matrix()))
    np.testing.assert_allclose(quaternion_to_matrix(qmul(qa, qb).numpy()), (a * b).as_matrix(), atol=1e-12)


def test_bad_rotation_is_refused():
    with pytest.raises(ValueError, match="finite"):
        quaternion_from_matrix(np.full((3, 3), np.nan))
