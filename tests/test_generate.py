"""``lmnet generate``: a tiny GAN run writes 16 × (OBJ, MTL, PNG) that re-import with the generated
vertices and the template's UVs, plus the 2048 × 512 picture; conditioning only when the run has it;
bad input gets one line."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import cmr_standin
from lmnet import registry
from lmnet.cli import main
from lmnet.data import cmr_cache
from lmnet.uvmesh import uv_sphere_template
from lmnet.uvmesh.obj_io import read_textured_obj


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    cmr_standin.write_cub(root, n_train=6, n_testval=1)
    paths = [f"{i % 2 + 1:03d}.Bird_{i % 2}/bird_{i}.jpg" for i in range(6)]   # the stand-in's train images
    rng = np.random.default_rng(0)
    cache = root / "cache"
    q = rng.normal(size=(6, 4))
    cmr_cache.write_poses_metadata(cache / cmr_cache.POSES_FILE, np.full((6, 1), 0.7), rng.normal(size=(6, 2)) * 0.05,
                                   q / np.linalg.norm(q, axis=1, keepdims=True), paths)
    for i in range(6):
        alpha = (rng.random((1, 64, 64)) > 0.3).astype(np.float32)
        cmr_cache.write_pseudogt(cmr_cache.pseudogt_path(cache, 64, i), mesh=rng.normal(size=(3, 32, 32)) * 0.05,
                                 texture=np.clip(rng.normal(size=(3, 64, 64)), -1, 1) * alpha, texture_alpha=alpha,
                                 image=np.zeros((3, 8, 8)))
    run = registry.train("meshgan", {"preset": "cpu", "data_root": str(root), "cache_dir": str(cache), "batch_size": 2,
                                     "epochs": 1, "run_dir": str(root / "run"), "progress": False, "amp": False})
    return run


def test_generate_writes_sixteen_meshes_and_the_picture(gan_run, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["generate", "--run", str(gan_run), "--out", str(out), "--seed", "3"]) == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert len(rows) == 16 and all(r["class"] in ("0", "1") for r in rows)
    assert Image.open(out / "samples.png").size == (2048, 512)
    model, _ = registry.load_model(gan_run)
    classes = torch.tensor([[int(r["class"])] for r in rows])
    texture, _, vertices = model.sample(16, classes, None, torch.Generator().manual_seed(3))
    template = uv_sphere_template(16)
    for i in (0, 15):
        mesh = read_textured_obj(out / f"mesh_{i}.obj", axes="y_up")
        assert np.array_equal(mesh.vertices, vertices[i].numpy().astype(np.float32))
        assert np.array_equal(mesh.uvs, template.uvs) and np.array_equal(mesh.face_uvs, template.face_uvs)
        assert mesh.texture.shape == (64, 64, 3)
    # --class fixes every class; a second run into the same folder needs --overwrite
    assert main(["generate", "--run", str(gan_run), "--out", str(out), "--class", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["generate", "--run", str(gan_run), "--out", str(out), "--class", "1", "--count", "3",
                 "--overwrite"]) == 0
    assert [r["class"] for r in csv.DictReader(open(out / "index.csv"))] == ["1"] * 3
    assert not (out / "mesh_3.obj").exists() and Image.open(out / "samples.png").size == (768, 256)


def test_bad_input_gets_one_line(gan_run, tmp_path, capsys):
    def one_line(argv, match):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err

    out = str(tmp_path / "o")
    one_line(["generate", "--run", str(gan_run), "--out", out, "--class", "200"], "--class")
    one_line(["generate", "--run", str(gan_run), "--out", out, "--truncation", "0"], "--truncation")
    one_line(["generate", "--run", str(tmp_path / "missing"), "--out", out], "missing")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    one_line(["generate", "--run", str(gan_run), "--out", str(tmp_path / "mine")], "did not write")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_fid_of_a_gan_run_with_proxy_features(gan_run, tmp_path, capsys):
    assert main(["eval", "fid", "--run", str(gan_run), "--proxy", "--untrained", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "features: `proxy-randconv-v1`" in out and "comparable only with other proxy numbers" in out
    report = (gan_run / "eval_fid.md").read_text()
    for row in ("| full |", "| texture |", "| mesh |", "| mean texture |", "| real vs real (split halves) |",
                "| untrained generator (full) |"):
        assert row in report, row
    assert main(["eval", "fid", "--run", str(gan_run)]) == 2
    assert "exactly one of --inception-weights" in capsys.readouterr().err
    bad = tmp_path / "inception.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, bad)
    assert main(["eval", "fid", "--run", str(gan_run), "--inception-weights", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inception.pth" in err, err
