"""ShapeNetDataset: item contents vs the raw files, views modes, splits, image cache, bad files."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lmnet import camera
from lmnet.data import image_cache as ic
from lmnet.data import inputs, layout
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.splits import write_split
from lmnet.errors import ConfigError, CorruptFileError, DataError


def _expected(root, key, view, background=255.0):
    """Brute-force reference: per-pixel loops over a cropped PNG and the metadata text."""
    s, m = key.split("/")
    rgba = np.asarray(Image.open(layout.image_path(root, s, m, view)).convert("RGBA"))[4:-5, 4:-5]
    img = np.zeros((3, 128, 128), np.float64)
    for c in range(3):
        a = rgba[..., 3] / 255.0
        img[c] = rgba[..., c] * a + background * (1 - a)
    line = layout.metadata_path(root, s, m).read_text().splitlines()[view].split()
    return img, rgba[..., 3] / 255.0, [float(x) for x in line]


@pytest.mark.parametrize("cache", [False, True])
def test_items_match_raw_files(tiny_shapenet, cache):
    t = tiny_shapenet
    ds = ShapeNetDataset(t.root, n_points=1024, image_cache=cache, background=100.0)
    assert ds.keys == t.keys and ds.categories == t.synsets
    assert len(ds) == 24 * len(t.keys)
    for idx in (0, 5, 24 + 23, len(ds) - 1):
        item = ds[idx]
        key, view = t.keys[idx // 24], idx % 24
        assert item["key"] == key and item["view"] == view and item["index"] == idx
        assert item["category"] == key.split("/")[0] and item["model_id"] == key.split("/")[1]
        pts = np.load(t.root / "ShapeNet_pointclouds" / key / "pointcloud_1024.npy")
        assert item["points"].dtype == torch.float32 and item["points"].shape == (1024, 3)
        np.testing.assert_array_equal(item["points"].numpy(), pts)
        img, mask, meta = _expected(t.root, key, view, background=100.0)
        assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, 128, 128) and item["mask"].dtype == torch.float32
        np.testing.assert_allclose(item["image"].numpy(), img, atol=1e-3)
        np.testing.assert_allclose(item["mask"][0].numpy(), mask, atol=1e-6)
        for name, want in zip(("azimuth", "elevation", "distance_ratio", "fov"), (meta[0], meta[1], meta[3], meta[4])):
            assert item[name].dim() == 0 and item[name].dtype == torch.float32
            assert item[name].item() == pytest.approx(want, rel=1e-6)
    if cache:
        assert list((t.root / ".lmnet_cache").iterdir())


def test_cached_and_uncached_are_identical(tiny_shapenet):
    a = ShapeNetDataset(tiny_shapenet.root, image_cache=False)
    b = ShapeNetDataset(tiny_shapenet.root, image_cache=tiny_shapenet.root.parent / "cache")
    for i in range(0, len(a), 7):
        x, y = a[i], b[i]
        for k in ("image", "mask", "points", "azimuth", "fov"):
            assert torch.equal(x[k], y[k]), k


def test_points_only_mode_reads_no_images(tiny_shapenet):
    t = tiny_shapenet
    os.rename(t.root / "ShapeNetRendering", t.root / "gone")  # point-cloud mode must not care
    ds = ShapeNetDataset(t.root, load_images=False, n_points=16384)
    assert len(ds) == len(t.keys) and set(ds[0]) == {"points", "category", "model_id", "key", "index"}
    assert ds[2]["points"].shape == (16384, 3)
    assert not (t.root / ".lmnet_cache").exists()


def test_split_categories_and_fixed_views(tiny_shapenet, tmp_path):
    t = tiny_shapenet
    chair = t.models["03001627"]
    split = {"03001627": [f"03001627/{m}" for m in chair[:2]], "02691156": [f"02691156/{t.models['02691156'][0]}"]}
    for form in (split, tmp_path / "s.json", tmp_path / "s.txt"):
        if not isinstance(form, dict):
            write_split(form, split)
        ds = ShapeNetDataset(t.root, split=form, categories="chair", views=[3, 7], image_cache=False)
        assert ds.keys == sorted(split["03001627"]) and ds.categories == ["03001627"]
        assert [ds[i]["view"] for i in range(len(ds))] == [3, 7, 3, 7]
    ds = ShapeNetDataset(t.root, categories=["airplane", "03001627"], image_cache=False, views="0,1")
    assert len(ds) == 2 * len(t.keys)


def test_random_views_deterministic_per_epoch(tiny_shapenet):
    t = tiny_shapenet
    ds = ShapeNetDataset(t.root, views="random", seed=1, image_cache=False)
    assert len(ds) == len(t.keys)
    e0 = [ds[i]["view"] for i in range(len(ds))]
    ds.set_epoch(1)
    e1 = [ds[i]["view"] for i in range(len(ds))]
    ds.set_epoch(0)
    assert [ds[i]["view"] for i in range(len(ds))] == e0
    other = ShapeNetDataset(t.root, views="random", seed=1, image_cache=False)
    other.set_epoch(1)
    assert [other[i]["view"] for i in range(len(ds))] == e1
    draws = set()
    for e in range(30):
        ds.set_epoch(e)
        draws.update(ds[i]["view"] for i in range(len(ds)))
    assert len(draws) > 12  # views really vary


def test_dataloader_two_workers_default_collate(tiny_shapenet):
    ds = ShapeNetDataset(tiny_shapenet.root, views="random", seed=3)
    ds.set_epoch(2)
    ref = [ds[i] for i in range(len(ds))]
    dl = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(dl)
    assert batches[0]["image"].shape == (4, 3, 128, 128) and batches[0]["points"].shape == (4, 2048, 3)
    assert batches[0]["azimuth"].shape == (4,) and isinstance(batches[0]["key"], list)
    views = torch.cat([b["view"] for b in batches]).tolist()
    assert views == [r["view"] for r in ref]
    got = torch.cat([b["image"] for b in batches])
    assert torch.equal(got, torch.stack([r["image"] for r in ref]))


def test_bad_values_rejected(tiny_shapenet):
    with pytest.raises(ConfigError, match="n_points"):
        ShapeNetDataset(tiny_shapenet.root, n_points=500)
    with pytest.raises(ConfigError, match="views"):
        ShapeNetDataset(tiny_shapenet.root, views=[24])
    with pytest.raises(ConfigError, match="unknown category"):
        ShapeNetDataset(tiny_shapenet.root, categories="chiar")
    with pytest.raises(DataError, match="no models"):
        ShapeNetDataset(tiny_shapenet.root, categories="car")


def _corrupt(t):
    """Truncate one PNG of model 0, break the metadata of model 1, NaN the cloud of model 2."""
    k0, k1, k2 = t.keys[0], t.keys[1], t.keys[2]
    png = t.model_dir(k0) / "rendering" / "05.png"
    png.write_bytes(png.read_bytes()[:200])
    meta = t.model_dir(k1) / "rendering" / "rendering_metadata.txt"
    lines = meta.read_text().splitlines()
    lines[3] = "12.5 oops 0 0.8 25"
    meta.write_text("\n".join(lines) + "\n")
    pc = t.model_dir(k2, "ShapeNet_pointclouds") / "pointcloud_2048.npy"
    arr = np.load(pc)
    arr[10, 1] = np.nan
    np.save(pc, arr)
    return png, meta, pc


@pytest.mark.parametrize("cache", [False, True])
def test_corrupt_files_raise_naming_the_file(tiny_shapenet, cache):
    t = tiny_shapenet
    png, meta, pc = _corrupt(t)
    ds = ShapeNetDataset(t.root, image_cache=cache)
    with pytest.raises(CorruptFileError) as e:
        ds[5]
    assert e.value.path == str(png) and "truncated" in e.value.reason
    ds[4]  # the other views of that model are fine
    with pytest.raises(CorruptFileError, match="line 4") as e:
        ds[24]
    assert e.value.path == str(meta)
    with pytest.raises(CorruptFileError, match="NaN") as e:
        ds[48]
    assert e.value.path == str(pc)


@pytest.mark.parametrize("cache", [False, True])
def test_skip_bad_excludes_and_reports(tiny_shapenet, cache, caplog):
    t = tiny_shapenet
    png, meta, pc = _corrupt(t)
    with caplog.at_level(logging.WARNING, logger="lmnet.data"):
        ds = ShapeNetDataset(t.root, image_cache=cache, skip_bad=True)
    assert "skipped 3" in caplog.text
    assert ds.keys == [t.keys[0]] + t.keys[3:]
    assert len(ds) == 23 + 24 * (len(t.keys) - 3)
    assert len(ds.skipped) == 3
    assert any(str(png) in s and "view 5" in s for s in ds.skipped)
    assert any(str(meta) in s for s in ds.skipped) and any(str(pc) in s for s in ds.skipped)
    assert 5 not in [ds[i]["view"] for i in range(23)]
    for i in range(len(ds)):
        ds[i]
    rnd = ShapeNetDataset(t.root, image_cache=cache, skip_bad=True, views="random")
    for e in range(20):
        rnd.set_epoch(e)
        assert rnd[0]["view"] != 5


def test_cache_is_reused_and_invalidated_when_files_change(tiny_shapenet, monkeypatch):
    t = tiny_shapenet
    cache_root = t.root / ".lmnet_cache"
    ShapeNetDataset(t.root)
    built = sorted(p.name for p in cache_root.iterdir())
    assert len(built) == 2 and not [p for p in cache_root.iterdir() if p.name.startswith(".")]
    calls = []
    real = ic.build_cache
    monkeypatch.setattr(ic, "build_cache", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    ShapeNetDataset(t.root)
    assert calls == []  # reused
    # replace one view's PNG with a different image (a new file in the rendering folder)
    key = t.keys[-1]
    rd = t.model_dir(key) / "rendering"
    new = np.zeros((137, 137, 4), np.uint8)
    new[..., 3] = 255
    new[..., 0] = 7
    Image.fromarray(new, "RGBA").save(rd / "tmp.png")
    os.replace(rd / "tmp.png", rd / "00.png")
    st = os.stat(rd)
    os.utime(rd, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse-mtime file systems
    ds = ShapeNetDataset(t.root)
    assert calls == [key.split("/")[0]]
    assert ds[t.keys.index(key) * 24]["image"][0].unique().tolist() == [7.0]
    assert sorted(p.name for p in cache_root.iterdir()) == built  # replaced in place, no leftovers


def test_interrupted_cache_build_leaves_no_valid_cache(tiny_shapenet, monkeypatch):
    t = tiny_shapenet
    boom = {"n": 0}
    real = ic._decode_model

    def flaky(*a):
        boom["n"] += 1
        if boom["n"] == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(ic, "_decode_model", flaky)
    with pytest.raises(KeyboardInterrupt):
        ShapeNetDataset(t.root, categories="chair")
    cache_root = t.root / ".lmnet_cache"
    assert list(cache_root.iterdir()) == []  # temp folder removed, nothing valid left
    monkeypatch.setattr(ic, "_decode_model", real)
    ds = ShapeNetDataset(t.root, categories="chair")
    assert len(ds) == 72 and len(list(cache_root.iterdir())) == 1


def test_cache_pickles_without_data(tiny_shapenet):
    import pickle

    ds = ShapeNetDataset(tiny_shapenet.root)
    ds[0]  # opens the memmap in this process
    assert len(pickle.dumps(ds)) < 100_000


def test_threaded_cache_build_matches_serial(tiny_shapenet, tmp_path):
    t = tiny_shapenet
    s = t.synsets[1]
    a = ic.build_cache(t.root, s, t.models[s], tmp_path / "a", progress=False, workers=0)
    b = ic.build_cache(t.root, s, t.models[s], tmp_path / "b", progress=False, workers=2)
    for m in t.models[s]:
        np.testing.assert_array_equal(a.metadata(m), b.metadata(m))
        for v in (0, 11, 23):
            np.testing.assert_array_equal(a.image(m, v), b.image(m, v))
            ref = np.asarray(Image.open(layout.image_path(t.root, s, m, v)).convert("RGBA"))[4:-5, 4:-5]
            np.testing.assert_array_equal(b.image(m, v), ref)


def test_input_sizes_are_the_cameras_and_the_crop_is_the_published_one():
    """lmnet.data.inputs and the camera take their sizes from lmnet.image_sizes (so that the data
    readers need no torch): they are equal, and the crop stays the published ``[4:-5, 4:-5]``."""
    assert (inputs.R2N2_IMAGE_SIZE, inputs.CROP_SIZE, inputs.CROP_OFFSET) == \
        (camera.R2N2_IMAGE_SIZE, camera.CROP_SIZE, camera.CROP_OFFSET) == (137, 128, 4)
    rendering = np.arange(137 * 137 * 2).reshape(137, 137, 2)
    np.testing.assert_array_equal(inputs.crop(rendering), rendering[4:-5, 4:-5])
    assert inputs.CROP_NOTATION == "[4:-5, 4:-5]"


def test_the_data_readers_load_no_torch():
    """Nor does the package itself (what it exports: downloads, the dataset check, :func:`select_keys`),
    so ``lmnet mesh`` / ``lmnet download`` / ``lmnet split`` start without torch."""
    code = ("import sys, lmnet.data, lmnet.data.check, lmnet.data.splits, lmnet.data.inputs, lmnet.data.layout, "
            "lmnet.data.meshes, lmnet.data.pix3d, lmnet.mesh; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
