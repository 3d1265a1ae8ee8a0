"""lmnet.data.augment: recolouring composited renders equals recolouring before compositing."""

import numpy as np
import pytest
import torch

from lmnet.data.augment import tint_objects
from lmnet.data.inputs import composite


def test_tint_objects_equals_tinting_the_rgba_before_compositing():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (2, 16, 16, 4), dtype=np.uint8)
    rgba[0, :4, :, 3] = 0      # transparent rows: background only
    rgba[1, :, :4, 3] = 255    # opaque columns
    gains = np.array([[0.4, 1.0, 2.5], [1.3, 0.7, 1.0]], np.float32)
    for bg in (255.0, 128.0):
        pairs = [composite(im, bg) for im in rgba]
        images = torch.from_numpy(np.stack([p[0] for p in pairs]))
        masks = torch.from_numpy(np.stack([p[1] for p in pairs]))
        got = tint_objects(images, masks, bg, torch.from_numpy(gains)).numpy()
        for i in range(2):  # naive: tint the stored RGB, clamp, then composite
            tinted = rgba[i].astype(np.float64)
            tinted[..., :3] = tinted[..., :3] * gains[i]
            a = tinted[..., 3:] / 255.0
            want = (tinted[..., :3] * a + bg * (1 - a)).transpose(2, 0, 1)
            # the clamp applies to the composite; they agree wherever the tinted colour stays in range
            ok = (tinted[..., :3] <= 255).all(-1)
            np.testing.assert_allclose(got[i][:, ok], want[:, ok], atol=1e-3)
            assert got[i].min() >= 0 and got[i].max() <= 255
        np.testing.assert_array_equal(got[0][:, :4], np.full((3, 4, 16), bg, np.float32))  # background kept
    same = tint_objects(images, masks, 128.0, torch.ones(2, 3))
    torch.testing.assert_close(same, images.clamp(0, 255))
    with pytest.raises(ValueError, match=r"gains must be \(2, 3\)"):
        tint_objects(images, masks, 128.0, torch.ones(3))
