"""The point-cloud rendering toolbox: colours, views, backends, grids, GIFs, the browser, the CLI."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from lmnet.analysis.preview import dataset_preview_grid
from lmnet.cli import main as cli_main
from lmnet.render import Camera
from lmnet.render import colors as C
from lmnet.render import grids
from lmnet.render.browser import Browser
from lmnet.render.pointclouds import (VIEW_DISTANCE, auto_radius, render_cloud, render_mesh_preview,
                                      resolve_view, turntable_gif)


def _chair_like(n=600, seed=0) -> np.ndarray:
    """A seat, a back and four legs: a shape with depth structure, inside the unit-diagonal box."""
    rng = np.random.default_rng(seed)
    k = n // 3
    seat = np.c_[np.full(k, 0.0), rng.uniform(-0.2, 0.2, k), rng.uniform(-0.2, 0.2, k)]
    back = np.c_[rng.uniform(-0.35, 0.0, k), rng.uniform(-0.2, 0.2, k), np.full(k, -0.2)]
    legs = np.c_[rng.uniform(0.0, 0.3, n - 2 * k), rng.choice([-0.2, 0.2], n - 2 * k),
                 rng.choice([-0.2, 0.2], n - 2 * k)]
    return np.concatenate([seat, back, legs]).astype(np.float32)


def _cmap(name, t):
    return np.asarray(matplotlib.colormaps[name](t)[:3])


# ----------------------------------------------------------------------------- colours
def test_point_errors_match_brute_force():
    rng = np.random.default_rng(1)
    p, g = rng.normal(size=(300, 3)), rng.normal(size=(250, 3))
    ref = np.sqrt(((p[:, None] - g[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(C.point_errors(p, g).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_error_colors_low_and_high_end():
    gt = _chair_like(400)
    pts = np.concatenate([gt[:20], gt[:1] + [[0.0, 0.0, 0.5]]])      # 20 exact, 1 far (0.5 > 0.05)
    col = C.error_colors(pts, gt).numpy()
    np.testing.assert_allclose(col[:20], np.tile(_cmap(C.ERROR_CMAP, 0.0), (20, 1)), atol=1e-6)
    np.testing.assert_allclose(col[20], _cmap(C.ERROR_CMAP, 1.0), atol=1e-6)
    # a point at half the fixed maximum gets the middle of the colormap (±1 LUT step)
    far = np.array([[0.0, 0.0, 10.0]], np.float32)
    gt2 = np.concatenate([far + [[0, 0, C.DEFAULT_ERROR_MAX / 2]], far + [[0, 0, 5.0]]])
    mid = C.error_colors(far, gt2).numpy()[0]
    assert np.abs(mid - _cmap(C.ERROR_CMAP, 0.5)).max() < 0.02
    # percentile scale: the largest error of the cloud hits the top
    top = C.error_colors(pts, gt, error_max="p100").numpy()
    np.testing.assert_allclose(top[20], _cmap(C.ERROR_CMAP, 1.0), atol=1e-6)
    with pytest.raises(ValueError, match="error_max"):
        C.error_colors(pts, gt, error_max="q5")


def test_height_colors_top_is_high_end():
    pts = np.array([[-0.4, 0, 0], [0.0, 0, 0], [0.4, 0, 0]], np.float32)   # -x is up
    col = C.height_colors(pts).numpy()
    np.testing.assert_allclose(col[0], _cmap(C.HEIGHT_CMAP, 1.0), atol=1e-6)
    np.testing.assert_allclose(col[2], _cmap(C.HEIGHT_CMAP, 0.0), atol=1e-6)
    with pytest.raises(ValueError, match="needs the ground-truth"):
        C.point_colors(pts, "error")
    with pytest.raises(ValueError, match="color_by"):
        C.point_colors(pts, "rainbow")


def test_rendered_error_colours_at_projected_points():
    """Flat-shaded error colours land on the pixels the camera projects the points to."""
    gt = _chair_like(300)
    pts = np.array([[0.0, -0.15, 0.15], [0.0, 0.15, 0.15]], np.float32)   # on the seat
    gt = np.concatenate([gt, pts[:1]])                                      # point 0: zero error
    pts[1, 0] -= 0.4                                                        # point 1: 0.4 above it
    size = 96
    img = render_cloud(pts, color_by="error", gt=gt, image_size=size, radius=0.03)[0].numpy()
    uv, _ = resolve_view("three_quarter", 1).project(torch.from_numpy(pts)[None], size)
    for k, t in ((0, 0.0), (1, 1.0)):
        u, v = uv[0, k].tolist()
        px = img[int(v), int(u)]
        assert px[3] == 255
        np.testing.assert_allclose(px[:3] / 255.0, _cmap(C.ERROR_CMAP, t), atol=2.5 / 255)


# ----------------------------------------------------------------------------- views, backends
def test_views_resolve_to_the_right_cameras():
    a = resolve_view("r2n2:30,25,0.8", 1)
    b = Camera.r2n2(30.0, 25.0, 0.8)
    torch.testing.assert_close(a.R, b.R)
    torch.testing.assert_close(a.t, b.t)
    c = resolve_view("r2n2", 1, meta={"azimuth": torch.tensor(30.0), "elevation": 25.0, "distance_ratio": 0.8})
    torch.testing.assert_close(c.R, b.R)
    q = resolve_view("three_quarter", 2)
    assert len(q) == 2 and torch.allclose(q.t[:, 2], torch.full((2,), -VIEW_DISTANCE))
    for bad in ("side", "r2n2:1,2"):
        with pytest.raises(ValueError, match="view must be"):
            resolve_view(bad, 1)
    with pytest.raises(ValueError, match="needs meta"):
        resolve_view("r2n2", 1)
    assert auto_radius(2048, 512) == pytest.approx(0.45 / np.sqrt(2048))
    assert auto_radius(100000, 64) == pytest.approx(1.8 / 64)


def _fg_centroid(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] > 127)
    return np.array([xs.mean(), ys.mean()])


def test_matplotlib_backend_matches_torch_placement():
    pts = _chair_like(500)
    size = 128
    t = render_cloud(pts, image_size=size)[0].numpy()
    m = render_cloud(pts, image_size=size, backend="matplotlib")[0].numpy()
    assert t.shape == m.shape == (size, size, 4)
    assert np.abs(_fg_centroid(t) - _fg_centroid(m)).max() < 3.0
    ft, fm = t[..., 3] > 127, m[..., 3] > 127
    assert (ft & fm).sum() / (ft | fm).sum() > 0.6           # same silhouette, roughly
    assert m[0, 0, 3] == 0 and t[0, 0, 3] == 0               # transparent background
    white = render_cloud(pts, image_size=size, backend="matplotlib", background="white")[0].numpy()
    assert (white[0, 0] == 255).all()


def test_render_cloud_batch_and_torch_occlusion():
    """Batched clouds; a near point hides a far one at the same pixel (true z-buffer)."""
    pts = np.stack([_chair_like(200, 0), _chair_like(200, 1)])
    img = render_cloud(pts, image_size=64, color_by="uniform")
    assert img.shape == (2, 64, 64, 4) and img.dtype == torch.uint8
    cam = resolve_view("three_quarter", 1)
    eye = -(cam.R[0].T @ cam.t[0])
    d = eye / eye.norm()
    near, far = (0.2 * d).numpy(), (-0.2 * d).numpy()
    cloud = np.stack([far, near]).astype(np.float32)
    colors = np.array([[1.0, 0, 0], [0, 0, 1.0]], np.float32)     # far red, near blue
    out = render_cloud(cloud, color_by=colors, image_size=64, radius=0.05, shading=False)[0].numpy()
    assert tuple(out[32, 32]) == (0, 0, 255, 255)


def test_render_mesh_preview_cube():
    v = torch.tensor([[x, y, z] for x in (-0.2, 0.2) for y in (-0.2, 0.2) for z in (-0.2, 0.2)])
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    img = render_mesh_preview(v, f, image_size=64)[0].numpy()
    assert img[32, 32, 3] == 255 and img[0, 0, 3] == 0
    assert np.abs(_fg_centroid(img) - 32).max() < 4
    with pytest.raises(ValueError, match="faces index"):
        render_mesh_preview(v, f + 10, image_size=32)


# ----------------------------------------------------------------------------- grids
def _rows(k_samples=2):
    rng = np.random.default_rng(3)
    img = torch.zeros(3, 128, 128)
    img[0] = 200.0                                     # a flat (200, 0, 0) input image
    gt = _chair_like(300)
    rows = []
    for cat in ("03001627", "02691156"):
        pred = gt + rng.normal(0, 0.01, gt.shape).astype(np.float32)
        rows.append({"image": img, "points": torch.from_numpy(gt), "prediction": pred,
                     "samples": np.stack([pred] * k_samples), "category": cat, "model_id": "abc",
                     "view": 3, "metrics": {"prediction": {"CD×100": 1.234}}})
    return rows


def test_make_grid_size_and_cells(tmp_path):
    cell = 64
    g = grids.make_grid(_rows(2), cell=cell, color_by="error")
    header, cap = grids.grid_header_height(cell), grids.grid_caption_height(cell)
    legend = grids.grid_legend_height(cell)                  # colour_by="error" adds the legend
    assert g.size == (5 * cell, header + 2 * (cap + cell) + legend)   # input, gt, pred, 2 samples
    a = np.asarray(g)
    y0 = header + cap
    inner = a[y0 + 8:y0 + cell - 16, 8:cell - 8]             # the input cell, away from labels
    assert (np.abs(inner.astype(int) - [200, 0, 0]).max(-1) <= 2).mean() > 0.95
    for c in range(1, 5):                                    # every cloud cell has drawn points
        block = a[y0:y0 + cell - 14, c * cell + 2:(c + 1) * cell - 2]
        assert (block.min(-1) < 200).sum() > 20
    # fewer columns, samples capped, titles as a list
    g2 = grids.make_grid(_rows(5), columns=("gt", "samples"), titles=["GT", "s"], cell=cell, max_samples=3)
    assert g2.size == (4 * cell, header + 2 * (cap + cell))
    # sequence rows with a missing entry leave an empty white cell
    g3 = grids.make_grid([[_chair_like(100), None]], columns=("gt", "prediction"), cell=cell)
    b = np.asarray(g3)
    assert (b[header:, cell + 2:] == 255).all()
    with pytest.raises(ValueError, match="columns"):
        grids.make_grid([[1, 2]], cell=cell)
    p = grids.save_grid(tmp_path / "g" / "grid.png", _rows(1), cell=cell)
    assert Image.open(p).size == (4 * cell, header + 2 * (cap + cell))
    assert [x.name for x in p.parent.iterdir()] == ["grid.png"]      # no temp file left behind


def test_make_grid_meshes_and_r2n2_view():
    v = np.array([[x, y, z] for x in (-0.2, 0.2) for y in (-0.2, 0.2) for z in (-0.2, 0.2)], np.float32)
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]])
    row = {"gt": _chair_like(200), "prediction": (v, f), "azimuth": 40.0, "elevation": 25.0,
           "distance_ratio": 0.8}
    g = grids.make_grid([row], cell=48, view="r2n2")
    assert g.size[0] == 2 * 48
    assert (np.asarray(g)[:, 48:].min(-1) < 200).sum() > 20


def test_dataset_preview_grid(tiny_shapenet):
    cell = 48
    g = dataset_preview_grid(tiny_shapenet.root, n_per_category=2, views=(0, 5), cell=cell)
    header, cap = grids.grid_header_height(cell), grids.grid_caption_height(cell)
    assert g.size == (2 * 2 * 2 * cell, header + 2 * (cap + cell))
    with pytest.raises(Exception, match="no category"):
        dataset_preview_grid(tiny_shapenet.root, categories="car", cell=cell)


def test_to_pil_and_show_outside_notebook():
    assert grids.show(np.zeros((8, 8, 3), np.uint8)) is None
    im = grids.to_pil(torch.zeros(2, 8, 8, 4, dtype=torch.uint8))
    assert im.size == (16, 8) and im.mode == "RGBA"
    assert grids.to_pil(torch.full((3, 5, 7), 300.0)).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ValueError, match="expected an image"):
        grids.to_pil(np.zeros((5, 2)))


# ----------------------------------------------------------------------------- GIF, browser, CLI
def test_turntable_gif_frames(tmp_path):
    path = turntable_gif(_chair_like(300), tmp_path / "t.gif", n_frames=6, image_size=48, batch=4)
    im = Image.open(path)
    assert im.n_frames == 6 and im.size == (48, 48) and im.info.get("loop") == 0
    frames = []
    for i in range(6):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    assert not np.array_equal(frames[0], frames[1])          # it spins
    with pytest.raises(ValueError, match="one cloud"):
        turntable_gif(np.zeros((2, 5, 3)), tmp_path / "x.gif")


def test_browser_filtering_and_update():
    recs = _rows(2) + [{**_rows(2)[0], "model_id": "xyz"}]   # chair, airplane, chair
    b = Browser(recs, cell=40)
    assert b.categories == ["airplane", "chair"] and b.filtered == [0, 1, 2]
    png = Image.open(io.BytesIO(b.render_png()))
    assert png.size[0] == 5 * 40
    assert b.set_category("chair") == [0, 2]
    assert b.set_index(1) == 2 and b.current == 2
    assert b.set_category("02691156") == [1] and b.current == 1
    b.set_samples(False)
    assert Image.open(io.BytesIO(b.render_png())).size[0] == 3 * 40
    with pytest.raises(ValueError, match="unknown category"):
        b.set_category("car")
    with pytest.raises(IndexError):
        b.set_index(1)
    # the widget callbacks drive the same logic and refresh the image
    b.set_category("all")
    box = b.widget
    dropdown, slider, toggle, _ = box.children[0].children
    image = box.children[1]
    dropdown.value = "chair"
    assert b.filtered == [0, 2] and slider.max == 1
    slider.value = 1
    assert b.current == 2
    toggle.value = True
    assert image.value == b.render_png() and Image.open(io.BytesIO(image.value)).size[0] == 5 * 40


def test_cli_render_png_strip_and_gif(tmp_path):
    gt = _chair_like(300)
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "pred.npy", gt + 0.01)
    np.save(tmp_path / "samples.npy", np.stack([gt, gt + 0.02]))
    out = tmp_path / "one.png"
    assert cli_main(["render", "--points", str(tmp_path / "pred.npy"), "--size", "64", "--out", str(out)]) == 0
    assert Image.open(out).size == (64, 64)
    out2 = tmp_path / "cmp.png"
    assert cli_main(["render", "--points", str(tmp_path / "pred.npy"), str(tmp_path / "samples.npy"),
                     "--gt", str(tmp_path / "gt.npy"), "--color-by", "error", "--view", "r2n2:45,25,0.8",
                     "--size", "48", "--out", str(out2)]) == 0
    assert Image.open(out2).size == (4 * 48, grids.grid_header_height(48) + 48)
    gif = tmp_path / "t.gif"
    assert cli_main(["render", "--points", str(tmp_path / "pred.npy"), "--gif", "--frames", "4",
                     "--size", "32", "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames == 4
    assert cli_main(["render", "--points", str(tmp_path / "missing.npy"), "--out", str(out)]) == 2
    assert cli_main(["render", "--points", str(tmp_path / "pred.npy"), "--color-by", "error",
                     "--out", str(out)]) == 2
    assert cli_main(["render", "--points", str(tmp_path / "pred.npy"), "--view", "top",
                     "--out", str(out)]) == 2


def test_cli_render_colors_draws_each_points_own_colour(tmp_path, capsys):
    pts = _chair_like(300)
    left = pts[:, 1] < np.median(pts[:, 1])  # the 3D-LMNet frame's left / right halves
    colours = np.where(left[:, None], [220, 30, 30], [30, 60, 220]).astype(np.uint8)
    np.save(tmp_path / "pred.npy", pts)
    np.save(tmp_path / "pred.colors.npy", colours)
    out = tmp_path / "c.png"
    args = ["render", "--points", str(tmp_path / "pred.npy"), "--colors", str(tmp_path / "pred.colors.npy")]
    assert cli_main([*args, "--size", "96", "--out", str(out)]) == 0
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    red, blue = (rgb[..., 0] - rgb[..., 2] > 80).sum(), (rgb[..., 2] - rgb[..., 0] > 80).sum()
    assert red > 50 and blue > 50  # both halves drawn in their own colours (shaded), nothing in height colours
    assert not ((rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) > 40).any()  # viridis' greens absent
    assert cli_main([*args, "--gif", "--frames", "3", "--size", "32", "--out", str(tmp_path / "c.gif")]) == 0
    capsys.readouterr()
    np.save(tmp_path / "short.npy", colours[:10])
    np.save(tmp_path / "float.npy", colours.astype(np.float32))
    for bad, says in (("short.npy", "uint8 (300, 3) (one RGB row per point of --points), got uint8 (10, 3)"),
                      ("float.npy", "expected point colours uint8 (300, 3) (one RGB row per point of --points), "
                                    "got float32 (300, 3)")):
        assert cli_main([*args[:3], "--colors", str(tmp_path / bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad in err[0] and says in err[0]
    assert cli_main([*args, "--color-by", "uniform", "--out", str(out)]) == 2
    assert "--colors colours one --points cloud" in capsys.readouterr().err
