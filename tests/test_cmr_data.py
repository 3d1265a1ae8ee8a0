"""CUB-200-2011 / Pascal3D+ data in CMR's layouts: stand-in trees written by lmnet's layout writer load
through the loaders, the stored SfM pose re-projects the keypoints (also mirrored), convmesh's crop
and NDC formulas, OpenCV's float64 resize, check-data names every broken struct field, rel_paths stay
inside the root, and the cache files round-trip while a code-executing pickle is refused unrun."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import scipy.io
import torch
from cmr_standin import CUB_PERM, P3D_PERM, write_cub, write_p3d

from lmnet.cli import main
from lmnet.data import cmr, cmr_cache, cmr_item
from lmnet.data.cmr_check import check_cmr
from lmnet.data.cub import CUBDataset
from lmnet.data.inputs import resize_linear_float
from lmnet.data.p3d import P3DDataset
from lmnet.data.paths import PathOutsideRootError
from lmnet.errors import CorruptFileError, DataError
from lmnet.quaternions import quaternion_to_matrix

SIZE = 64


@pytest.fixture
def cub_root(tmp_path):
    root = tmp_path / "cub"
    return root, write_cub(root)


@pytest.fixture
def p3d_root(tmp_path):
    root = tmp_path / "p3d"
    return root, write_p3d(root)


def reprojection_px(item: dict, shape: np.ndarray) -> float:
    """Largest distance in pixels between the visible keypoints and ``s · (R S)[:2] + t``."""
    rot = quaternion_to_matrix(item["rotation"].double().numpy())
    pred = item["scale"].item() * (rot @ shape)[:2].T + item["translation"].double().numpy()
    kp = item["keypoints"].double().numpy()
    vis = kp[:, 2] > 0
    return float(np.abs(pred[vis] - kp[vis, :2]).max() * SIZE / 2)


def test_cub_stand_in_loads_and_its_pose_reprojects_the_keypoints(cub_root):
    root, shape = cub_root
    ds = CUBDataset(root, "train", image_size=SIZE, mirror=True, extra_sizes=(32,))
    assert ds.num_images == 4 and len(ds) == 8
    for index in range(len(ds)):
        item = ds[index]
        assert reprojection_px(item, shape) < 0.5
        assert item["index"] == index and item["mirrored"] == (index >= 4)
        assert item["path"] == ds.paths[index % 4] and item["class_id"] == (index % 4) % 2
        assert item["image"].shape == (3, SIZE, SIZE) and item["mask"].shape == (1, SIZE, SIZE)
        assert item["image_32"].shape == (3, 32, 32) and item["mask_32"].shape == (1, 32, 32)
        assert item["image"].abs().max() <= 1 and torch.all(item["image"][:, item["mask"][0] == 0] == 0)
        assert item["scale"].shape == (1,) and item["translation"].shape == (2,) and item["rotation"].shape == (4,)
    straight, mirrored = ds[0], ds[4]
    assert torch.equal(mirrored["image"], straight["image"].flip(-1))
    visible = straight["keypoints"][:, 2] > 0
    flipped = straight["keypoints"][CUB_PERM].clone()
    flipped[:, 0] = -flipped[:, 0] - 2.0 / SIZE   # x ← W − 1 − x, in NDC
    assert torch.allclose(mirrored["keypoints"][visible[CUB_PERM]], flipped[visible[CUB_PERM]], atol=1e-5)
    gray = ds[1]["image"][:, ds[1]["mask"][0] > 0.5]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])   # grayscale → 3 equal channels
    assert CUBDataset(root, "testval", image_size=SIZE).num_images == 2


def test_p3d_stand_in_loads_with_backslash_paths_and_labels(p3d_root):
    root, shape = p3d_root
    raw = scipy.io.loadmat(root / "data" / "car_train.mat", struct_as_record=False, squeeze_me=True)["images"]
    assert raw[0].rel_path == "car_imagenet\\n02814533_0.JPEG" and raw[0].mask.dtype == np.uint8
    ds = P3DDataset(root, "train", image_size=SIZE, mirror=True)
    assert ds.paths[0] == "car_imagenet/n02814533_0.JPEG"
    for index in range(len(ds)):
        assert reprojection_px(ds[index], shape) < 0.5
    # labels: ids among the sorted names of each column, as convmesh; Pascal images have none
    assert ds.label_names["shape"] == ["sedan", "suv"] and ds.label_names["secondary"] == ["", "white"]
    assert ds[0]["labels"].tolist() == [0, 1, 0] and ds[1]["labels"].tolist() == [1, 0, 1]
    assert ds[2]["labels"].tolist() == [-1, -1, -1] and ds[2]["class_id"] == -1
    assert len(P3DDataset(root, "val", image_size=SIZE)) == 2


def test_crop_scale_and_translation_follow_convmesh():
    # bbox (1-based) 11..50 x 21..40: 0-based 10..49 x 20..39, padded 5 % → 8..51 x 19..40, squared to 44
    assert cmr_item.square_bbox(np.array([11.0, 21.0, 50.0, 40.0])) == [8, 8, 51.0, 51.0]
    mask = np.zeros((60, 70), np.uint8)
    mask[20:40, 10:50] = 1
    anno = cmr.Annotation("x.jpg", np.array([11.0, 21.0, 50.0, 40.0]), np.zeros((3, 15)), mask)
    sfm = cmr.SfmPose(np.eye(3), 20.0, np.array([30.0, 25.0]))
    out = cmr_item.prepare(np.ones((60, 70, 3)) * 0.5, anno, sfm, [SIZE], False, CUB_PERM)
    assert out["scale"][0] == pytest.approx(20.0 * SIZE / 44 * (2.0 / SIZE))
    assert out["translation"] == pytest.approx([2 * (30 - 8) / 44 - 1, 2 * (25 - 8) / 44 - 1], abs=1e-6)
    assert out["rotation"] == pytest.approx([1, 0, 0, 0])
    mirrored = cmr_item.prepare(np.ones((60, 70, 3)) * 0.5, anno, sfm, [SIZE], True, CUB_PERM)
    flip = quaternion_to_matrix(mirrored["rotation"].astype(np.float64))
    assert flip == pytest.approx(np.eye(3), abs=1e-6)   # diag(-1,1,1) I diag(-1,1,1) = I
    assert mirrored["translation"][0] == pytest.approx(2 * ((SIZE - 1) - (30 - 8) * SIZE / 44) / SIZE - 1, abs=1e-6)
    image = out["image"]   # (0.5 * 2 - 1) * mask = 0 everywhere
    assert np.all(image == 0)


def test_float_resize_matches_opencv():
    cv2 = pytest.importorskip("cv2")  # OpenCV is not an lmnet dependency: checked where installed
    weights = "opencv5" if int(cv2.__version__.split(".")[0]) >= 5 else "opencv4"
    rng = np.random.default_rng(0)
    for h, w, nh, nw in [(44, 44, 64, 64), (300, 300, 256, 256), (201, 201, 299, 299), (5, 7, 3, 2), (9, 9, 9, 9)]:
        img = rng.random((h, w, 3))
        ref = cv2.resize(img, (nw, nh))
        assert np.abs(resize_linear_float(img, nh, nw, weights) - ref).max() < 1e-12
        both = resize_linear_float(img, nh, nw, "opencv4"), resize_linear_float(img, nh, nw, "opencv5")
        assert np.abs(both[0] - both[1]).max() < 2e-5
        mask = img[..., :1]
        assert np.abs(resize_linear_float(mask, nh, nw, weights)[..., 0] - cv2.resize(mask, (nw, nh))).max() < 1e-12


def test_clean_trees_pass_check_data(cub_root, p3d_root, capsys):
    for root, name in ((cub_root[0], "cub"), (p3d_root[0], "p3d")):
        rep = check_cmr(root, name)
        assert rep.ok, rep.problems
        assert main(["check-data", "--dataset", name, "--root", str(root)]) == 0
    assert "| train | 4 | 4 |" in capsys.readouterr().out


def _edit_struct(path, var, index, edit):
    """Load ``var`` of ``path`` as records, apply ``edit(entry)`` to entry ``index``, save back."""
    data = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
    arr = data[var]
    edit(arr[0, index])
    scipy.io.savemat(path, {k: v for k, v in data.items() if not k.startswith("__")})


def test_check_data_names_every_broken_field(cub_root, capsys):
    root, _ = cub_root
    anno, sfm = root / "data" / "train_cub_cleaned.mat", root / "sfm" / "anno_train.mat"

    def drop_x2(e):
        box = e["bbox"][0, 0]
        e["bbox"] = np.array([[(box["x1"], box["y1"], box["y2"])]], dtype=[(k, object) for k in ("x1", "y1", "y2")])

    def bad_parts(e):
        e["parts"] = np.zeros((3, 14))

    _edit_struct(anno, "images", 1, drop_x2)
    _edit_struct(anno, "images", 2, bad_parts)
    (root / "CUB_200_2011" / "images" / "001.Bird_0" / "bird_0.jpg").unlink()
    raw = (root / "sfm" / "anno_testval.mat").read_bytes()
    (root / "sfm" / "anno_testval.mat").write_bytes(raw[:len(raw) // 2])
    rep = check_cmr(root, "cub")
    text = "\n".join(rep.problems)
    assert not rep.ok and rep.splits["train"] == {"images": 4, "usable": 1}
    assert f"{anno}: images[1].bbox: no field 'x2'" in text
    assert f"{anno}: images[2].parts: expected a numeric 3x15 array, got float64 array of shape (3, 14)" in text
    assert "bird_0.jpg: missing image" in text
    assert f"{root / 'sfm' / 'anno_testval.mat'}: unreadable or truncated MATLAB file" in text
    assert main(["check-data", "--dataset", "cub", "--root", str(root)]) == 1
    assert "images[1].bbox: no field 'x2'" in capsys.readouterr().out
    with pytest.raises(CorruptFileError, match=r"images\[1\]\.bbox: no field 'x2'"):
        CUBDataset(root, "train")
    with pytest.raises(CorruptFileError, match="anno_testval.mat: unreadable or truncated"):
        CUBDataset(root, "testval")
    _edit_struct(sfm, "sfm_anno", 0, lambda e: e.__setitem__("rot", np.zeros((2, 3))))
    assert any("sfm_anno[0].rot: expected a numeric 3x3 array" in p for p in check_cmr(root, "cub", ["train"]).problems)


def test_an_image_missing_from_images_txt_is_named(cub_root):
    root, _ = cub_root
    listing = root / "CUB_200_2011" / "images.txt"
    listing.write_text("".join(line + "\n" for line in listing.read_text().splitlines() if "bird_3.jpg" not in line))
    rep = check_cmr(root, "cub", ["train"])
    assert rep.problems == [f"{listing}: does not list '002.Bird_1/bird_3.jpg' "
                            f"({root / 'data' / 'train_cub_cleaned.mat'}: images[3].rel_path), so it has no class"]
    with pytest.raises(DataError, match="1 image\\(s\\) of .*train_cub_cleaned.mat are not listed, e.g. '002.Bird_1/bird_3.jpg'"):
        CUBDataset(root, "train")
    listing.unlink()
    assert check_cmr(root, "cub", ["train"]).problems == [f"{listing} does not exist"]


def test_size_mismatch_count_mismatch_and_bad_bbox_are_named(p3d_root):
    root, _ = p3d_root
    from PIL import Image

    Image.new("RGB", (10, 10)).save(root / "PASCAL3D+_release1.1" / "Images" / "car_pascal" / "2009_000000.jpg")
    anno, sfm = root / "data" / "car_val.mat", root / "sfm" / "car_val.mat"
    data = scipy.io.loadmat(sfm, squeeze_me=False, struct_as_record=True)
    scipy.io.savemat(sfm, {"sfm_anno": data["sfm_anno"][:, :1], "S": data["S"]})
    _edit_struct(anno, "images", 1, lambda e: e["bbox"][0, 0].__setitem__("x1", np.array([[500]], np.uint16)))
    problems = "\n".join(check_cmr(root, "p3d", ["val"]).problems)
    assert "2009_000000.jpg: image is 10x10 but its annotation mask is 80x60" in problems
    assert f"{sfm}: 1 sfm_anno entries, but {anno} has 2 images" in problems
    assert "images[1].bbox: x1 <= x2 and y1 <= y2 expected, got x1=500" in problems
    with pytest.raises(CorruptFileError, match=r"car_val.mat: images\[1\]\.bbox: x1 <= x2"):
        P3DDataset(root, "val")


def test_pixel_limit_and_a_huge_bbox_are_refused(cub_root, monkeypatch):
    root, _ = cub_root
    monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(CorruptFileError, match="bird_0.jpg: image of 80x60 = 4,800 pixels is larger than the 1,000"):
        CUBDataset(root, "train")[0]
    monkeypatch.delenv("LMNET_MAX_IMAGE_PIXELS")
    anno = root / "data" / "train_cub_cleaned.mat"
    _edit_struct(anno, "images", 0, lambda e: e["bbox"][0, 0].__setitem__("x2", np.array([[1e9]])))
    with pytest.raises(CorruptFileError, match=r"images\[0\]\.bbox: .* reaches more than the image's size beyond"):
        CUBDataset(root, "train")


def test_rel_paths_that_leave_the_root_are_refused(p3d_root, cub_root, tmp_path):
    root, _ = p3d_root
    (tmp_path / "x.jpg").write_bytes(b"outside")
    anno = root / "data" / "car_train.mat"
    _edit_struct(anno, "images", 0, lambda e: e.__setitem__("rel_path", np.array(["..\\..\\..\\..\\x.jpg"])))
    with pytest.raises(PathOutsideRootError, match=r"car_train.mat: images\[0\]\.rel_path '\.\.\\\\\.\.\\\\"):
        P3DDataset(root, "train")
    assert any("images[0].rel_path" in p and "not a relative path inside" in p for p in check_cmr(root, "p3d").problems)
    croot = cub_root[0]
    _edit_struct(croot / "data" / "testval_cub_cleaned.mat", "images", 0,
                 lambda e: e.__setitem__("rel_path", np.array(["001.Bird_0\\bird_100.jpg"])))
    with pytest.raises(PathOutsideRootError, match="contains a backslash"):
        CUBDataset(croot, "testval")


def test_cache_files_round_trip_in_the_original_format(cub_root, tmp_path):
    root, _ = cub_root
    ds = CUBDataset(root, "train", image_size=SIZE)
    items = [ds[i] for i in range(len(ds))]
    path = cmr_cache.write_poses_metadata(tmp_path / "cache" / cmr_cache.POSES_FILE,
                                          torch.stack([it["scale"] for it in items]),
                                          torch.stack([it["translation"] for it in items]),
                                          torch.stack([it["rotation"] for it in items]), ds.paths)
    back = cmr_cache.read_poses_metadata(path)
    assert back["path"] == ds.paths and back["translation"].shape == (4, 3) and (back["translation"][:, 2] == 0).all()
    assert torch.equal(back["rotation"], torch.stack([it["rotation"] for it in items]))
    # how convmesh reads it (only here, to prove the format)
    original = np.load(path, allow_pickle=True)["data"].item()
    assert original["scale"].dtype == torch.float32 and original["scale"].shape == (4, 1)
    assert torch.equal(original["translation"], back["translation"]) and original["path"] == ds.paths
    gt = {"mesh": torch.randn(3, 32, 32), "texture": torch.rand(3, 16, 16) * 2 - 1,
          "texture_alpha": torch.rand(1, 16, 16), "image": torch.rand(3, 299, 299) * 2 - 1}
    pg = cmr_cache.write_pseudogt(cmr_cache.pseudogt_path(tmp_path / "cache", 16, 3), **gt)
    assert pg == tmp_path / "cache" / "pseudogt_16x16" / "3.npz"
    read = cmr_cache.read_pseudogt(pg)
    assert read["texture"].dtype == torch.float16 and torch.equal(read["texture"], gt["texture"].half())
    assert torch.equal(read["mesh"], gt["mesh"])
    with pytest.raises(DataError, match=r"\['texture'\]: values must be finite and in \[-1.0, 1.0\]"):
        cmr_cache.write_pseudogt(tmp_path / "bad.npz", **{**gt, "texture": gt["texture"] * 3})


def _npz_with_pickle(path, payload: bytes) -> None:
    """A ``.npz`` whose ``data.npy`` is a 0-d object array header followed by ``payload``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.npy", buf.getvalue() + payload)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _HiddenInTorchBytes:
    """Pickles as ``torch.storage._load_from_bytes(<legacy torch.save of a code-executing object>)``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        inner = io.BytesIO()
        torch.save(_WritesMarker(self.marker), inner, _use_new_zipfile_serialization=False)
        return torch.storage._load_from_bytes, (inner.getvalue(),)


@pytest.mark.parametrize("payload", [_WritesMarker, _HiddenInTorchBytes], ids=["global", "embedded-torch-bytes"])
def test_a_code_executing_cache_file_is_refused_unrun(tmp_path, payload):
    marker = tmp_path / "marker"
    arr = np.empty((), object)
    arr[()] = {"scale": torch.zeros(1, 1), "evil": payload(marker)}
    bad = tmp_path / "poses_metadata.npz"
    _npz_with_pickle(bad, pickle.dumps(arr, protocol=3))
    for reader in (cmr_cache.read_poses_metadata, cmr_cache.read_pseudogt):
        with pytest.raises(CorruptFileError, match="refused to unpickle") as err:
            reader(bad)
        assert "posix.system" in str(err.value) or "os.system" in str(err.value)
    assert not marker.exists()


def test_truncated_or_foreign_cache_files_get_one_line(tmp_path):
    path = cmr_cache.write_poses_metadata(tmp_path / "p.npz", [1.0], [[0.0, 0.0]], [[1.0, 0, 0, 0]], ["a.jpg"])
    raw = path.read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="t.npz: unreadable or truncated .npz"):
        cmr_cache.read_poses_metadata(tmp_path / "t.npz")
    np.savez(tmp_path / "plain.npz", data=np.zeros(3))
    with pytest.raises(CorruptFileError, match="expected a pickled object"):
        cmr_cache.read_poses_metadata(tmp_path / "plain.npz")
    arr = np.empty((), object)
    arr[()] = {"scale": {1, 2}}
    _npz_with_pickle(tmp_path / "set.npz", pickle.dumps(arr, protocol=3))
    with pytest.raises(CorruptFileError, match="global builtins.set"):
        cmr_cache.read_poses_metadata(tmp_path / "set.npz")
    with pytest.raises(CorruptFileError, match=r"data: no key 'translation'"):
        cmr_cache.read_poses_metadata(cmr_cache.write_npz_object(tmp_path / "k.npz", {"scale": torch.zeros(1, 1)}))


def test_p3d_permutation_is_read_one_based(p3d_root):
    root, _ = p3d_root
    assert np.array_equal(P3DDataset(root, "val").perm, P3D_PERM)
    scipy.io.savemat(root / "data" / "car_kps.mat", {"kp_perm_inds": np.array([[1, 1, 2]], np.uint8)})
    with pytest.raises(CorruptFileError, match=r"kp_perm_inds: expected a permutation of 1..K \(K=3\)"):
        P3DDataset(root, "val")
