"""Imported runs are used like trained ones: the run's input convention (the published models: the
PNG's RGB as stored, alpha ignored) reaches datasets and ``lmnet infer --images``; ``lmnet eval``
and ``from lmnet import load_model`` take the folder unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_import_port import REFERENCE, make_state

import lmnet
from lmnet.cli import main as cli_main
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import composite, run_background
from lmnet.weights.port import import_port


@pytest.fixture()
def port_run(tmp_path):
    torch.save(make_state(REFERENCE["autoencoder"], 0), tmp_path / "ae.pth")
    torch.save(make_state(REFERENCE["image_encoder_variational"], 1), tmp_path / "img.pth")
    import_port(tmp_path / "ae.pth", tmp_path / "img.pth", "probabilistic", tmp_path / "run", ae_out=tmp_path / "ae")
    return tmp_path / "run", tmp_path / "ae"


def test_run_background_follows_the_input_convention():
    assert run_background({}) == 255.0  # runs written before image_input existed
    assert run_background({"image_input": "composite", "background": 0.0}) == 0.0
    assert run_background({"image_input": "stored_rgb", "background": 255.0}) is None
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200  # a transparent pixel's stored colour
    rgba[0, 0, 3] = 255
    stored, mask = composite(rgba, None)
    assert (stored == 200).all() and mask[0, 0, 0] == 1 and mask[0, 1, 1] == 0
    assert composite(rgba, 255.0)[0][0, 1, 1] == 255.0


def test_dataset_feeds_stored_rgb_for_published_runs(tiny_shapenet):
    ds = ShapeNetDataset(tiny_shapenet.root, views=[0], image_cache=False, background=None)
    white = ShapeNetDataset(tiny_shapenet.root, views=[0], image_cache=False)
    item, ref = ds[0], white[0]
    png = np.asarray(Image.open(tiny_shapenet.model_dir(item["key"]) / "rendering" / "00.png"))[4:-5, 4:-5]
    assert torch.equal(item["image"], torch.from_numpy(png[..., :3].transpose(2, 0, 1).astype(np.float32)))
    assert not torch.equal(item["image"], ref["image"]) and torch.equal(item["mask"], ref["mask"])


def test_infer_images_and_eval_on_an_imported_run(port_run, tiny_shapenet, tmp_path):
    run, ae_run = port_run
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[..., :3] = 90  # colour stored under transparent pixels: the published models see it
    rgba[40:90, 30:100] = (200, 20, 10, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "user.png")
    out = tmp_path / "pred"
    assert cli_main(["infer", "--checkpoint", str(run), "--images", str(tmp_path / "user.png"), "--samples", "2",
                     "--out", str(out)]) == 0
    fed = np.load(out / "000000.image.npy")
    assert np.array_equal(fed, rgba[..., :3].transpose(2, 0, 1).astype(np.float32))
    model, config = lmnet.load_model(run)
    with torch.no_grad():
        expect = model(torch.from_numpy(fed)[None])[0].numpy()
    assert np.allclose(np.load(out / "000000.pred.npy"), expect, atol=1e-6)
    assert np.load(out / "000000.samples.npy").shape == (2, 2048, 3)

    split = tmp_path / "split.json"
    split.write_text(json.dumps({s: [f"{s}/{m}" for m in ms] for s, ms in tiny_shapenet.models.items()}))
    assert cli_main(["eval", "--run", str(run), "--data-root", str(tiny_shapenet.root), "--split-file", str(split),
                     "--views", "0", "--no-emd", "--no-baselines", "--workers", "1", "--max-items", "2"]) == 0

    ae, ae_cfg = lmnet.load_model(ae_run)
    assert ae_cfg["kind"] == "autoencoder" and ae(torch.rand(3, 500, 3)).shape == (3, 2048, 3)
    mu, logvar = model.encode_image(torch.zeros(1, 3, 128, 128))
    assert mu.shape == logvar.shape == (1, 512)
