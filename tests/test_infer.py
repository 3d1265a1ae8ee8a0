"""Inference: output layout, user-image preparation, Variant II samples, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lmnet import infer
from lmnet.data import inputs
from lmnet.errors import ConfigError, DataError
from test_eval import tiny_project  # noqa: F401  (session fixture)
from lmnet.data.dataset import ShapeNetDataset
from lmnet.registry import load_model
from lmnet.cli import main
import lmnet


def _read_index(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_prepare_image_matches_training_pipeline(tmp_path, tiny_shapenet_factory):

    data = tiny_shapenet_factory(n_views=1, point_counts=(1024,), n_models=1, synsets=("03001627",))
    ds = ShapeNetDataset(data.root, views=[0], n_points=1024, image_cache=False)
    png = data.model_dir(data.keys[0]) / "rendering" / "00.png"
    np.testing.assert_array_equal(inputs.prepare_image(png), ds[0]["image"].numpy())  # 137 px: identical


def test_prepare_image_any_size(tmp_path):
    # a wide RGB JPG-like image and a small RGBA image: both → (3, 128, 128) in 0..255
    rgb = np.full((60, 200, 3), 10, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    out = inputs.prepare_image(tmp_path / "wide.png")
    assert out.shape == (3, 128, 128) and out.dtype == np.float32
    # padding is transparent → background (255) at the top rows, the image content in the middle
    assert np.allclose(out[:, 5, 64], 255.0) and np.allclose(out[:, 64, 64], 10.0, atol=1)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 10:30] = [200, 0, 0, 255]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "small.png")
    out = inputs.prepare_image(tmp_path / "small.png", background=0.0)
    assert np.allclose(out[:, 0, 0], 0.0) and np.allclose(out[:, 64, 64], [200, 0, 0], atol=1)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(Exception, match="bad.png"):
        inputs.prepare_image(tmp_path / "bad.png")


def test_predict_split_layout(tmp_path, tiny_project):
    data, run, _ = tiny_project
    index = infer.predict_split(run, tmp_path / "out", split="test", views=[0, 1], batch_size=3)
    rows = _read_index(index)
    assert len(rows) == 4 and [r["id"] for r in rows] == ["000000", "000001", "000002", "000003"]
    r = rows[0]
    assert r["synset"] == "02691156" and r["view"] == "0" and r["samples"] == ""
    assert np.load(tmp_path / "out" / r["image"]).shape == (3, 128, 128)
    gt = np.load(tmp_path / "out" / r["gt"])
    np.testing.assert_array_equal(gt, np.load(data.root / "ShapeNet_pointclouds" / r["synset"] / r["model_id"]
                                              / "pointcloud_1024.npy"))
    pred = np.load(tmp_path / "out" / r["pred"])

    model, _ = load_model(run)
    with torch.no_grad():
        ref = model(torch.from_numpy(np.load(tmp_path / "out" / r["image"]))[None])[0].numpy()
    np.testing.assert_allclose(pred, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="Variant I"):
        infer.predict_split(run, tmp_path / "out2", split="test", samples=3)


def test_variant2_samples_and_cli(tmp_path, tiny_project):

    run = tiny_project[2]
    imgs = []
    for i, size in enumerate([(300, 180), (64, 64)]):
        p = tmp_path / f"in{i}.{'jpg' if i == 0 else 'png'}"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        imgs.append(str(p))
    out = tmp_path / "pred"
    assert main(["infer", "--checkpoint", str(run), "--images", *imgs, "--samples", "4", "--batch-size", "2",
                 "--out", str(out)]) == 0
    rows = _read_index(out / "index.csv")
    assert [r["source"] for r in rows] == imgs and all(r["gt"] == "" for r in rows)
    smp = np.load(out / rows[0]["samples"])
    assert smp.shape == (4, 2048, 3) and not np.allclose(smp[0], smp[1])  # diverse samples
    # seeded: the same command gives the same samples
    again = infer.predict_images(run, imgs[:1], tmp_path / "pred2", samples=4)
    np.testing.assert_array_equal(np.load(again.parent / rows[0]["samples"]), smp)
    assert main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "nope.png"),
                 "--out", str(out)]) == 2


def test_reconstruct_takes_files_and_arrays_like_lmnet_infer(tmp_path, tiny_project):
    """The front door: ``lmnet.reconstruct`` returns in memory what ``lmnet infer --images`` writes,
    for files and for the same pixels given as arrays (RGB or RGBA); a bad array is named."""

    run = tiny_project[1]
    rgb = np.random.default_rng(3).integers(0, 255, (90, 150, 3), dtype=np.uint8)
    rgba = np.zeros((137, 137, 4), np.uint8)
    rgba[30:100, 40:90] = [30, 200, 90, 255]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    index = infer.predict_images(run, files, tmp_path / "out")
    written = np.stack([np.load(tmp_path / "out" / r["pred"]) for r in _read_index(index)])
    clouds = lmnet.reconstruct(files, run)
    assert clouds.shape == (2, 2048, 3) and clouds.dtype == np.float32
    np.testing.assert_array_equal(clouds, written)
    np.testing.assert_array_equal(lmnet.reconstruct([rgb, rgba], run), written)
    # one image, not in a list; other batch sizes: the same up to float summation order
    np.testing.assert_allclose(lmnet.reconstruct(rgb, run)[0], written[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lmnet.reconstruct(files, run, batch_size=1), written, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=r"images\[1\]: expected a uint8 array"):
        lmnet.reconstruct([rgb, rgb.astype(np.float32)], run)
    with pytest.raises(ConfigError, match="reconstruct needs an image run"):
        lmnet.reconstruct(files, Path(run).parent / "ae")  # an autoencoder run
