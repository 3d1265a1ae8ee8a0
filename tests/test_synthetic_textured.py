"""Synthetic textured birds and cars (lmnet.synthetic.textured): the trees load through the CUB and
Pascal3D+ loaders and pass check-data; the loaded pose is the truth's and re-projects the keypoint
vertices; the truth vertices rendered under the loaded NDC pose reproduce the loader's mask (also
mirrored); truth files round-trip without pickles; same seed, same bytes; resumable; refusals."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import scipy.io
import torch

from lmnet.cli import main
from lmnet.data import cub, p3d
from lmnet.data.cub import CUBDataset
from lmnet.data.p3d import P3DDataset
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.quaternions import quaternion_to_matrix
from lmnet.render.textured import render_textured, transform_vertices
from lmnet.synthetic import textured
from lmnet.synthetic.textured import generate_cmr
from lmnet.synthetic.textured_truth import read_truth, truth_path
from lmnet.uvmesh import uv_sphere_template

SIZE = 128
SMALL = dict(n_train=5, n_val=2, n_classes=3, image_size=(80, 120), novel_views=2, truth_size=48, progress=False)
DATASETS = {"cub": (CUBDataset, "train", "testval", cub.KP_PERM),
            "p3d": (P3DDataset, "train", "val", np.array(p3d.KP_PERM_1BASED) - 1)}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = {}
    for fmt in DATASETS:
        root = tmp_path_factory.mktemp(fmt)
        generate_cmr(root, fmt, **SMALL)
        out[fmt] = root
    return out


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", DATASETS)
def test_trees_load_and_pass_check_data(roots, fmt, capsys):
    cls, train, other, perm = DATASETS[fmt]
    root = roots[fmt]
    assert main(["check-data", "--dataset", fmt, "--root", str(root)]) == 0
    ds = cls(root, train, image_size=64)
    assert ds.num_images == 5 and cls(root, other, image_size=64).num_images == 2
    for i in range(ds.num_images):
        assert ds[i]["class_id"] == read_truth(root, train, i)["class_id"] == i % 3
    shape = scipy.io.loadmat(root / ("sfm/anno_train.mat" if fmt == "cub" else "sfm/car_train.mat"))["S"]
    assert np.array_equal(shape[:, perm], np.diag([-1.0, 1, 1]) @ shape)   # mirror-symmetric mean shape
    assert not (root / textured.WORK_DIR).exists()


@pytest.mark.parametrize("fmt", DATASETS)
def test_loaded_pose_renders_the_truth_onto_the_mask_and_keypoints(roots, fmt):
    """The key consistency: the loader's NDC pose, applied to the truth vertices with the renderer's
    transform, gives the crop's mask (IoU ≥ 0.95) and the keypoints (≤ 0.5 px); unmirrored items
    carry exactly the truth's pose. Mirrored items: the mesh is mirror-symmetric, so the same
    vertices render the flipped crop (CMR's ``x ← W − 1 − x`` shifts it by one pixel)."""
    cls, train, _, _ = DATASETS[fmt]
    root = roots[fmt]
    ds = cls(root, train, image_size=SIZE, mirror=True)
    template = uv_sphere_template(textured.RINGS[fmt])
    faces, face_uvs = template.tensor("faces"), template.tensor("uvs")[template.tensor("face_uvs")][None]
    n = ds.num_images
    for index in range(len(ds)):
        item, truth = ds[index], read_truth(root, train, index % n)
        if index < n:
            for key in ("scale", "translation", "rotation"):
                assert np.array_equal(item[key].numpy(), truth[key]), key
        vertices = torch.from_numpy(truth["vertices"])[None]
        v_img = transform_vertices(vertices, item["scale"][None], item["translation"][None], item["rotation"][None])
        _, _, mask = render_textured(v_img, faces, face_uvs, torch.zeros(1, 3, 4, 4), SIZE)
        loaded, drawn = item["mask"][0] > 0.5, mask[0, 0] > 0
        assert (loaded & drawn).sum() / (loaded | drawn).sum() >= 0.95, index
        rot = quaternion_to_matrix(item["rotation"].double().numpy())
        kv = truth["vertices"][truth["keypoint_vertices"]].astype(np.float64)
        pred = item["scale"].item() * (kv @ rot.T)[:, :2] + item["translation"].double().numpy()
        kp = item["keypoints"].double().numpy()
        visible = kp[:, 2] > 0
        assert visible.any() and np.abs(pred[visible] - kp[visible, :2]).max() * SIZE / 2 < 0.5


def test_truth_files_round_trip_without_pickles(roots):
    root = roots["cub"]
    path = truth_path(root, "testval", 1)
    with np.load(path, allow_pickle=False) as z:
        raw = {k: z[k] for k in z.files}
    truth = read_truth(root, "testval", 1)
    assert set(raw) == set(truth)
    assert truth["texture"].shape == (3, 128, 128) and truth["texture"].dtype == np.float32
    assert np.abs(truth["texture"]).max() <= 1
    full = truth["texture"]
    assert np.array_equal(full[..., :64], full[..., 63::-1])                 # mirror about u = 1/4
    assert truth["displacement"].shape == (3, 32, 32) and truth["vertices"].shape == (482, 3)
    assert truth["novel_rgba"].shape == (2, 4, 48, 48) and truth["novel_rotation"].shape == (2, 4)
    rgba = truth["novel_rgba"]
    assert np.all(rgba[:, :3][np.broadcast_to(rgba[:, 3:] == 0, rgba[:, :3].shape)] == 0)
    assert set(np.unique(rgba[:, 3])) <= {0.0, 1.0} and rgba[:, 3].sum() > 0
    v = truth["vertices"]
    mirror = uv_sphere_template(16).mirror
    assert np.array_equal(v[mirror], v * np.array([-1, 1, 1], np.float32))  # exact symmetry


def test_bad_truth_files_are_refused_by_name(roots, tmp_path):
    bad = tmp_path / "truth" / "train" / "0.npz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="0.npz"):
        read_truth(tmp_path, "train", 0)
    with zipfile.ZipFile(truth_path(roots["cub"], "train", 0)) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            if info.filename != "rotation.npy":
                dst.writestr(info, src.read(info))
    with pytest.raises(CorruptFileError, match="rotation"):
        read_truth(tmp_path, "train", 0)
    with pytest.raises(DataError, match="no such file"):
        read_truth(tmp_path, "train", 7)


def test_same_seed_same_bytes_and_resume_after_interruption(roots, tmp_path, monkeypatch):
    expected = _files(roots["cub"])
    real = textured.make_item
    calls = []

    def interrupted(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(textured, "make_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_cmr(tmp_path / "a", "cub", **SMALL)
    assert not (tmp_path / "a" / "data").exists()        # no layout before every item is done
    monkeypatch.setattr(textured, "make_item", real)
    summary = generate_cmr(tmp_path / "a", "cub", **SMALL)
    assert summary["generated"] == 7 - 3 and summary["skipped"] == 3
    got = _files(tmp_path / "a")
    mats = [k for k in expected if k.endswith(".mat")]
    assert {k: v for k, v in got.items() if k not in mats} == {k: v for k, v in expected.items() if k not in mats}
    for k in mats:   # a .mat header holds its creation time: compare the contents
        a, b = scipy.io.loadmat(roots["cub"] / k), scipy.io.loadmat(tmp_path / "a" / k)
        assert repr(a[[n for n in a if not n.startswith("__")][0]]) == repr(b[[n for n in b if not n.startswith("__")][0]])
    again = generate_cmr(tmp_path / "a", "cub", **SMALL)
    assert again["generated"] == 0 and again["skipped"] == 7
    other = generate_cmr(tmp_path / "b", "cub", **{**SMALL, "n_train": 1, "n_val": 1}, seed=1)
    assert other["generated"] == 2
    assert (tmp_path / "b" / "truth/train/0.npz").read_bytes() != (tmp_path / "a" / "truth/train/0.npz").read_bytes()


def test_refuses_a_file_an_unrelated_folder_and_other_settings(roots, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        generate_cmr(tmp_path / "file", "cub", **SMALL)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt"):
        generate_cmr(tmp_path / "other", "cub", **SMALL)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    with pytest.raises(ConfigError, match="seed=0"):
        generate_cmr(roots["cub"], "cub", **SMALL, seed=3)
    with pytest.raises(ConfigError, match="n_classes"):
        generate_cmr(tmp_path / "new", "cub", **{**SMALL, "n_classes": 9})


def test_cli_writes_both_formats_and_refuses_a_file(tmp_path, capsys):
    for fmt in ("cub", "p3d"):
        out = tmp_path / fmt
        assert main(["synth", "--format", fmt, "--out", str(out), "--models", "2", "--val", "1", "--classes", "2",
                     "--no-progress"]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"synthetic {fmt} in {out}: 2 train, 1 ") and "2 classes (3 generated" in line
        assert main(["check-data", "--dataset", fmt, "--root", str(out)]) == 0
        capsys.readouterr()
    (tmp_path / "f").write_text("x")
    assert main(["synth", "--format", "cub", "--out", str(tmp_path / "f"), "--models", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err and "Traceback" not in err
