"""Synthetic ShapeNet: exact on-disk format, frames, determinism, resumability and the key
consistency test (GT cloud projected with the written metadata lands on the rendered silhouette)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lmnet.camera import project_points
from lmnet.data import layout
from lmnet.data.categories import to_synset
from lmnet.data.splits import load_split
from lmnet.data.meshes import sample_surface
from lmnet.synthetic import BUILDERS, build_mesh, generate_dataset, generate_model, model_id
from lmnet.synthetic.generator import MARKER_DIR, model_pointclouds
from lmnet.synthetic.shape_pool import POOL_FIRST_INDEX, generate_shape_pool
from lmnet.errors import ConfigError
from lmnet.render import render_mesh

CATS = ("chair", "table")
N_MODELS = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate_dataset(root, categories=CATS, n_models=N_MODELS, seed=7, workers=1, progress=False)
    return root, summary


def _models(summary):
    return [(s, m) for s, ids in summary["models"].items() for m in ids]


def test_format_exactly_as_layout_reads(dataset):
    root, summary = dataset
    assert summary["generated"] == len(CATS) * N_MODELS and summary["skipped"] == 0
    assert layout.list_synsets(root) == sorted(to_synset(c) for c in CATS)
    for synset, mid in _models(summary):
        assert re.fullmatch(r"[0-9a-f]{32}", mid)
        assert layout.list_models(root, synset) == sorted(summary["models"][synset])
        metas = layout.parse_metadata(layout.metadata_path(root, synset, mid))
        assert len(metas) == 24
        for m in metas:
            assert 0 <= m.azimuth < 360 and 25 <= m.elevation <= 30 and m.inplane == 0
            assert 0.65 <= m.distance_ratio <= 0.9 and m.fov == 25
        rdir = layout.rendering_dir(root, synset, mid)
        assert (rdir / "renderings.txt").read_text().split() == [f"{i:02d}.png" for i in range(24)]
        for v in range(24):
            path = layout.image_path(root, synset, mid, v)
            with Image.open(path) as im:
                assert im.mode == "RGBA" and im.size == (137, 137) and im.format == "PNG"
            img = layout.read_image(path)
            assert img.shape == (137, 137, 4)
            assert (img[[0, 0, -1, -1], [0, -1, 0, -1], 3] == 0).all()  # transparent corners
            assert (img[..., 3] == 255).sum() > 200  # an object is drawn
        for n in layout.POINT_COUNTS:
            path = layout.pointcloud_path(root, synset, mid, n)
            assert np.load(path).dtype == np.float32
            assert layout.read_pointcloud(path, n).shape == (n, 3)


def test_point_clouds_centred_unit_diagonal_and_upright(dataset):
    root, summary = dataset
    for synset, mid in _models(summary):
        p = layout.read_pointcloud(layout.pointcloud_path(root, synset, mid, 16384))
        lo, hi = p.min(0), p.max(0)
        assert np.abs((lo + hi) / 2).max() < 0.01
        assert abs(np.linalg.norm(hi - lo) - 1.0) < 0.01
        top = p[:, 0] < lo[0] + 0.1 * (hi[0] - lo[0])     # -x is up
        bottom = p[:, 0] > hi[0] - 0.1 * (hi[0] - lo[0])  # +x is down: only leg / base ends
        if synset == to_synset("table"):
            assert top.sum() > 2 * bottom.sum()  # the table top is up
        else:
            assert p[top, 2].mean() < -0.1  # the chair back (its top) is at the rear: chairs face +z


def test_surface_sampling_is_uniform():
    # a 2 x 1 rectangle of two triangles of very different shapes: density must follow area only
    v = np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    p = sample_surface(v, f, 40000, np.random.default_rng(0))
    assert p[:, 2].max() == 0 and p[:, 0].min() >= 0 and p[:, 0].max() <= 2
    hist, _, _ = np.histogram2d(p[:, 0], p[:, 1], bins=(4, 2), range=((0, 2), (0, 1)))
    assert np.abs(hist / hist.mean() - 1).max() < 0.05


def test_projected_cloud_lands_on_the_rendered_silhouette(dataset):
    root, summary = dataset
    for synset, mid in _models(summary):
        metas = layout.parse_metadata(layout.metadata_path(root, synset, mid))
        pc = torch.from_numpy(layout.read_pointcloud(layout.pointcloud_path(root, synset, mid, 16384)))
        az, el, dr, fov = (torch.tensor([getattr(m, k) for m in metas])
                           for k in ("azimuth", "elevation", "distance_ratio", "fov"))
        uv, _ = project_points(pc.expand(24, -1, -1), az, el, dr, fov)
        ij = torch.floor(uv).long().numpy()
        shifted = {}
        for shift in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
            ious = []
            for v in range(24):
                alpha = layout.read_image(layout.image_path(root, synset, mid, v))[..., 3] > 127
                q = ij[v] + shift
                ok = ((q >= 0) & (q < 137)).all(1)
                splat = np.zeros((137, 137), bool)
                splat[q[ok, 1], q[ok, 0]] = True  # row = v, column = u
                ious.append((splat & alpha).sum() / (splat | alpha).sum())
            shifted[shift] = ious
        assert min(shifted[(0, 0)]) > 0.8, (synset, mid, shifted[(0, 0)])
        # and the alignment is the best one: any one-pixel shift fits worse
        assert all(np.mean(shifted[(0, 0)]) > np.mean(s) for k, s in shifted.items() if k != (0, 0))


def test_deterministic_and_resumable(dataset, tmp_path):
    root, summary = dataset
    synset, mid = _models(summary)[0]
    index = next(i for i in range(N_MODELS) if model_id(7, synset, i) == mid)
    assert generate_model(tmp_path, synset, index, seed=7) == (synset, mid, True)
    files = [layout.image_path(root, synset, mid, v).relative_to(root) for v in (0, 13)]
    files += [layout.pointcloud_path(root, synset, mid, n).relative_to(root) for n in layout.POINT_COUNTS]
    files += [layout.metadata_path(root, synset, mid).relative_to(root)]
    for rel in files:
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes(), rel
    # a re-run skips the complete model; a model without its marker (killed run) is redone
    assert generate_model(tmp_path, synset, index, seed=7)[2] is False
    (tmp_path / MARKER_DIR / synset / mid).unlink()
    layout.image_path(tmp_path, synset, mid, 5).unlink()
    stale = layout.rendering_dir(tmp_path, synset, mid) / ".05.png.abc123.png.tmp"  # left by a SIGKILL
    stale.write_bytes(b"partial")
    assert generate_model(tmp_path, synset, index, seed=7)[2] is True
    assert layout.image_path(tmp_path, synset, mid, 5).read_bytes() == layout.image_path(root, synset, mid, 5).read_bytes()
    # other seeds / indices give other ids and other shapes
    assert model_id(8, synset, index) != mid and model_id(7, synset, index + 1) != mid
    v0, _, _ = build_mesh("chair", 7, 0)
    v1, _, _ = build_mesh("chair", 7, 1)
    assert v0.shape != v1.shape or not np.allclose(v0, v1)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_rerun_skips_and_writes_disjoint_splits(dataset):
    root, summary = dataset
    again = generate_dataset(root, categories=",".join(CATS), n_models=N_MODELS, seed=7, workers=1, progress=False)
    assert again["generated"] == 0 and again["skipped"] == len(CATS) * N_MODELS
    assert again["models"] == summary["models"]
    seen = set()
    for name in ("train", "val", "test"):
        path = root / "splits" / f"synthetic_{name}_models.json"
        keys = {k for v in load_split(path).values() for k in v}
        assert not keys & seen
        seen |= keys
        json.loads(path.read_text())
    assert seen == {f"{s}/{m}" for s, m in _models(summary)}


def test_every_category_builds_a_clean_mesh():
    for name in BUILDERS:
        for i in range(3):
            v, f, c = build_mesh(name, 0, i)
            assert v.shape[1] == 3 and f.shape[1] == 3 and c.shape == (len(f), 3)
            assert f.min() >= 0 and f.max() < len(v) and np.isfinite(v).all()
            assert ((c >= 0) & (c <= 1)).all()
            lo, hi = v.min(0), v.max(0)
            assert abs(np.linalg.norm(hi - lo) - 1) < 1e-9 and np.abs(lo + hi).max() < 1e-9


def test_meshes_are_outward_oriented_so_backface_culling_is_safe():

    az, el, dr = torch.tensor([0.0, 120.0, 240.0]), torch.full((3,), 27.0), torch.full((3,), 0.75)
    for name in BUILDERS:
        for i in range(1):
            v, f, _ = build_mesh(name, 1, i)
            v, f = torch.from_numpy(v).float(), torch.from_numpy(f)
            both = render_mesh(v, f, az, el, dr, image_size=64, supersample=1)
            front = render_mesh(v, f, az, el, dr, image_size=64, supersample=1, cull_backfaces=True)
            assert (both != front).any(-1).float().mean() < 2e-3, name
            # and the signed volume of the closed parts is positive (outward normals)
            t = v.double()[f]
            assert torch.linalg.det(t).sum() > 0


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="no synthetic shape"):
        generate_dataset(tmp_path, categories="sofa", n_models=1, progress=False)
    with pytest.raises(ConfigError, match="unknown category"):
        generate_dataset(tmp_path, categories="spaceship", n_models=1, progress=False)
    with pytest.raises(ConfigError, match="n_models"):
        generate_dataset(tmp_path, categories="chair", n_models=0, progress=False)


def test_cli_synth_with_worker_processes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lmnet", "synth", "--out", str(tmp_path), "--categories", "car,lamp",
                          "--models", "1", "--seed", "3", "--workers", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 models" in out.stdout
    for cat in ("car", "lamp"):
        synset = to_synset(cat)
        mid = model_id(3, synset, 0)
        layout.read_image(layout.image_path(tmp_path, synset, mid, 23))
        layout.read_pointcloud(layout.pointcloud_path(tmp_path, synset, mid, 1024), 1024)
    bad = subprocess.run([sys.executable, "-m", "lmnet", "synth", "--out", str(tmp_path), "--categories", "sofa"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "sofa" in bad.stderr


# --- the autoencoder's shape pool (point clouds only) -----------------------------------------------

def test_shape_pool_clouds_are_the_generators_at_pool_indices_and_never_a_rendered_model(tmp_path, dataset):
    root, summary = dataset
    out = generate_shape_pool(tmp_path / "pool", CATS, n_models=2, seed=7)
    assert out["generated"] == 2 * len(CATS)
    for synset, mids in out["models"].items():
        assert mids == [model_id(7, synset, POOL_FIRST_INDEX + i) for i in range(2)]
        assert not set(mids) & set(summary["models"][synset])      # disjoint from the rendered set
        for i, mid in enumerate(mids):
            files = sorted(p.name for p in (tmp_path / "pool" / layout.POINTCLOUD_DIR / synset / mid).iterdir())
            assert files == ["pointcloud_2048.npy"]                 # no renders, only the asked size
            got = layout.read_pointcloud(layout.pointcloud_path(tmp_path / "pool", synset, mid, 2048), 2048)
            np.testing.assert_array_equal(got, model_pointclouds(synset, 7, POOL_FIRST_INDEX + i)[2048])
    assert not (tmp_path / "pool" / layout.RENDERING_DIR).exists()
    again = generate_shape_pool(tmp_path / "pool", ",".join(CATS), n_models=2, seed=7)
    assert again["generated"] == 0 and again["models"] == out["models"]


def test_shape_pool_refuses_bad_sizes(tmp_path):
    with pytest.raises(ConfigError, match="sizes"):
        generate_shape_pool(tmp_path, CATS, n_models=1, sizes=(500,))
    with pytest.raises(ConfigError, match="n_models"):
        generate_shape_pool(tmp_path, CATS, n_models=-1)
