"""Pseudo-ground-truth generation: autograd visibility against an independent depth test, inverse
rendering against the true texture of a known scene, and the cache writer (formats, resume, folders).

The scene (tests/pseudogt_scene.py): the CUB template deformed by a smooth random displacement map, a
random pose, a smooth random texture, its photograph rendered with ``render_textured``. The true
texture is compared at each UV texel's surface point, read through the renderer's own lookup
(``pad_for_sampling`` + bilinear ``grid_sample``): what a perfect inverse rendering returns.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cmr_standin import write_cub
from pseudogt_scene import (TEMPLATE, corner_uvs, iou, lookup_uvs, make_scene, psnr, resample_true_texture,
                            texel_uvs, uv_covered, zbuffer_visibility)

from lmnet.data import cmr_cache
from lmnet.data.cub import CUBDataset
from lmnet.errors import ConfigError, LmnetError, NonFiniteError
from lmnet.methods.meshrecon.pseudogt import generate_pseudogt, marker_path
from lmnet.render.textured import render_textured, transform_vertices
from lmnet.render.uv_projection import (project_image_to_uv, pseudo_ground_truth, texture_visibility,
                                        visibility_resolution)
from lmnet.uvmesh import pad_for_sampling

FACES, UVS, FACE_UVS = TEMPLATE.tensor("faces"), TEMPLATE.tensor("uvs"), TEMPLATE.tensor("face_uvs")


def _dilate_one_texel(mask: np.ndarray) -> np.ndarray:
    """``mask (T, T)`` grown by one texel (3×3), wrapping around in u (the texture's circular padding)."""
    m = torch.from_numpy(mask).float()[None, None]
    m = torch.cat([m[..., -1:], m, m[..., :1]], -1)
    return (F.max_pool2d(m, 3, 1, (1, 0)) > 0)[0, 0].numpy()


# ----------------------------------------------------------------------------- visibility
def test_visibility_is_the_texture_gradient_of_render_textured():
    scene = make_scene(5, 16, 128)
    tex = scene.texture.clone().requires_grad_(True)
    uv, padded = pad_for_sampling(corner_uvs(), tex, symmetric=True)
    rgb, _, _ = render_textured(scene.vertices_img, FACES, uv, padded, 128)
    (grad,) = torch.autograd.grad(rgb.sum(), tex)
    visible = texture_visibility(scene.vertices_img, FACES, UVS, FACE_UVS, scene.texture, 128)
    assert visible.dtype == torch.bool and visible.shape == (1, 1, 16, 16)
    assert torch.equal(visible, (grad != 0).any(1, keepdim=True)) and 0 < int(visible.sum()) < 256


def test_visibility_resolution_is_at_most_render_size_over_8():
    assert visibility_resolution(128, 1024) == 128 and visibility_resolution(256, 1024) == 128
    assert visibility_resolution(64, 256) == 32 and visibility_resolution(16, 256) == 16
    scene = make_scene(6, 64, 128)
    assert texture_visibility(scene.vertices_img, FACES, UVS, FACE_UVS, scene.texture, 128).shape == (1, 1, 16, 16)


def test_visibility_at_small_sizes_is_the_depth_test_grown_by_the_bilinear_footprint():
    """At render 256 (texture 64 → 32): every texel whose surface point is visible is found (recall),
    and what is found lies within one texel of one (a bilinear read touches the 4 texels around it)."""
    for seed in (0, 1):
        scene = make_scene(seed, 64, 256)
        visible = texture_visibility(scene.vertices_img, FACES, UVS, FACE_UVS, scene.texture, 256)[0, 0].numpy()
        ref = zbuffer_visibility(scene.vertices_img[0].numpy(), lookup_uvs(32).reshape(-1, 2)).reshape(32, 32)
        assert (visible & ref).sum() >= 0.97 * ref.sum()
        assert (visible & ~_dilate_one_texel(ref)).sum() <= 0.01 * visible.sum()


# ----------------------------------------------------------------------------- convmesh's sizes
@pytest.fixture(scope="module")
def full_size():
    """convmesh's render size (1024; visibility at 1024/8 = 128, the 192² texture resized to it), a
    128² pseudo-GT, and the depth-test visibility of both grids."""
    scene = make_scene(0, 192, 1024)
    visible = texture_visibility(scene.vertices_img, FACES, UVS, FACE_UVS, scene.texture, 1024)
    texture, alpha = pseudo_ground_truth(scene.vertices_img, TEMPLATE, scene.texture, scene.photo, resolution=128,
                                         render_size=1024)
    v_img = scene.vertices_img[0].numpy()
    ref_t = zbuffer_visibility(v_img, lookup_uvs(128).reshape(-1, 2)).reshape(128, 128)
    ref_r = zbuffer_visibility(v_img, texel_uvs(128).reshape(-1, 2)).reshape(128, 128)
    return scene, visible[0, 0].numpy(), texture, alpha, ref_t, ref_r


def test_visibility_matches_the_depth_test(full_size):
    scene, visible, texture, alpha, ref_t, ref_r = full_size
    assert visible.shape == (128, 128)
    assert iou(visible, ref_t) >= 0.9                      # measured 0.937
    assert iou(alpha[0, 0].numpy() > 0, ref_r) >= 0.9      # the pseudo-GT's mask at 128²; measured 0.956
    assert ((alpha[0, 0].numpy() > 0) & ref_r).sum() >= 0.99 * ref_r.sum()


def test_pseudo_ground_truth_recovers_the_true_texture_where_visible(full_size):
    scene, visible, texture, alpha, ref_t, ref_r = full_size
    assert texture.shape == (1, 3, 128, 128) and alpha.shape == (1, 1, 128, 128)
    assert set(alpha.unique().tolist()) <= {0.0, 1.0} and bool((texture[alpha.expand_as(texture) == 0] == 0).all())
    truth = resample_true_texture(scene.texture, 128)
    where = (alpha > 0) & torch.from_numpy(ref_r)[None, None]
    assert psnr(texture, truth, where) >= 30                  # measured 34.4 dB


def test_project_image_to_uv_covers_exactly_the_texels_of_a_uv_triangle():
    """The hard alpha is the UV layout's coverage (independent barycentric lookup), whatever the
    image; texels between the pole triangles are not covered."""
    scene = make_scene(3, 16, 64)
    for exact in (False, True):
        texture, alpha = project_image_to_uv(scene.vertices_img, FACES, UVS, FACE_UVS, scene.photo, 64,
                                             pixel_centres=exact)
        assert texture.shape == (1, 3, 64, 64)
        covered = uv_covered(texel_uvs(64).reshape(-1, 2)).reshape(64, 64)
        assert np.array_equal(alpha[0, 0].numpy() > 0, covered) and not covered.all()


# ----------------------------------------------------------------------------- the cache writer
SIZES = {"resolution": 32, "render_size": 64, "image_size": 24}


@pytest.fixture
def cub_train(tmp_path):
    """A 4-image CUB stand-in, opened as the generator needs it."""
    write_cub(tmp_path / "cub")
    return CUBDataset(tmp_path / "cub", "train", image_size=32, extra_sizes=(24, 64))


class TemplatePredictor:
    """The undeformed template under each item's pose, a constant texture; counts its calls and can
    fail at a given call (a run killed midway)."""

    def __init__(self, fail_at: int | None = None):
        self.calls, self.fail_at = 0, fail_at

    def __call__(self, batch):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        b = len(batch["index"])
        vertices = TEMPLATE.tensor("vertices").expand(b, -1, -1)
        v_img = transform_vertices(vertices, batch["scale"], batch["translation"], batch["rotation"])
        return torch.full((b, 3, 16, 16), 0.5), torch.zeros(b, 3, 32, 32), v_img


def _generate(dataset, out, predict=None, **kw):
    return generate_pseudogt(predict or TemplatePredictor(), dataset, out, template=TEMPLATE, batch_size=3,
                             progress=False, **{**SIZES, **kw})


def _contents(out):
    items = sorted((out / "pseudogt_32x32").iterdir())
    poses = cmr_cache.read_poses_metadata(out / "poses_metadata.npz")
    return {p.name: cmr_cache.read_pseudogt(p) for p in items}, poses


def test_generate_writes_convmesh_files_that_read_back(cub_train, tmp_path):
    out = tmp_path / "cache"
    summary = _generate(cub_train, out)
    assert summary["images"] == 4 and summary["written"] == 4 and summary["kept"] == 0
    assert sorted(p.name for p in out.iterdir()) == ["poses_metadata.npz", "pseudogt_32x32", "pseudogt_32x32.json"]
    assert sorted(p.name for p in (out / "pseudogt_32x32").iterdir()) == [f"{i}.npz" for i in range(4)]
    for i in range(4):
        path = cmr_cache.pseudogt_path(out, 32, i)
        data = np.load(path, allow_pickle=True)["data"].item()      # what convmesh does
        assert sorted(data) == ["image", "mesh", "texture", "texture_alpha"]
        expected = {"mesh": (torch.float32, (3, 32, 32)), "texture": (torch.float16, (3, 32, 32)),
                    "texture_alpha": (torch.float16, (1, 32, 32)), "image": (torch.float16, (3, 24, 24))}
        for key, (dtype, shape) in expected.items():
            assert isinstance(data[key], torch.Tensor) and data[key].dtype == dtype and tuple(data[key].shape) == shape
        item = cub_train[i]
        assert torch.equal(data["image"], item["image_24"].half()) and not data["mesh"].any()
        assert 0 < float(data["texture_alpha"].float().mean()) < 1           # the visible half or so
        visible = data["texture_alpha"][0] > 0
        assert float(data["texture"][:, ~visible].abs().max()) == 0
        assert cmr_cache.read_pseudogt(path).keys() == data.keys()
    poses = np.load(out / "poses_metadata.npz", allow_pickle=True)["data"].item()
    assert poses["path"] == cub_train.paths
    assert tuple(poses["translation"].shape) == (4, 3) and not poses["translation"][:, 2].any()
    for i in range(4):
        item = cub_train[i]
        assert torch.equal(poses["scale"][i], item["scale"]) and torch.equal(poses["rotation"][i], item["rotation"])
        assert torch.equal(poses["translation"][i, :2], item["translation"])
    assert cmr_cache.read_poses_metadata(out / "poses_metadata.npz")["path"] == cub_train.paths


def test_a_killed_run_resumes_to_the_same_files(cub_train, tmp_path):
    _generate(cub_train, tmp_path / "clean")
    out = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        _generate(cub_train, out, TemplatePredictor(fail_at=2))   # the first batch of 3 is written
    assert sorted(p.name for p in (out / "pseudogt_32x32").iterdir()) == ["0.npz", "1.npz", "2.npz"]
    assert not (out / "poses_metadata.npz").exists() and not (out / ".lmnet.lock").exists()
    (out / "pseudogt_32x32" / ".3.npz.abc123.npz.tmp").write_bytes(b"half a file")   # a write cut short
    before = {p.name: p.stat().st_mtime_ns for p in (out / "pseudogt_32x32").glob("*.npz")}
    predictor = TemplatePredictor()
    summary = _generate(cub_train, out, predictor)
    assert summary["written"] == 1 and summary["kept"] == 3 and predictor.calls == 1
    assert all((out / "pseudogt_32x32" / n).stat().st_mtime_ns == t for n, t in before.items())
    resumed, clean = _contents(out), _contents(tmp_path / "clean")
    assert resumed[0].keys() == clean[0].keys() == {f"{i}.npz" for i in range(4)}
    for name, entries in clean[0].items():
        assert all(torch.equal(entries[k], resumed[0][name][k]) for k in entries)
    assert all(torch.equal(clean[1][k], resumed[1][k]) for k in ("scale", "translation", "rotation"))
    assert resumed[1]["path"] == clean[1]["path"]


def _one_line_error(excinfo, *words):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, LmnetError) and "\n" not in message
    assert all(w in message for w in words), message


def test_generate_refuses_folders_that_are_not_its_own(cub_train, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as exc:
        _generate(cub_train, a_file)
    _one_line_error(exc, str(a_file), "is a file")
    assert a_file.read_text() == "x"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as exc:
        _generate(cub_train, other)
    _one_line_error(exc, "notes.txt", "not a pseudo-ground-truth cache")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    unmarked = tmp_path / "unmarked"
    (unmarked / "pseudogt_32x32").mkdir(parents=True)
    (unmarked / "pseudogt_32x32" / "0.npz").write_bytes(b"?")
    with pytest.raises(ConfigError) as exc:
        _generate(cub_train, unmarked)
    _one_line_error(exc, "pseudogt_32x32.json")


def test_generate_refuses_to_mix_settings_or_datasets(cub_train, tmp_path):
    out = tmp_path / "cache"
    _generate(cub_train, out, source="run_a")
    with pytest.raises(ConfigError) as exc:
        _generate(cub_train, out, source="run_b")
    _one_line_error(exc, str(marker_path(out, 32)), "source='run_a'", "source='run_b'")
    write_cub(tmp_path / "cub2", seed=1, n_train=3)
    other = CUBDataset(tmp_path / "cub2", "train", image_size=32, extra_sizes=(24, 64))
    with pytest.raises(ConfigError) as exc:
        _generate(other, out, source="run_a", resolution=16)
    _one_line_error(exc, "poses_metadata.npz", "another dataset")


def test_generate_refuses_bad_datasets_and_options(cub_train, tmp_path):
    root = tmp_path / "cub"
    cases = [
        (CUBDataset(root, "train", image_size=32, mirror=True, extra_sizes=(24, 64)), {}, "mirror=False"),
        (CUBDataset(root, "train", image_size=32, extra_sizes=(24,)), {}, "extra_sizes=(24, 64)"),
        (cub_train, {"resolution": 0}, "resolution must be"),
        (cub_train, {"render_size": 4}, "render_size must be"),
        ([1, 2], {}, "dataset must be"),
    ]
    for dataset, kw, words in cases:
        with pytest.raises(ConfigError) as exc:
            _generate(dataset, tmp_path / "out", **kw)
        _one_line_error(exc, words)
    assert not (tmp_path / "out").exists()


def test_a_non_finite_prediction_names_the_image(cub_train, tmp_path):
    def predict(batch):
        texture, displacement, v_img = TemplatePredictor()(batch)
        return texture, displacement.index_fill(0, torch.tensor([1]), float("nan")), v_img

    with pytest.raises(NonFiniteError) as exc:
        _generate(cub_train, tmp_path / "out", predict)
    _one_line_error(exc, cub_train.paths[1], "displacement")
