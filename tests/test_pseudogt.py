"""Pseudo-ground-truth generation: autograd visibility against an independent depth test, inverse
rendering against the true texture of a known scene, and the cache writer (formats, resume, folders).

The scene (tests/pseudogt_scene.py): the CUB template deformed by a smooth random displacement map, a
random pose, a smooth random texture, its photograph rendered with ``render_textured``. The true
texture is compared at each UV texel's surface point, read through the renderer's own lookup
(``pad_for_sampling`` + bilinear ``grid_sample``): what a perfect inverse rendering returns.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cmr_standin import write_cub
from pseudogt_scene import (TEMPLATE, corner_uvs, iou, lookup_uvs, make_scene, psnr, resample_true_texture,
                            texel_uvs, uv_covered, zbuffer_visibility)

from lmnet.data import cmr_cache
from lmnet.data.cub import CUBDataset
from lmnet.errors import ConfigError, LmnetError
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
    assert psnr(texture, truth, where) >= 30                  # measured 34.6 dB


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
