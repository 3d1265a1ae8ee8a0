"""A user's photo → its object mask (mask file, alpha, automatic estimate) → the network's crop,
the same as a CmrDataset item's."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lmnet.data.cub import CUBDataset
from lmnet.data.cmr_write import write_cub_tree
from lmnet.data.photo_mask import NoObjectError, estimate_foreground, object_crop, read_photo_rgba
from lmnet.errors import CorruptFileError, DataError
from tests.cmr_standin import CUB_PERM, make_item, symmetric_shape


def _synthetic_photo(h=150, w=200, seed=0):
    """``(uint8 (h, w, 3), true mask (h, w) bool)``: a striped disc (two reds) on a diagonal
    blue-green gradient with a fine noise texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    t = (xx / w + yy / h)[..., None] / 2
    bg = (1 - t) * np.array([0.15, 0.45, 0.75]) + t * np.array([0.55, 0.8, 0.45])
    bg = bg + rng.normal(0, 0.025, (h, w, 3))
    disc = (xx - 0.55 * w) ** 2 + (yy - 0.45 * h) ** 2 <= (0.28 * h) ** 2
    stripes = np.where((xx // 6) % 2 == 0, 0, 1)[..., None]
    obj = np.where(stripes == 0, [0.85, 0.2, 0.1], [0.65, 0.1, 0.2]) + rng.normal(0, 0.025, (h, w, 3))
    img = np.where(disc[..., None], obj, bg)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), disc


def _iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_automatic_estimate_finds_the_disc(tmp_path):
    img, truth = _synthetic_photo()
    Image.fromarray(img).save(tmp_path / "photo.png")
    rgb, mask = read_photo_rgba(tmp_path / "photo.png")
    assert rgb.shape == (150, 200, 3) and rgb.dtype == np.float64 and mask.shape == (150, 200)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert _iou(mask > 0.5, truth) >= 0.9


def test_automatic_estimate_on_a_large_jpeg_works_on_blocks(tmp_path):
    img, truth = _synthetic_photo(600, 900, seed=1)
    Image.fromarray(img).save(tmp_path / "photo.jpg", quality=90)
    rgb, mask = read_photo_rgba(tmp_path / "photo.jpg")
    assert mask.shape == (600, 900) and _iou(mask > 0.5, truth) >= 0.9


def test_a_shaded_rim_is_object_and_a_thin_blend_is_background():
    """Plain grey background: a bright face with a dark rim 3 px wide along its left side (the
    shaded side of a wing; no blend of the background and the bright face makes it) stays object;
    on its right side a column at alpha 0.3 (an anti-aliased edge) is background, one at 0.7 object."""
    img = np.full((200, 200, 3), 128.0)
    img[60:140, 60:140] = 200.0
    img[60:140, 60:63] = 110.0
    img[60:140, 140] = 128 + 0.7 * 72
    img[60:140, 141] = 128 + 0.3 * 72
    mask = estimate_foreground(img / 255) > 0.5
    assert mask[65:135, 60:141].all()           # the rim and the 0.7 column
    assert not mask[:, 141:].any() and not mask[:, :60].any()


def _frame_photo(inside: float, tmp_path) -> np.ndarray:
    """A JPEG (quality 90) of a dark square frame 4 px wide on a flat mid-grey (128) background,
    whose inside is ``inside`` → its decoded pixels, float64 in [0, 1]."""
    img = np.full((200, 200, 3), 128, np.uint8)
    img[50:150, 50:150] = 60
    img[54:146, 54:146] = inside
    Image.fromarray(img).save(tmp_path / "frame.jpg", quality=90)
    return np.asarray(Image.open(tmp_path / "frame.jpg"), dtype=np.float64) / 255


def test_a_face_one_level_off_a_flat_background_is_object(tmp_path):
    """A digitally flat background: the frame's inside 1 grey level above it is a face of the
    object (a table top lit like the background), the inside exactly at it is a hole."""
    face = estimate_foreground(_frame_photo(129, tmp_path)) > 0.5
    assert face[62:138, 62:138].all() and face[52:148, 52:148].mean() > 0.95  # JPEG rings by the frame
    hole = estimate_foreground(_frame_photo(128, tmp_path)) > 0.5
    assert not hole[60:140, 60:140].any() and hole[50:54, 50:150].all()


def test_a_sliver_shaded_like_a_flat_background_between_faces_is_object():
    """A digitally flat mid-grey background, 400 px: a bright and a dark face 3 px apart, the band
    between them exactly at the background's level (a fuselage side lit like the background), are
    one object; a face 12 px to their right keeps the background between it and them."""
    img = np.full((400, 400, 3), 128.0)
    img[100:200, 80:300] = 200.0
    img[203:300, 80:300] = 60.0
    img[100:300, 312:360] = 200.0
    mask = estimate_foreground(img / 255) > 0.5
    assert mask[200:203, 82:298].all()                       # the sliver (its open ends may stay)
    assert not mask[100:300, 302:310].any()                  # the 12 px gap
    assert mask[100:200, 80:300].all() and mask[203:300, 80:300].all() and mask[100:300, 312:360].all()


def test_alpha_channel_is_the_mask(tmp_path):
    img, truth = _synthetic_photo()
    alpha = np.where(truth, 255, 0).astype(np.uint8)
    alpha[0, 0] = 128
    Image.fromarray(np.dstack([img, alpha]), "RGBA").save(tmp_path / "cut.png")
    rgb, mask = read_photo_rgba(tmp_path / "cut.png")
    assert np.array_equal(mask, alpha / 255.0) and np.array_equal(rgb, img / 255.0)
    Image.fromarray(np.dstack([img, np.zeros_like(alpha)]), "RGBA").save(tmp_path / "clear.png")
    with pytest.raises(NoObjectError, match="clear.png: the mask is empty.*--masks"):
        read_photo_rgba(tmp_path / "clear.png")


def test_mask_file_wins_and_must_match_the_size(tmp_path):
    img, truth = _synthetic_photo()
    Image.fromarray(img).save(tmp_path / "photo.png")
    grey = np.where(truth, 200, 40).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "mask.png")
    _, mask = read_photo_rgba(tmp_path / "photo.png", tmp_path / "mask.png")
    assert np.array_equal(mask > 0.5, truth) and set(np.unique(mask)) == {0.0, 1.0}
    Image.fromarray(grey[:, :-1], "L").save(tmp_path / "small.png")
    with pytest.raises(CorruptFileError, match=r"small.png: mask is 199x150 but the photo .*photo.png is 200x150"):
        read_photo_rgba(tmp_path / "photo.png", tmp_path / "small.png")
    with pytest.raises(DataError, match="mask .*none.png does not exist"):
        read_photo_rgba(tmp_path / "photo.png", tmp_path / "none.png")


@pytest.mark.parametrize("kind", ["uniform", "noise", "gradient"])
def test_no_object_is_one_clear_line(tmp_path, kind):
    rng = np.random.default_rng(3)
    h, w = 120, 160
    if kind == "uniform":
        img = np.full((h, w, 3), 128, np.uint8)
    elif kind == "noise":
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        img = np.broadcast_to(np.linspace(0, 255, w)[None, :, None], (h, w, 3)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"{kind}.png")
    with pytest.raises(NoObjectError) as exc:
        read_photo_rgba(tmp_path / f"{kind}.png")
    message = str(exc.value)
    assert message.startswith(str(tmp_path / f"{kind}.png")) and "\n" not in message
    assert "--masks" in message and "RGBA PNG" in message


@pytest.mark.xfail(strict=True, reason="an object filling the border band: the band's surface fit absorbs it "
                   "since the estimate learns the background from a smooth surface (open, docs/usage.md)")
def test_object_filling_the_photo_is_refused():
    rgb = np.full((80, 80, 3), 0.2)
    rgb[1:-1, 1:-1] = (0.9, 0.1, 0.1)
    with pytest.raises(NoObjectError, match="p.jpg: .*9[0-9].[0-9] % "):
        estimate_foreground(rgb, "p.jpg")


def test_non_image_and_truncated_jpeg_are_clear_errors(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(CorruptFileError, match="notes.jpg: unreadable or truncated image"):
        read_photo_rgba(tmp_path / "notes.jpg")
    img, _ = _synthetic_photo()
    Image.fromarray(img).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:400])
    with pytest.raises(CorruptFileError, match="cut.jpg: unreadable or truncated image"):
        read_photo_rgba(tmp_path / "cut.jpg")
    with pytest.raises(DataError, match="image .*none.jpg does not exist"):
        read_photo_rgba(tmp_path / "none.jpg")


def test_pixel_limit_applies(tmp_path, monkeypatch):
    img, _ = _synthetic_photo()
    Image.fromarray(img).save(tmp_path / "photo.png")
    monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match="LMNET_MAX_IMAGE_PIXELS"):
        read_photo_rgba(tmp_path / "photo.png")


def test_object_crop_matches_a_cmr_dataset_item(tmp_path):
    rng = np.random.default_rng(0)
    shape = symmetric_shape(CUB_PERM, rng)
    items = [make_item("001.Bird_0/bird_0.jpg", shape, rng), make_item("001.Bird_0/bird_1.jpg", shape, rng, gray=True)]
    write_cub_tree(tmp_path, items, "train", mean_shape=shape)
    dataset = CUBDataset(tmp_path, "train", image_size=64)
    for i, item in enumerate(items):
        Image.fromarray((item.mask * 255).astype(np.uint8), "L").save(tmp_path / f"mask_{i}.png")
        rgb, mask = read_photo_rgba(dataset.files[i], tmp_path / f"mask_{i}.png")
        image, m = object_crop(rgb, mask, 64)
        expected = dataset[i]
        assert image.shape == (3, 64, 64) and image.dtype == np.float32 and m.shape == (1, 64, 64)
        assert np.abs(image - expected["image"].numpy()).max() <= 1e-5
        assert np.abs(m - expected["mask"].numpy()).max() <= 1e-5
    with pytest.raises(ValueError, match="empty"):
        object_crop(rgb, np.zeros(mask.shape), 64)
