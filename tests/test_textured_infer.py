"""From photographs to textured meshes with a tiny-trained mesh-estimation run: ``lmnet infer`` writes
OBJ / MTL / PNG that re-import with the predicted vertices and the template's UVs, ``lmnet pseudogt``
writes the original cache formats from the run, and bad inputs get one line with nothing written."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lmnet import registry
from lmnet.cli import main
from lmnet.data import cmr_cache
from lmnet.data.cub import CUBDataset
from lmnet.infer_textured import reconstruct_textured
from lmnet.methods.meshrecon.evaluate import evaluate_on_truth, masked_psnr, mean_truth_texture
from lmnet.synthetic import generate_cmr, read_truth
from lmnet.uvmesh import uv_sphere_template
from lmnet.uvmesh.obj_io import read_textured_obj


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("textured")
    data = root / "cub"
    generate_cmr(data, "cub", n_train=6, n_val=2, image_size=(64, 96), novel_views=1, truth_size=32, progress=False)
    run = registry.train("meshrecon", {"preset": "cpu", "data_root": str(data), "epochs": 1, "batch_size": 3,
                                       "run_dir": str(root / "run"), "progress": False, "amp": False})
    photo = next((data / "CUB_200_2011" / "images").rglob("*.jpg"))
    return {"root": root, "data": data, "run": run, "photo": photo}


def test_infer_writes_meshes_that_reimport_exactly(tiny, tmp_path, capsys):
    out = tmp_path / "meshes"
    assert main(["infer", "--checkpoint", str(tiny["run"]), "--images", str(tiny["photo"]), "--gif",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert [r["id"] for r in rows] == ["000000"] and rows[0]["source"] == str(tiny["photo"])
    for name in ("000000.obj", "000000.mtl", "000000.png", "000000.render.png", "000000.input.png",
                 "000000.turntable.gif"):
        assert (out / name).is_file(), name
    mesh = read_textured_obj(out / "000000.obj")
    expected = reconstruct_textured(tiny["photo"], tiny["run"])[0]
    template = uv_sphere_template(16)
    assert np.array_equal(mesh.vertices, expected["vertices"].astype(np.float32))
    assert np.array_equal(mesh.uvs, template.uvs) and np.array_equal(mesh.faces, template.faces)
    assert np.array_equal(mesh.face_uvs, template.face_uvs)
    assert mesh.texture.shape == (64, 64, 3)
    render = np.asarray(Image.open(out / "000000.render.png").convert("RGB"))
    assert (render < 250).any(axis=-1).mean() > 0.05   # the mesh is in the picture, on white
    # the same folder again is refused, --overwrite replaces
    assert main(["infer", "--checkpoint", str(tiny["run"]), "--images", str(tiny["photo"]), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["infer", "--checkpoint", str(tiny["run"]), "--images", str(tiny["photo"]), "--out", str(out),
                 "--overwrite"]) == 0
    assert not (out / "000000.turntable.gif").exists()


def _one_line_and_nothing_written(capsys, out, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert not out.exists() or not any(out.iterdir())


def test_bad_photos_get_one_line_and_nothing_is_written(tiny, tmp_path, capsys):
    out = tmp_path / "o"
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(blank)
    base = ["infer", "--checkpoint", str(tiny["run"]), "--out", str(out), "--images"]
    _one_line_and_nothing_written(capsys, out, base + [str(tiny["photo"]), str(blank)], "no object")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    _one_line_and_nothing_written(capsys, out, base + [str(text)], "notes.jpg")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(tiny["photo"].read_bytes()[:200])
    _one_line_and_nothing_written(capsys, out, base + [str(cut)], "cut.jpg")
    _one_line_and_nothing_written(capsys, out, base + [str(tiny["photo"]), "--masks", str(blank), str(blank)],
                                  "--masks")


def test_a_truncated_annotation_file_stops_training_with_one_line(tiny, tmp_path, capsys):
    data = tmp_path / "cub"
    shutil.copytree(tiny["data"], data)
    mat = data / "data" / "train_cub_cleaned.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    argv = ["train", "meshrecon", "--set", "preset=cpu", "--set", f"data_root='{data}'", "--set",
            f"run_dir='{tmp_path / 'run'}'", "--set", "epochs=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train_cub_cleaned.mat" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_pseudogt_from_a_run_writes_the_original_formats(tiny, tmp_path, capsys):
    out = tmp_path / "cache"
    argv = ["pseudogt", "--run", str(tiny["run"]), "--out", str(out), "--resolution", "32", "--render-size", "128",
            "--image-size", "48", "--no-progress"]
    assert main(argv) == 0
    files = sorted((out / "pseudogt_32x32").glob("*.npz"))
    assert len(files) == 6
    item = cmr_cache.read_pseudogt(files[0])
    assert item["mesh"].shape == (3, 32, 32) and item["texture"].dtype == torch.float16
    assert item["texture"].shape == (3, 32, 32) and item["image"].shape == (3, 48, 48)
    assert float(item["texture_alpha"].float().mean()) > 0   # some texels are visible
    poses = cmr_cache.read_poses_metadata(out / "poses_metadata.npz")
    assert poses["rotation"].shape == (6, 4) and len(poses["path"]) == 6
    assert main(argv) == 0
    assert "6 kept" in capsys.readouterr().out


def test_the_truth_scores_perfectly_and_the_baseline_does_not(tiny):
    """The study's measures (lmnet.methods.meshrecon.evaluate) on an oracle that predicts the truth."""
    val = CUBDataset(tiny["data"], "testval", image_size=64)
    calls = iter(range(len(val)))

    def oracle(x):
        truth = read_truth(tiny["data"], "testval", next(calls))
        return torch.from_numpy(truth["texture"])[None], torch.from_numpy(truth["vertices"])[None]

    template = uv_sphere_template(16)
    mean_texture = mean_truth_texture(tiny["data"], "train", 6)
    result = evaluate_on_truth(oracle, val, tiny["data"], "testval", template, mean_texture)
    m = result["mean"]
    assert len(result["items"]) == 2 and m["iou"] > 0.95 and m["psnr_novel"] == float("inf")
    assert m["iou_template"] < m["iou"] and 0 < m["psnr_baseline"] < 30
    assert masked_psnr(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.2), torch.ones(1, 1, 2, 2)) == \
        pytest.approx(10 * np.log10(4 / 0.04))
