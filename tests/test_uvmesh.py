"""The UV-sphere template, its maps, the OBJ + MTL + PNG files and the flatness loss (lmnet.uvmesh)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lmnet.errors import ConfigError, CorruptFileError, DataError, NonFiniteError
from lmnet.losses.flatness import face_normals, flatness_loss
from lmnet.uvmesh import (adjust_poles, circpad, face_adjacency, pad_for_sampling, remap_u,
                          symmetrize_texture, uv_sphere_template)
from lmnet.uvmesh.obj_io import read_textured_obj, texture_to_uint8, write_textured_obj

COUNTS = {16: (482, 559, 960), 31: (962, 1054, 1920)}


# --------------------------------------------------------------------------- template structure

@pytest.mark.parametrize("rings", [16, 31])
def test_counts_and_first_vertex(rings):
    t = uv_sphere_template(rings)
    v, vt, f = COUNTS[rings]
    assert (t.vertices.shape, t.uvs.shape, t.faces.shape, t.face_uvs.shape) == ((v, 3), (vt, 2), (f, 3), (f, 3))
    assert t.faces.dtype == t.face_uvs.dtype == t.ff.dtype == np.int64
    np.testing.assert_allclose(t.vertices[0], [0.0, math.cos(math.pi / rings), -math.sin(math.pi / rings)],
                               atol=1e-7)
    assert len(np.unique(t.faces)) == v and len(np.unique(t.face_uvs)) == vt
    assert t.uvs.min() == 0.0 and t.uvs.max() == 1.0


def test_cached_and_read_only():
    t = uv_sphere_template(16)
    assert uv_sphere_template(16) is t
    with pytest.raises(ValueError):
        t.vertices[0, 0] = 5.0
    first = int(t.faces[0, 0])
    copy = t.tensor("faces")
    copy[0, 0] = first + 1
    assert t.faces[0, 0] == first and copy.dtype == torch.int64
    with pytest.raises(ValueError, match="not an array field"):
        t.tensor("rings")
    with pytest.raises(ConfigError, match="rings"):
        uv_sphere_template(2)


@pytest.mark.parametrize("rings", [16, 31])
def test_unit_sphere_outward_winding_and_uv_layout(rings):
    t = uv_sphere_template(rings)
    v = t.vertices.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    a, b, c = v[t.faces[:, 0]], v[t.faces[:, 1]], v[t.faces[:, 2]]
    assert np.all(np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) > 0)
    # the (u, v) triangles wind counter-clockwise too (the texture is seen unmirrored from outside)
    # and none is degenerate
    ua, ub, uc = t.uvs[t.face_uvs[:, 0]], t.uvs[t.face_uvs[:, 1]], t.uvs[t.face_uvs[:, 2]]
    area = (ub[:, 0] - ua[:, 0]) * (uc[:, 1] - ua[:, 1]) - (ub[:, 1] - ua[:, 1]) * (uc[:, 0] - ua[:, 0])
    assert np.all(area > 0)
    # the v of every corner is 1 − θ/π of its vertex
    theta = np.arccos(np.clip(v[t.faces.ravel(), 1], -1, 1))
    np.testing.assert_allclose(t.uvs[t.face_uvs.ravel(), 1], 1 - theta / np.pi, atol=1e-6)


def structure_digest(vertices, faces, uvs, face_uvs, rings: int) -> str:
    """SHA-256 of a mesh's faces written in grid labels, independent of vertex / UV / face order.

    A vertex is labelled ``"segment,ring"`` from its azimuth ``atan2(x, −z)`` in steps of 2π/32 and its
    polar angle ``acos(y)`` in steps of π/R (``N`` / ``S`` at the poles), a UV point by
    ``round(64u), round(R·v)``; a face is its three ``vertex/uv`` labels rotated to start at the
    smallest (the winding is kept); the sorted faces are hashed. Rounding to grid steps makes the
    digest insensitive to the 1e-6 print precision of an OBJ file.
    """
    vertices, uvs = np.asarray(vertices, dtype=np.float64), np.asarray(uvs, dtype=np.float64)

    def vlabel(p):
        if abs(p[1]) > 1 - 1e-4:
            return "N" if p[1] > 0 else "S"
        seg = round(math.atan2(p[0], -p[2]) / (2 * math.pi / 32)) % 32
        return f"{seg},{round(math.acos(max(-1.0, min(1.0, p[1]))) / (math.pi / rings))}"

    vl = [vlabel(p) for p in vertices]
    tl = [f"{round(u * 64)},{round(v * rings)}" for u, v in uvs]
    out = []
    for fv, ft in zip(np.asarray(faces), np.asarray(face_uvs)):
        corners = [f"{vl[a]}/{tl[b]}" for a, b in zip(fv, ft)]
        i = corners.index(min(corners))
        out.append(" ".join(corners[i:] + corners[:i]))
    return hashlib.sha256("\n".join(sorted(out)).encode()).hexdigest()


#: structure_digest of convmesh's CUB template (dariopavllo/convmesh mesh_templates/uvsphere_16rings.obj,
#: MIT licence, as redistributed in NikolaZubic/2dimageto3dmodel code/mesh_templates/uvsphere_17rings.obj
#: @85fc77f: 482 v, 559 vt, 960 f), computed from that file with the function above. The file lists
#: vertices, UVs and faces in another order; its positions agree with the procedural ones to 1.4e-6
#: (6 printed decimals) and convmesh's topo map computed from it to 1.8e-7.
CONVMESH_16_DIGEST = "3cd8bc3e2fc3a48ec9ad1261d429b9b6f7c82d00610203eb6f16a5eb62094ee9"


def test_matches_convmesh_template_up_to_order():
    t = uv_sphere_template(16)
    assert structure_digest(t.vertices, t.faces, t.uvs, t.face_uvs, 16) == CONVMESH_16_DIGEST
    flipped = t.faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert structure_digest(t.vertices, flipped, t.uvs, t.face_uvs, 16) != CONVMESH_16_DIGEST


def _face_with(t, corners) -> bool:
    """Whether the template has a face whose corners are ``[(position, uv), ...]`` in this cyclic
    order (to 1e-5)."""
    want = np.array([[*p, *uv] for p, uv in corners])                       # (3, 5)
    have = np.concatenate([t.vertices[t.faces], t.uvs[t.face_uvs]], axis=2)  # (F, 3, 5)
    return any(np.any(np.all(np.abs(np.roll(have, i, axis=1) - want) < 1e-5, axis=(1, 2))) for i in range(3))


def test_literal_faces_of_the_original_file():
    t = uv_sphere_template(16)
    s1, c1, s2, c2 = math.sin(math.pi / 16), math.cos(math.pi / 16), math.sin(math.pi / 8), math.cos(math.pi / 8)
    seg1 = (math.sin(math.pi / 16), math.cos(math.pi / 16))  # sin, cos of segment 1's azimuth
    # "f 1/27 297/28 11/29": ring 1 of segments 0 and 1 around the north pole
    assert _face_with(t, [((0, c1, -s1), (0.75, 0.9375)), ((0, 1, 0), (0.734375, 1.0)),
                          ((s1 * seg1[0], c1, -s1 * seg1[1]), (0.71875, 0.9375))])
    # "f 2/32 1/27 11/29": the quad below, diagonal (segment 0, ring 2)–(segment 1, ring 1)
    assert _face_with(t, [((0, c2, -s2), (0.75, 0.875)), ((0, c1, -s1), (0.75, 0.9375)),
                          ((s1 * seg1[0], c1, -s1 * seg1[1]), (0.71875, 0.9375))])
    # "f 463/546 1/27 2/32": segments 31 and 0, diagonal (31, 1)–(0, 2) on the x < 0 side
    assert _face_with(t, [((-s1 * seg1[0], c1, -s1 * seg1[1]), (0.78125, 0.9375)),
                          ((0, c1, -s1), (0.75, 0.9375)), ((0, c2, -s2), (0.75, 0.875))])


@pytest.mark.parametrize("rings", [16, 31])
def test_topo_uv_tangent_frames_and_mirror(rings):
    t = uv_sphere_template(rings)
    n = rings - 1
    np.testing.assert_array_equal(t.topo_uv[-2:], [[0, -1], [0, 1]])       # poles: u = 1/2
    seam = np.arange(24 * n, 25 * n)
    np.testing.assert_array_equal(t.topo_uv[seam, 0], -1)                   # seam: u = 0
    other = np.setdiff1d(np.arange(32 * n), seam)
    corner_uv = np.zeros((len(t.vertices), 2), np.float32)
    corner_uv[t.faces.ravel()] = t.uvs[t.face_uvs.ravel()]
    np.testing.assert_allclose(t.topo_uv[other], corner_uv[other] * [2, -2] + [-1, 1], atol=1e-6)

    frames = t.frames.astype(np.float64)
    inner = frames[:-2]
    np.testing.assert_allclose(inner @ inner.transpose(0, 2, 1), np.broadcast_to(np.eye(3), inner.shape), atol=1e-6)
    np.testing.assert_array_equal(frames[-2:, 1:], 0)
    np.testing.assert_allclose(frames[:, 0], t.vertices, atol=1e-6)

    m = t.mirror
    np.testing.assert_array_equal(t.vertices[m] * [-1, 1, 1], t.vertices)  # exact mirror positions
    np.testing.assert_array_equal(m[m], np.arange(len(m)))
    assert np.all(t.vertices[t.plane_indices, 0] == 0)
    assert len(t.neg_indices) == len(t.pos_indices) == 15 * n and len(t.plane_indices) == 2 * n + 2
    assert np.all(t.vertices[t.pos_indices, 0] > 0)
    assert sorted(np.concatenate([t.neg_indices, t.nonneg_indices]).tolist()) == list(range(len(m)))


@pytest.mark.parametrize("rings", [16, 31])
def test_face_adjacency(rings):
    t = uv_sphere_template(rings)
    ff = t.ff
    assert all(len(set(row)) == 3 and f not in row for f, row in enumerate(ff.tolist()))
    for f in range(len(ff)):
        for i in range(3):
            g = ff[f, i]
            assert f in ff[g]
            edge = {t.faces[f, i], t.faces[f, (i + 1) % 3]}
            assert edge <= set(t.faces[g].tolist())
    with pytest.raises(ValueError, match="exactly two faces"):
        face_adjacency(np.array([[0, 1, 2], [0, 2, 3]]))


# --------------------------------------------------------------------------- displacement → vertices

@pytest.mark.parametrize("symmetric", [True, False])
def test_zero_and_constant_displacement(symmetric):
    t = uv_sphere_template(16)
    sphere = torch.from_numpy(t.vertices.copy())
    out = t.vertex_positions(torch.zeros(2, 3, 32, 32), symmetric=symmetric)
    assert out.shape == (2, 482, 3)
    assert torch.equal(out, sphere.expand(2, -1, -1))
    d = torch.zeros(1, 3, 32, 32)
    d[:, 0] = 0.25                                                             # along the normal
    torch.testing.assert_close(t.vertex_positions(d, symmetric=symmetric)[0], 1.25 * sphere)


@pytest.mark.parametrize("rings", [16, 31])
def test_random_displacement_is_exactly_mirror_symmetric(rings):
    t = uv_sphere_template(rings)
    gen = torch.Generator().manual_seed(rings)
    for shape in [(3, 3, 32, 32), (2, 3, 16, 8)]:
        out = t.vertex_positions(torch.randn(*shape, generator=gen), symmetric=True)
        assert torch.equal(out[:, t.tensor("mirror")] * torch.tensor([-1.0, 1.0, 1.0]), out)
        assert torch.all(out[:, t.tensor("plane_indices"), 0] == 0)
        pos = t.tensor("pos_indices")
        assert not torch.equal(out[:, pos, 2], out[:, pos.flip(0), 2])


def test_sampling_convention():
    """Column-index map: a vertex at u reads column W·u (non-symmetric) or W·u − 1/2 (symmetric,
    wrapping), the texel-centre lookup; rows do not matter for a row-constant map."""
    t = uv_sphere_template(16)
    d = torch.zeros(1, 3, 32, 32)
    d[0, 0] = torch.arange(32.0)
    inner = np.arange(32 * 15)
    u = (t.topo_uv[inner, 0] + 1) / 2
    radius = lambda out: out[0, inner].norm(dim=1).numpy() - 1           # noqa: E731
    np.testing.assert_allclose(radius(t.vertex_positions(d, symmetric=False)), 32 * u, atol=1e-4)
    expected = np.where(u == 0, (31 + 0) / 2, 32 * u - 0.5)                # u = 0: half-way 31 ↔ 0
    sym = t.vertex_positions(d, symmetric=True)
    got = radius(sym)
    x_nonneg = t.vertices[inner, 0] >= 0
    np.testing.assert_allclose(got[x_nonneg], expected[x_nonneg], atol=1e-4)


def test_vertex_positions_gradient_and_float64():
    t = uv_sphere_template(16)
    d = (0.1 * torch.randn(2, 3, 32, 32, dtype=torch.float64)).requires_grad_()
    out = t.vertex_positions(d)
    assert out.dtype == torch.float64
    (out ** 2).sum().backward()
    assert torch.isfinite(d.grad).all() and d.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        t.vertex_positions(torch.zeros(3, 32, 32))


# --------------------------------------------------------------------------- maps

def test_circpad_symmetrize_adjust_poles():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    p = circpad(x, 2)
    assert p.shape == (2, 3, 4, 10)
    assert torch.equal(p[..., :2], x[..., -2:]) and torch.equal(p[..., -2:], x[..., :2])
    assert torch.equal(p[..., 2:-2], x)

    half = torch.randn(2, 3, 5, 16)
    full = symmetrize_texture(half)
    assert full.shape == (2, 3, 5, 32)
    assert torch.equal(full[..., 8:24], half)
    for c in range(32):
        assert torch.equal(full[..., c], full[..., (15 - c) % 32])            # mirror about u = 1/4
        assert torch.equal(full[..., c], full[..., (47 - c) % 32])            # and about u = 3/4

    y = adjust_poles(x)
    assert torch.equal(y[:, :, 1:-1], x[:, :, 1:-1])
    assert torch.allclose(y[:, :, 0], x[:, :, 0].mean(-1, keepdim=True).expand(-1, -1, 6))
    assert torch.allclose(y[:, :, -1], x[:, :, -1].mean(-1, keepdim=True).expand(-1, -1, 6))


def test_pad_for_sampling_reads_texel_centres():
    tex = torch.randn(1, 3, 4, 8, dtype=torch.float64)
    rows = torch.arange(4, dtype=torch.float64)
    cols = torch.arange(8, dtype=torch.float64)
    uv = torch.stack(torch.meshgrid((cols + 0.5) / 8, 1 - rows / 3, indexing="xy"), dim=-1)  # (4, 8, 2)
    uv2, padded = pad_for_sampling(uv, tex, symmetric=True)
    assert padded.shape == (1, 3, 4, 10)
    grid = torch.stack((uv2[..., 0] * 2 - 1, 1 - 2 * uv2[..., 1]), dim=-1).unsqueeze(0)
    torch.testing.assert_close(F.grid_sample(padded, grid, align_corners=True), tex)
    torch.testing.assert_close(remap_u(torch.tensor(0.0, dtype=torch.float64), 8),
                               torch.tensor(0.5 / 9, dtype=torch.float64))
    uv3, padded = pad_for_sampling(uv, tex, symmetric=False)
    assert padded.shape == (1, 3, 4, 9) and torch.equal(uv3, uv) and torch.equal(padded[..., 8], tex[..., 0])


# --------------------------------------------------------------------------- flatness

def _plane(n=4):
    """A flat (n+1)² grid in z = 0 with 2n² counter-clockwise triangles; ff points boundary edges
    at the face itself (a term of 0)."""
    xs, ys = np.meshgrid(np.arange(n + 1.0), np.arange(n + 1.0), indexing="ij")
    verts = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], axis=1)
    idx = lambda i, j: i * (n + 1) + j                                      # noqa: E731
    faces = []
    for i in range(n):
        for j in range(n):
            faces += [(idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)), (idx(i, j), idx(i + 1, j + 1), idx(i, j + 1))]
    faces = np.array(faces)
    owner = {}
    for f, tri in enumerate(faces):
        for i in range(3):
            owner.setdefault(frozenset((tri[i], tri[(i + 1) % 3])), []).append(f)
    ff = np.array([[next((g for g in owner[frozenset((tri[i], tri[(i + 1) % 3]))] if g != f), f)
                    for i in range(3)] for f, tri in enumerate(faces)])
    return torch.tensor(verts).unsqueeze(0), torch.tensor(faces), torch.tensor(ff)


def _flatness_loop(vertices, faces, ff):
    """The formula written out with Python loops."""
    B, nf = vertices.shape[0], faces.shape[0]
    total = 0.0
    for i in range(3):
        acc = 0.0
        for b in range(B):
            for f in range(nf):
                def normal(face):
                    a, c, d = (vertices[b, int(k)].tolist() for k in faces[face])
                    n = np.cross(np.subtract(c, a), np.subtract(d, a))
                    return n / np.linalg.norm(n)
                acc += (float(np.dot(normal(f), normal(int(ff[f, i])))) - 1.0) ** 2
        total += acc / (B * nf)
    return total * nf / 2.0


def test_flatness_zero_on_a_plane_and_matches_the_loop():
    verts, faces, ff = _plane()
    assert flatness_loss(verts, faces, ff).item() == 0.0
    bent = verts.clone()
    bent[0, :5, 2] = 0.7
    assert flatness_loss(bent, faces, ff).item() > 0

    t = uv_sphere_template(16)
    gen = torch.Generator().manual_seed(0)
    vtx = t.vertex_positions(0.3 * torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64))
    faces, ff = t.tensor("faces"), t.tensor("ff")
    ours = flatness_loss(vtx, faces, ff).item()
    assert ours == pytest.approx(_flatness_loop(vtx.numpy(), faces.numpy(), ff.numpy()), rel=1e-10)
    assert flatness_loss(vtx, faces, ff[:, [2, 0, 1]]).item() == pytest.approx(ours, rel=1e-12)
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert flatness_loss(2 * vtx @ rot.T + 3, faces, ff).item() == pytest.approx(ours, rel=1e-9)


def test_flatness_gradient_reaches_the_displacement_map():
    t = uv_sphere_template(16)
    d = (0.1 * torch.randn(2, 3, 32, 32)).requires_grad_()
    loss = flatness_loss(t.vertex_positions(d), t.tensor("faces"), t.tensor("ff"))
    loss.backward()
    assert torch.isfinite(d.grad).all() and d.grad.abs().sum() > 0
    n = face_normals(t.vertex_positions(torch.zeros(1, 3, 32, 32)), t.tensor("faces"))
    centres = torch.from_numpy(t.vertices[t.faces].mean(1))
    assert torch.all((n[0] * centres).sum(-1) > 0)
    with pytest.raises(ValueError, match="ff"):
        flatness_loss(t.vertex_positions(d), t.tensor("faces"), t.tensor("ff")[:10])
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        flatness_loss(torch.zeros(5, 3), t.tensor("faces"), t.tensor("ff"))


# --------------------------------------------------------------------------- OBJ + MTL + PNG

def _random_mesh(seed=0):
    t = uv_sphere_template(16)
    rng = np.random.default_rng(seed)
    v = (t.vertices * rng.uniform(0.1, 3.0, size=(len(t.vertices), 1))).astype(np.float32)
    v[:3] = np.array([[1e-30, -0.0, 123456.789], [np.pi, -np.e, 1 / 3], [0.1, 0.2, 0.3]], np.float32)
    texture = rng.integers(0, 256, size=(24, 40, 3), dtype=np.uint8)
    return t, v, texture


@pytest.mark.parametrize("axes", ["object", "y_up"])
def test_obj_round_trip_is_exact(tmp_path, axes):
    t, v, texture = _random_mesh()
    obj = write_textured_obj(tmp_path / "bird", v, t.faces, t.uvs, t.face_uvs, texture, axes=axes)
    assert obj == tmp_path / "bird.obj"
    assert write_textured_obj(tmp_path / "bird.obj", v, t.faces, t.uvs, t.face_uvs, texture, axes=axes) == obj
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bird.mtl", "bird.obj", "bird.png"]
    mesh = read_textured_obj(obj, axes=axes)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int64
    assert np.array_equal(mesh.vertices.view(np.uint32), v.view(np.uint32))   # bit for bit, −0.0 too
    assert np.array_equal(mesh.uvs, t.uvs) and mesh.uvs.dtype == np.float32
    assert np.array_equal(mesh.faces, t.faces) and np.array_equal(mesh.face_uvs, t.face_uvs)
    assert np.array_equal(mesh.texture, texture)

    lines = obj.read_text().splitlines()
    assert lines[1] == "mtllib bird.mtl" and "usemtl bird" in lines
    mtl = (tmp_path / "bird.mtl").read_text().splitlines()
    assert "map_Ka bird.png" in mtl and "map_Kd bird.png" in mtl
    first_v = [float(x) for x in next(line for line in lines if line.startswith("v ")).split()[1:]]
    assert first_v == pytest.approx(v[0][[0, 2, 1]] if axes == "y_up" else v[0])
    first_f = next(line for line in lines if line.startswith("f ")).split()[1:]
    a, b, c = (t.faces[0] + 1).tolist()
    assert [corner.split("/")[0] for corner in first_f] == [str(k) for k in ((c, b, a) if axes == "y_up" else (a, b, c))]


def test_y_up_file_keeps_outward_winding(tmp_path):
    t = uv_sphere_template(16)
    v = t.vertices * np.array([1.0, 0.5, 2.0], np.float32)      # an ellipsoid, not symmetric in y ↔ z
    write_textured_obj(tmp_path / "m", v, t.faces, t.uvs, t.face_uvs, np.zeros((4, 4, 3), np.uint8), axes="y_up")
    raw = read_textured_obj(tmp_path / "m.obj")                   # the file's own coordinates
    assert np.array_equal(raw.vertices, v[:, [0, 2, 1]])
    p = raw.vertices.astype(np.float64)
    a, b, c = p[raw.faces[:, 0]], p[raw.faces[:, 1]], p[raw.faces[:, 2]]
    assert np.all(np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) > 0)


def test_float_texture_and_torch_inputs(tmp_path):
    t = uv_sphere_template(16)
    tex = torch.linspace(-1, 1, 3 * 8 * 8).reshape(3, 8, 8)
    write_textured_obj(tmp_path / "m", torch.from_numpy(t.vertices.copy()), t.tensor("faces"), t.tensor("uvs"),
                       t.tensor("face_uvs"), tex)
    mesh = read_textured_obj(tmp_path / "m.obj")
    assert np.array_equal(mesh.texture, texture_to_uint8(tex))
    assert mesh.texture.shape == (8, 8, 3)
    assert texture_to_uint8(torch.tensor([-1.0, 0.0, 1.0]).reshape(3, 1, 1)).ravel().tolist() == [0, 128, 255]
    assert texture_to_uint8(torch.full((3, 1, 1), 7.0)).ravel().tolist() == [255] * 3


def test_write_errors_leave_nothing_behind(tmp_path):
    t, v, texture = _random_mesh()
    write_textured_obj(tmp_path / "m", v, t.faces, t.uvs, t.face_uvs, texture)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = v.copy()
    bad[5, 1] = np.nan
    with pytest.raises(NonFiniteError):
        write_textured_obj(tmp_path / "m", bad, t.faces, t.uvs, t.face_uvs, texture)
    with pytest.raises(ValueError, match="face_uvs"):
        write_textured_obj(tmp_path / "m", v, t.faces, t.uvs, t.face_uvs[:-1], texture)
    with pytest.raises(ValueError, match="out of range"):
        write_textured_obj(tmp_path / "m", v[:10], t.faces, t.uvs, t.face_uvs, texture)
    with pytest.raises(NonFiniteError):
        write_textured_obj(tmp_path / "m", v, t.faces, t.uvs, t.face_uvs, torch.full((3, 2, 2), float("nan")))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before   # no temporaries, nothing changed


_OBJ_HEAD = "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl m\n"


@pytest.mark.parametrize("body, line, words", [
    ("v 1 2\nf 1/1 2/2 3/3\n", 9, "needs 3 numbers"),
    ("v 1 2 x\nf 1/1 2/2 3/3\n", 9, "not a number"),
    ("v 1 nan 2\nf 1/1 2/2 3/3\n", 9, "NaN"),
    ("f 1/1 2/2 4/3\n", 9, "vertex index 4 is out of range"),
    ("f 1/1 2/2 3/9\n", 9, "UV index 9"),
    ("f 1/1 2/2 3/3 1/1\n", 9, "only triangles"),
    ("f 1 2 3\n", 9, "'v/vt'"),
    ("f 1/1 2/a 3/3\n", 9, "not an integer"),
    ("f 1/1 2/2 3/3\nbogus 1 2\n", 10, "unknown OBJ statement 'bogus'"),
])
def test_malformed_obj_names_the_line(tmp_path, body, line, words):
    (tmp_path / "m.obj").write_text(_OBJ_HEAD + body)
    with pytest.raises(CorruptFileError) as exc:
        read_textured_obj(tmp_path / "m.obj")
    message = str(exc.value)
    assert str(tmp_path / "m.obj") in message and f"line {line}:" in message and words in message
    assert "\n" not in message


def test_obj_references_are_checked(tmp_path):
    t, v, texture = _random_mesh()
    obj = write_textured_obj(tmp_path / "m", v, t.faces, t.uvs, t.face_uvs, texture)
    (tmp_path / "m.png").write_bytes((tmp_path / "m.png").read_bytes()[:60])
    with pytest.raises(CorruptFileError, match="m.png: unreadable or truncated PNG"):
        read_textured_obj(obj)
    (tmp_path / "m.png").unlink()
    with pytest.raises(DataError, match="m.png .* does not exist"):
        read_textured_obj(obj)
    Image.new("RGB", (2, 2)).save(tmp_path / "m.png", format="JPEG")
    with pytest.raises(CorruptFileError, match="expected PNG"):
        read_textured_obj(obj)
    (tmp_path / "m.mtl").write_text("newmtl m\nmap_Kd ../../etc/passwd\n")
    with pytest.raises(CorruptFileError, match="m.mtl: line 2: map_Kd .* bare file name"):
        read_textured_obj(obj)
    obj.write_text("mtllib /tmp/x.mtl\n" + obj.read_text())
    with pytest.raises(CorruptFileError, match="line 1: mtllib"):
        read_textured_obj(obj)
    with pytest.raises(DataError, match="does not exist"):
        read_textured_obj(tmp_path / "missing.obj")
