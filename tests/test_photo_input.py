"""The photo front end of the point-cloud networks (docs/usage.md#your-own-photo): automatic masks on
renders over four backgrounds, framing as the renders, ``<id>.input.png``, the warnings, the latent
reference an image run stores when it finishes, and the optional rembg path."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.bench_photo_mask import BACKGROUNDS, background, enlarged, iou, photo_jpeg
from lmnet import infer
from lmnet.cli import main
from lmnet.data import inputs
from lmnet.data.photo_mask import array_input, estimate_foreground, photo_input, rembg_foreground
from lmnet.errors import ConfigError, CorruptFileError
from lmnet.losses.chamfer import chamfer_distance
from lmnet.methods.image import train_image_encoder
from lmnet.runs import latent_ood
from lmnet.synthetic.generator import generate_model
from lmnet.data import layout
from test_eval import tiny_project  # noqa: F401  (session fixture)
from test_train import ae_run, image_config, tiny  # noqa: F401  (module fixtures)


@pytest.fixture(scope="module")
def chair_renders(tmp_path_factory):
    """Four views of one synthetic chair (``lmnet synth``'s renders, 137 px RGBA)."""
    out = tmp_path_factory.mktemp("synth")
    synset, mid, _ = generate_model(out, "chair", 0)
    return [layout.image_path(out, synset, mid, v) for v in (0, 6, 12, 18)]


# measured on these four views (the benchmark's 40 renders: benchmarks/results/photo_mask.md)
MIN_IOU = {"white": 0.95, "grey": 0.9, "gradient": 0.95, "noise": 0.6}


def test_automatic_mask_on_renders_over_four_backgrounds(chair_renders):
    rng = np.random.default_rng(0)
    for render in chair_renders:
        rgba = enlarged(render, 2)
        truth = rgba[..., 3] > 0.5
        for kind in BACKGROUNDS:
            jpeg = photo_jpeg(rgba, background(kind, *truth.shape, rng))
            rgb = np.asarray(Image.open(io.BytesIO(jpeg)), dtype=np.float64) / 255
            assert iou(estimate_foreground(rgb) > 0.5, truth) >= MIN_IOU[kind], (render.name, kind)


def test_framing_matches_the_renders():
    """The object's box fills RENDER_FILL of the 128 px input, centred, whatever the photo's size."""
    photo = np.full((300, 500, 3), 255, np.uint8)
    photo[100:160, 200:320] = (200, 30, 30)  # 120 x 60 px
    mask = np.zeros((300, 500))
    mask[100:160, 200:320] = 1.0
    x = inputs.frame_photo(photo, mask, 255.0)
    assert x.shape == (3, 128, 128) and x.dtype == np.float32
    red = (x[0] > 150) & (x[1] < 100)
    ys, xs = np.nonzero(red)
    assert abs((xs.max() - xs.min() + 1) - inputs.RENDER_FILL * 128) <= 2
    assert abs((xs.max() + xs.min()) / 2 - 63.5) <= 1.5 and abs((ys.max() + ys.min()) / 2 - 63.5) <= 1.5
    assert np.allclose(x[:, 2, 2], 255.0)  # white around it (the run's background)
    assert np.allclose(inputs.frame_photo(photo, mask, None)[:, 2, 2], 0.0)  # stored_rgb: black
    assert inputs.framing_warnings(mask) == []
    mask[100:160, 0:320] = 1.0
    assert "left border" in inputs.framing_warnings(mask)[0]
    tiny_mask = np.zeros((300, 500))
    tiny_mask[10:20, 10:30] = 1.0
    assert "tiny (20 px" in inputs.framing_warnings(tiny_mask)[0]


def test_a_photo_framed_like_a_rendering_keeps_its_framing(chair_renders):
    """A square photo whose object fills the crop as the renderings do is framed exactly as the
    rendering is fed (the RGBA render through framing with its own alpha: the same network input);
    a square photo with a small object, or a non-square one, is reframed to RENDER_FILL."""
    rgba = np.asarray(Image.open(chair_renders[0]).convert("RGBA"))
    mask = rgba[..., 3] / 255.0
    assert inputs.framed_like_a_rendering(mask)
    own = inputs.frame_photo(rgba[..., :3], mask, 255.0)
    assert np.abs(own - inputs.prepare_array(rgba)).max() <= 1.0  # as the dataset feeds the rendering
    small = np.zeros((400, 400))
    small[180:220, 190:210] = 1.0  # 40 px of 400: a fill of 0.11
    wide = np.zeros((137, 200))
    wide[30:100, 60:120] = 1.0
    assert not inputs.framed_like_a_rendering(small) and not inputs.framed_like_a_rendering(wide)
    x = inputs.frame_photo(np.full((400, 400, 3), 90, np.uint8), small, 255.0)
    ys, xs = np.nonzero(x[0] < 200)
    assert abs((ys.max() - ys.min() + 1) - inputs.RENDER_FILL * 128) <= 2


def test_rgba_images_keep_their_framing_and_noise_falls_back(tmp_path):
    rgba = np.zeros((137, 137, 4), np.uint8)
    rgba[30:100, 40:90] = [30, 200, 90, 255]
    x, notes = array_input(rgba, "cut.png")
    assert notes == [] and np.array_equal(x, inputs.prepare_array(rgba))
    noise = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    x, notes = array_input(noise, "noise.jpg")
    assert np.array_equal(x, inputs.prepare_array(noise)) and "no object found" in notes[0] and "--masks" in notes[0]


def _cd(a: np.ndarray, b: np.ndarray) -> float:
    return float(chamfer_distance(torch.from_numpy(a)[None], torch.from_numpy(b)[None]))


def test_jpeg_without_alpha_predicts_like_the_rgba_render(tmp_path, tiny_project, capsys):
    """A tiny run: the prediction from the JPEG (white and grey backgrounds, automatic mask, reframed)
    is within 5 % CD (to the shape's cloud) of the prediction from the RGBA render; input.png is the
    exact network input; a photo cut off at the border gets one warning line."""
    data, run, _ = tiny_project
    key = data.keys[0]
    render = data.model_dir(key) / "rendering" / "00.png"
    gt = np.load(data.root / "ShapeNet_pointclouds" / key / "pointcloud_1024.npy")
    rgba = np.asarray(Image.open(render), dtype=np.float64) / 255
    files = [render]
    for kind in ("white",):
        files.append(tmp_path / f"{kind}.jpg")
        files[-1].write_bytes(photo_jpeg(rgba, background(kind, 137, 137, np.random.default_rng(0))))
    cut = np.asarray(Image.open(files[1]))[:, 60:]
    Image.fromarray(np.ascontiguousarray(cut)).save(tmp_path / "cut.png")
    index = infer.predict_images(run, [*files, tmp_path / "cut.png"], tmp_path / "out")
    preds = [np.load(tmp_path / "out" / f"{i:06d}.pred.npy") for i in range(3)]
    ref = _cd(preds[0], gt)
    assert abs(_cd(preds[1], gt) - ref) <= 0.05 * ref
    for i in range(3):
        png = np.asarray(Image.open(tmp_path / "out" / f"{i:06d}.input.png"), dtype=np.float32).transpose(2, 0, 1)
        assert np.abs(png - np.load(tmp_path / "out" / f"{i:06d}.image.npy")).max() <= 0.5
    err = capsys.readouterr().err
    assert f"has no {latent_ood.LATENT_OOD_FILE}" in err
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("cut.png" in w for w in warned)
    assert index.name == "index.csv"


def test_image_run_stores_its_latent_reference(tiny, ae_run, tmp_path, tiny_project, capsys):
    cfg = image_config(tiny, ae_run, tmp_path / "img", max_val_items=3, val_views=[0, 1])
    run = train_image_encoder(cfg)
    path = run / latent_ood.LATENT_OOD_FILE
    written = path.stat().st_mtime_ns
    # resuming the complete run (what the notebooks do to make sure it exists) keeps the file ...
    train_image_encoder({**cfg, "resume": True})
    assert path.stat().st_mtime_ns == written
    # ... and writes it when a killed run never got to it
    path.unlink()
    train_image_encoder({**cfg, "resume": True})
    ood = latent_ood.read_latent_ood(run)
    assert ood["reference"].shape == (2, 512) and ood["percentile"] == 99.0
    with np.load(run / latent_ood.LATENT_OOD_FILE) as f:
        assert len(f["validation_distances"]) == 3
        assert ood["threshold"] == pytest.approx(np.percentile(f["validation_distances"], 99))
    near = ood["reference"][0]
    assert latent_ood.latent_warning(ood, near) is None
    assert "farther from the training images'" in latent_ood.latent_warning(ood, near + 10 * ood["threshold"] + 1)
    with pytest.raises(CorruptFileError, match="latents of size 512"):
        latent_ood.latent_warning(ood, np.zeros(7))
    (run / latent_ood.LATENT_OOD_FILE).write_bytes(b"not an npz")
    with pytest.raises(CorruptFileError, match="latent_ood.npz"):
        latent_ood.read_latent_ood(run)


def test_nearest_distances_brute_force():
    rng = np.random.default_rng(1)
    ref, z = rng.normal(size=(50, 8)), rng.normal(size=(7, 8))
    want = np.sqrt(((z[:, None] - ref[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(latent_ood.nearest_distances(ref, z), want, rtol=1e-9)


def test_masks_and_rembg_on_the_cli(tmp_path, tiny_project, monkeypatch, capsys):
    run = tiny_project[1]
    photo = np.full((100, 100, 3), 240, np.uint8)
    photo[30:70, 20:80] = (40, 90, 160)
    Image.fromarray(photo).save(tmp_path / "p.jpg")
    mask = np.zeros((100, 100), np.uint8)
    mask[30:70, 20:80] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    # --mask and --masks are one option; the mask frames the photo exactly as the estimate does here
    assert main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "p.jpg"), "--mask",
                 str(tmp_path / "m.png"), "--out", str(tmp_path / "a")]) == 0
    x, _ = photo_input(tmp_path / "p.jpg", tmp_path / "m.png")
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "000000.image.npy"), x)
    assert main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "p.jpg"), "--masks",
                 str(tmp_path / "m.png"), str(tmp_path / "m.png"), "--out", str(tmp_path / "b")]) == 2
    assert "--masks gives 2 file(s) for 1 image(s)" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "rembg", None)  # not installed: importing it raises ImportError
    with pytest.raises(ConfigError, match="rembg, which is not installed"):
        rembg_foreground(photo, "p.jpg")
    assert main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "p.jpg"), "--background", "rembg",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--background rembg needs the optional package rembg" in err[0]
