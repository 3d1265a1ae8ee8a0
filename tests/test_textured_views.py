"""Looking at textured meshes: turntable views, the fitted scale, the pictures, the GIF and
``lmnet render --mesh`` (with ``--points`` still working beside it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lmnet.cli import main as cli_main
from lmnet.quaternions import qrot
from lmnet.render import textured_views as tv
from lmnet.uvmesh import uv_sphere_template
from lmnet.uvmesh.obj_io import read_obj, write_textured_obj

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _two_colour_texture() -> np.ndarray:
    """``uint8 (16, 32, 3)``: u < 1/2 red, u > 1/2 blue. On the template, u < 1/2 is the +z half
    (segments 9–24 around azimuth 180°, whose vertices have z = −sin θ cos φ > 0)."""
    tex = np.zeros((16, 32, 3), np.uint8)
    tex[:, :16], tex[:, 16:] = RED, BLUE
    return tex


def _colour_fractions(frame: torch.Tensor, cols=slice(None)) -> tuple[float, float]:
    """Fractions of the pixels in ``cols`` that are red, blue (``frame (H, W, 3)`` in [0, 1])."""
    f = frame[:, cols]
    red = ((f[..., 0] > 0.4) & (f[..., 2] < 0.2)).float().mean().item()
    blue = ((f[..., 2] > 0.4) & (f[..., 0] < 0.2)).float().mean().item()
    return red, blue


@pytest.fixture(scope="module")
def sphere():
    return uv_sphere_template(16)


def test_view_rotations_frame():
    q = tv.view_rotations(4, elevation_deg=0.0)
    assert q.shape == (4, 4) and torch.allclose(q.norm(dim=1), torch.ones(4))
    axes = torch.eye(3)
    # azimuth 0: the object's +x faces the viewer (+z), +z points left, +y stays up
    view = qrot(q[0].expand(3, 4), axes)
    assert torch.allclose(view, torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]), atol=1e-6)
    # azimuth 90: the object's +z faces the viewer
    assert torch.allclose(qrot(q[1], axes[2]), torch.tensor([0.0, 0, 1]), atol=1e-6)
    # elevation: the top tilts towards the viewer (seen from above)
    up = qrot(tv.view_rotations(1, elevation_deg=30.0)[0], axes[1])
    assert up[2] > 0.49 and abs(up[1] - np.cos(np.pi / 6)) < 1e-6
    with pytest.raises(ValueError, match="n must be"):
        tv.view_rotations(0)


def test_fit_scale_fills_85_percent_under_every_rotation(sphere):
    v = sphere.vertices * np.array([0.3, 0.5, 1.5]) + np.array([4.0, -2.0, 1.0])
    centre, scale = tv.fit_scale(v)
    assert np.allclose(centre.numpy(), [4.0, -2.0, 1.0], atol=1e-5)
    assert abs(scale * 1.5 - tv.FILL) < 1e-5
    frames = tv.render_textured_mesh(v, sphere.faces, None, None, None, tv.view_rotations(8, 35.0), 64)
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == torch.float32
    for f in frames:
        covered = (f < 0.999).any(-1)
        assert covered.any() and not covered[0].any() and not covered[-1].any()
        assert not covered[:, 0].any() and not covered[:, -1].any()
    with pytest.raises(ValueError, match="no extent"):
        tv.fit_scale(np.ones((5, 3)))


def test_two_colour_texture_shows_both_halves_across_a_turntable(sphere):
    tex = _two_colour_texture().transpose(2, 0, 1) / 255.0
    frames = tv.render_textured_mesh(sphere.vertices, sphere.faces, sphere.uvs, sphere.face_uvs, tex,
                                     tv.view_rotations(4, elevation_deg=0.0), 64, shading=False)
    # azimuth 0: side view, +z (red) on the left, −z (blue) on the right
    assert _colour_fractions(frames[0], slice(0, 30))[0] > 0.4 and _colour_fractions(frames[0], slice(0, 30))[1] == 0
    assert _colour_fractions(frames[0], slice(34, 64))[1] > 0.4 and _colour_fractions(frames[0], slice(34, 64))[0] == 0
    assert _colour_fractions(frames[1])[0] > 0.5 and _colour_fractions(frames[1])[1] == 0   # +z faces the viewer
    assert _colour_fractions(frames[3])[1] > 0.5 and _colour_fractions(frames[3])[0] == 0    # −z faces the viewer
    # unshaded: the texture's colours exactly, the background white
    assert torch.allclose(frames[1][32, 32], torch.tensor(RED) / 255.0, atol=1e-6)
    assert torch.equal(frames[1][0, 0], torch.ones(3))


def test_shading_darkens_towards_the_rim_and_keeps_hue(sphere):
    tex = _two_colour_texture().transpose(2, 0, 1) / 255.0
    rot = tv.view_rotations(1, elevation_deg=0.0, start_deg=90.0)
    flat = tv.render_textured_mesh(sphere.vertices, sphere.faces, sphere.uvs, sphere.face_uvs, tex, rot, 64,
                                   shading=False)[0]
    shaded = tv.render_textured_mesh(sphere.vertices, sphere.faces, sphere.uvs, sphere.face_uvs, tex, rot, 64)[0]
    mask = (flat < 0.999).any(-1)
    ratio = shaded[..., 0][mask] / flat[..., 0][mask]
    assert ratio.min() >= 0.55 - 1e-6 and ratio.max() <= 1.0 + 1e-6 and ratio.max() - ratio.min() > 0.2
    assert torch.equal(shaded[~mask], flat[~mask])  # the background is not shaded
    assert torch.allclose(shaded[mask], flat[mask] * ratio[:, None], atol=1e-5)  # one factor per pixel: same hue


def test_inside_out_faces_still_show_the_outside(sphere):
    tex = _two_colour_texture().transpose(2, 0, 1) / 255.0
    rot = tv.view_rotations(1, elevation_deg=0.0, start_deg=90.0)
    args = (sphere.vertices, sphere.faces, sphere.uvs, sphere.face_uvs, tex, rot, 48)
    flipped = (sphere.vertices, sphere.faces[:, ::-1].copy(), sphere.uvs, sphere.face_uvs[:, ::-1].copy(), tex, rot, 48)
    assert torch.allclose(tv.render_textured_mesh(*args), tv.render_textured_mesh(*flipped), atol=1e-5)


def test_turntable_gif_frames_and_atomic_write(tmp_path, sphere, monkeypatch):
    tex = _two_colour_texture().transpose(2, 0, 1) / 255.0
    frames = tv.render_textured_mesh(sphere.vertices, sphere.faces, sphere.uvs, sphere.face_uvs, tex,
                                     tv.view_rotations(6), 40)
    path = tv.write_gif(tv.to_uint8(frames), tmp_path / "t.gif", ms_per_frame=50)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.info["duration"] == 50
        colours = set()
        for k in range(im.n_frames):
            im.seek(k)
            colours |= {c for _, c in im.convert("RGB").getcolors(4096)}
    assert any(r > 150 and b < 80 for r, _, b in colours) and any(b > 150 and r < 80 for r, _, b in colours)
    before = path.read_bytes()

    def broken_save(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        tv.write_gif(tv.to_uint8(frames[:2]), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.gif"]
    with pytest.raises(ValueError, match="uint8"):
        tv.write_gif(frames, tmp_path / "f.gif")


@pytest.fixture()
def bird_obj(tmp_path, sphere):
    v = sphere.vertices * np.array([0.6, 0.5, 1.2])
    return write_textured_obj(tmp_path / "bird", v, sphere.faces, sphere.uvs, sphere.face_uvs, _two_colour_texture())


def test_cli_mesh_png_jpeg_and_gif(tmp_path, bird_obj):
    out = tmp_path / "bird.png"
    assert cli_main(["render", "--mesh", str(bird_obj), "--size", "64", "--view", "0,0", "--out", str(out)]) == 0
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (64, 64, 3) and (img[0, 0] == 255).all()
    left, right = img[:, :30], img[:, 34:]
    assert ((left[..., 0] > 100) & (left[..., 2] < 60)).mean() > 0.2   # red: +z, left at azimuth 0
    assert ((right[..., 2] > 100) & (right[..., 0] < 60)).mean() > 0.2
    assert cli_main(["render", "--mesh", str(bird_obj), "--size", "32", "--out", str(tmp_path / "b.jpg")]) == 0
    assert Image.open(tmp_path / "b.jpg").format == "JPEG"
    gif = tmp_path / "bird.gif"
    assert cli_main(["render", "--mesh", str(bird_obj), "--gif", "--frames", "5", "--size", "32",
                     "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames == 5


def test_cli_untextured_obj_is_grey(tmp_path):
    obj = tmp_path / "tet.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2//1 3//1 4//1\n")
    mesh = read_obj(obj)
    assert mesh.texture is None and mesh.faces.shape == (4, 3) and (mesh.face_uvs == -1).all()
    out = tmp_path / "tet.png"
    assert cli_main(["render", "--mesh", str(obj), "--size", "48", "--view", "225,-30", "--out", str(out)]) == 0
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    drawn = img[(img < 255).any(-1)]
    assert len(drawn) > 100 and (np.ptp(drawn, axis=1) == 0).all()   # grey: R = G = B
    assert len(np.unique(drawn[:, 0])) >= 2                          # shaded: the faces differ


def _one_line_exit_2(capsys, argv, *expected):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err


def test_cli_mesh_bad_inputs_one_line_exit_2(tmp_path, capsys, bird_obj, monkeypatch):
    out = str(tmp_path / "x.png")
    _one_line_exit_2(capsys, ["render", "--mesh", str(tmp_path / "none.obj"), "--out", out], "none.obj", "does not exist")
    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 1 0 0\n")
    _one_line_exit_2(capsys, ["render", "--mesh", str(flat), "--out", out], "flat.obj", "no faces")
    _one_line_exit_2(capsys, ["render", "--mesh", str(tmp_path / "bird.png"), "--out", out], "bird.png")
    (tmp_path / "bird.mtl").write_text("newmtl bird\n")
    _one_line_exit_2(capsys, ["render", "--mesh", str(bird_obj), "--out", out], "bird.mtl", "map_Kd")
    (tmp_path / "bird.mtl").write_text("newmtl bird\nmap_Kd bird.png\n")
    (tmp_path / "bird.png").write_bytes((tmp_path / "bird.png").read_bytes()[:60])
    _one_line_exit_2(capsys, ["render", "--mesh", str(bird_obj), "--out", out], "bird.png", "truncated")
    line = tmp_path / "line.obj"
    line.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    _one_line_exit_2(capsys, ["render", "--mesh", str(line), "--out", out], "line.obj", "no face")
    _one_line_exit_2(capsys, ["render", "--mesh", str(line), "--gt", "g.npy", "--out", out], "--gt")
    _one_line_exit_2(capsys, ["render", "--mesh", str(line), "--view", "r2n2:1,2,3", "--out", out], "--view")
    _one_line_exit_2(capsys, ["render", "--mesh", str(line), "--out", str(tmp_path / "x.gif")], "--out")
    monkeypatch.setenv("LMNET_MAX_RENDER_PIXELS", "10000")
    _one_line_exit_2(capsys, ["render", "--mesh", str(line), "--gif", "--frames", "4", "--size", "64",
                              "--out", str(tmp_path / "x.gif")], "LMNET_MAX_RENDER_PIXELS")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.gif").exists()


def test_cli_points_and_mesh_are_exclusive_and_points_still_work(tmp_path, bird_obj):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", (rng.random((200, 3)) - 0.5).astype(np.float32) * 0.5)
    assert cli_main(["render", "--points", str(tmp_path / "p.npy"), "--size", "32", "--out",
                     str(tmp_path / "p.png")]) == 0
    assert Image.open(tmp_path / "p.png").size == (32, 32)
    for argv in (["render", "--out", "x.png"],
                 ["render", "--points", str(tmp_path / "p.npy"), "--mesh", str(bird_obj), "--out", "x.png"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2
