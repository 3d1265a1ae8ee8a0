"""Colour in 3D: coloured .ply / .glb files, point colours from the input image, `lmnet synth --colors`,
`lmnet infer --color` and `lmnet mesh --colors`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial import cKDTree

from lmnet.cli import main
from lmnet.colour_files import glb_bytes, write_coloured
from lmnet.data import layout
from lmnet.data.categories import to_synset
from lmnet.data.inputs import crop, read_rgba
from lmnet.errors import DataError
from lmnet.render import grids
from lmnet.render import point_colours as pc
from lmnet.render import render_mesh
from lmnet.synthetic import generator
from test_eval import tiny_project  # noqa: F401  (session fixture)

trimesh = pytest.importorskip("trimesh")

RNG = np.random.default_rng(0)


def _read_back(path):
    """trimesh's reading of ``path``: ``(vertices, uint8 RGB, faces or None)``."""
    g = trimesh.load(path, process=False)
    if isinstance(g, trimesh.Scene):
        (g,) = g.geometry.values()
    if isinstance(g, trimesh.PointCloud):
        return np.asarray(g.vertices), np.asarray(g.colors)[:, :3], None
    return np.asarray(g.vertices), np.asarray(g.visual.vertex_colors)[:, :3], np.asarray(g.faces)


@pytest.mark.parametrize("suffix", [".ply", ".glb"])
@pytest.mark.parametrize("with_faces", [False, True])
def test_coloured_files_read_back_exactly(tmp_path, suffix, with_faces):
    pts = RNG.normal(size=(300, 3)).astype(np.float32)
    col = RNG.integers(0, 256, (300, 3)).astype(np.uint8)
    faces = RNG.integers(0, 300, (200, 3)) if with_faces else None
    path = write_coloured(tmp_path / f"x{suffix}", pts, col, faces)
    v, c, f = _read_back(path)
    np.testing.assert_array_equal(v.astype(np.float32), pts)
    np.testing.assert_array_equal(c, col)
    if with_faces:
        np.testing.assert_array_equal(f, faces)
    else:
        assert f is None


def test_glb_is_a_points_primitive_with_colour_0():
    import json
    import struct

    data = glb_bytes(np.zeros((4, 3)), np.zeros((4, 3), np.uint8))
    magic, version, total = struct.unpack("<III", data[:12])
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    n = struct.unpack("<I", data[12:16])[0]
    prim = json.loads(data[20:20 + n])["meshes"][0]["primitives"][0]
    assert prim["mode"] == 0 and set(prim["attributes"]) == {"POSITION", "COLOR_0"}


@pytest.mark.parametrize("bad, match", [
    (dict(colours=np.zeros((5, 3), np.float32)), "uint8"),
    (dict(points=np.zeros((5, 2))), r"\(N, 3\)"),
    (dict(faces=np.array([[0, 1, 9]])), r"\[0, 5\)"),
    (dict(path="x.obj"), ".ply or .glb"),
])
def test_coloured_files_refuse_bad_input(tmp_path, bad, match):
    args = dict(path="x.ply", points=np.zeros((5, 3)), colours=np.zeros((5, 3), np.uint8), faces=None) | bad
    with pytest.raises(DataError, match=match):
        write_coloured(tmp_path / args["path"], args["points"], args["colours"], args["faces"])
    assert not any(tmp_path.iterdir())


def test_fill_hidden_takes_the_mirror_colour_of_symmetric_clouds():
    # two slabs mirrored in y = 0: the one at +y seen (red / blue halves in z), the one at -y hidden
    seen = np.stack(np.meshgrid(np.linspace(-0.2, 0.2, 9), [0.3], np.linspace(-0.2, 0.2, 9)), -1).reshape(-1, 3)
    pts = np.concatenate([seen, seen * [1, -1, 1]])
    col = np.where(seen[:, 2:3] < 0, [255, 0, 0], [0, 0, 255]).astype(np.float32)
    colours = np.concatenate([col, np.zeros_like(col)])
    known = np.arange(len(pts)) < len(seen)
    assert pc.symmetry_score(pts) < 1.5
    np.testing.assert_array_equal(pc.fill_hidden(pts, colours, known, symmetric=True)[~known], col)
    # without the mirror: the k nearest seen points, all on the same side in z for this layout
    knn = pc.fill_hidden(pts, colours, known, symmetric=False, k=1)[~known]
    np.testing.assert_array_equal(knn, col)


def _coloured_view(category, index, view):
    """A coloured synthetic model rendered as `lmnet synth --colors` does, one view: ``(points (2048, 3),
    colours of their nearest 16384-cloud points (2048, 3), crop (128, 128, 4), ViewMeta)``."""
    verts, faces, face_colours = generator.build_mesh(category, 0, index, colors=True)
    clouds = generator.model_pointclouds(category, 0, index, mesh=(verts, faces))
    ref_colours = generator.model_point_colours(category, 0, index)[16384]
    meta = generator.sample_views(generator._rng(0, to_synset(category), index, generator._STREAM_VIEWS))[view]
    img = render_mesh(torch.from_numpy(verts).float(), torch.from_numpy(faces), meta.azimuth, meta.elevation,
                      meta.distance_ratio, meta.fov, color=torch.from_numpy(face_colours).float(),
                      cull_backfaces=True, lights=generator.UNLIT)[0].numpy()
    _, nearest = cKDTree(clouds[16384]).query(clouds[2048])
    return clouds[2048], ref_colours[nearest].astype(np.float32), np.ascontiguousarray(crop(img)), meta


def test_colour_points_beats_the_mean_colour_on_a_coloured_chair():
    pts, truth, rgba, meta = _coloured_view("chair", 0, 0)
    res = pc.colour_points(pts, rgba)
    assert abs((res.camera.azimuth - meta.azimuth + 180) % 360 - 180) <= 6 and res.camera.iou > 0.9
    err = np.abs(res.colours.astype(np.float32) - truth).mean(1)
    mean_colour = rgba[..., :3][rgba[..., 3] > 127].mean(0)
    base = np.abs(mean_colour - truth).mean(1)
    vis = res.visible
    assert 0.05 < vis.mean() < 0.6
    assert err[vis].mean() <= base[vis].mean() / 3
    assert err[~vis].mean() < base[~vis].mean()


def test_synth_colors_is_off_by_default_and_adds_colour_files(tmp_path):
    plain, coloured = tmp_path / "plain", tmp_path / "coloured"
    synset, mid, _ = generator.generate_model(plain, "table", 0)
    generator.generate_model(coloured, "table", 0, colors=True)
    for n in layout.POINT_COUNTS:
        assert not layout.pointcloud_colours_path(plain, synset, mid, n).exists()
        a = np.load(layout.pointcloud_path(plain, synset, mid, n))
        np.testing.assert_array_equal(a, np.load(layout.pointcloud_path(coloured, synset, mid, n)))
        col = np.load(layout.pointcloud_colours_path(coloured, synset, mid, n))
        assert col.dtype == np.uint8 and col.shape == (n, 3)
        np.testing.assert_array_equal(col, generator.model_point_colours("table", 0, 0)[n])
    grey = read_rgba(layout.image_path(plain, synset, mid, 0))
    rgb = read_rgba(layout.image_path(coloured, synset, mid, 0))
    np.testing.assert_array_equal(grey[..., 3], rgb[..., 3])  # same silhouette, other colours
    assert len(np.unique(rgb[rgb[..., 3] == 255][:, :3], axis=0)) >= 2


def test_infer_color_writes_coloured_clouds_and_mesh_carries_them(tmp_path, tiny_project):
    pytest.importorskip("open3d")
    run = tiny_project[1]
    out = tmp_path / "out"
    assert main(["infer", "--checkpoint", str(run), "--split", "test", "--views", "0", "--limit", "1",
                 "--color", "--format", "glb", "--out", str(out)]) == 0
    pred, colours = np.load(out / "000000.pred.npy"), np.load(out / "000000.colors.npy")
    assert colours.dtype == np.uint8 and colours.shape == pred.shape
    v, c, f = _read_back(out / "000000.pred.glb")
    np.testing.assert_array_equal(v.astype(np.float32), pred)
    np.testing.assert_array_equal(c, colours)
    assert f is None
    mesh_path = tmp_path / "m.ply"
    assert main(["mesh", "--points", str(out / "000000.pred.npy"), "--colors", str(out / "000000.colors.npy"),
                 "--method", "poisson", "--depth", "6", "--out", str(mesh_path)]) == 0
    mv, mc, mf = _read_back(mesh_path)
    assert len(mf) > 0
    _, nearest = cKDTree(pred).query(mv)
    np.testing.assert_array_equal(mc, colours[nearest])
    assert main(["mesh", "--points", str(out / "000000.pred.npy"), "--colors", str(out / "000000.colors.npy"),
                 "--out", str(tmp_path / "m.obj")]) == 2
    np.save(tmp_path / "short.npy", colours[:10])
    assert main(["mesh", "--points", str(out / "000000.pred.npy"), "--colors", str(tmp_path / "short.npy"),
                 "--out", str(tmp_path / "m2.ply")]) == 2
    assert not (tmp_path / "m.obj").exists() and not (tmp_path / "m2.ply").exists()


def test_readme_photo_figure_is_made_by_the_commands(tiny_project, tmp_path):
    """tools/photo_figure.py (the README's docs/photo_colour.png): a coloured synthetic chair as a JPEG
    through lmnet infer --color and lmnet render --colors → photo | network input | two views."""
    spec = importlib.util.spec_from_file_location("photo_figure", Path(__file__).parents[1] / "tools" / "photo_figure.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "fig.png"
    assert tool.main(["--run", str(tiny_project[1]), "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (4 * tool.CELL, grids.grid_header_height(tool.CELL) + tool.CELL)
        pixels = np.asarray(im.convert("RGB")).astype(int)[grids.grid_header_height(tool.CELL):, 2 * tool.CELL:]
    # the prediction cells carry the chair's part colours (saturated), not lmnet's height colours alone
    assert (np.ptp(pixels, axis=-1) > 80).mean() > 0.01
