"""lmnet build-dataset: a folder of real and procedural mesh files (every supported format, with
and without colours / texture) plus broken files → a ShapeNet-layout tree that check-data accepts,
whose ground-truth clouds project onto the rendered alpha, and that trains an autoencoder."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from lmnet import runs
from lmnet.camera import LMNET_FROM_V1, project_points
from lmnet.cli import main as cli_main
from lmnet.data import layout
from lmnet.data.check import check_data
from lmnet.data.meshes import normalize_unit_diagonal
from lmnet.data.splits import load_split, select_keys
from lmnet.errors import DataError
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.synthetic.from_meshes import MANIFEST, MARKER_DIR, build_dataset
from lmnet.synthetic.mesh_files import V1_FROM_ZUP, category_id, find_meshes, read_mesh
from lmnet.synthetic.shapes import BUILDERS

AIRPLANE = Path(__file__).parent / "data" / "meshes" / "pyvista_airplane.ply"
GADGET = category_id("gadget")  # not a ShapeNet name: a synset-like id starting with 9
BROKEN = {"empty.ply": "unreadable mesh", "nan.off": "non-finite", "points.obj": "no triangle faces",
          "flat.obj": "zero surface area"}


def _zup(v: np.ndarray) -> np.ndarray:
    """y-up (ShapeNet v1) vertices → a z-up file's: the inverse of ``V1_FROM_ZUP``."""
    return v @ V1_FROM_ZUP.T


def _box_uv(box: trimesh.Trimesh) -> trimesh.visual.TextureVisuals:
    """A red | green texture, the box's -x corners at the red half's centre, +x at the green one's."""
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, :4] = (230, 20, 20)
    image[:, 4:] = (20, 200, 30)
    uv = np.stack([np.where(box.vertices[:, 0] < 0, 0.25, 0.75), np.full(len(box.vertices), 0.5)], 1)
    return trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(image))


def write_meshes(folder: Path) -> None:
    """airplane/: the pyvista airplane (PLY); chair/<model folder>/: a procedural chair with face
    colours (PLY); gadget/: a grey table (STL), a textured box and a vertex-coloured car (GLB), and
    the broken files of :data:`BROKEN`. Everything z up. (A good OFF file: the rebuild test.)"""
    for sub in ("airplane", "chair/procedural_chair", "gadget"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(AIRPLANE, folder / "airplane" / "pyvista_airplane.ply")
    parts = {name: BUILDERS[name](np.random.default_rng(i)) for i, name in ((1, "chair"), (2, "table"), (3, "car"))}
    v, f, c = parts["chair"]
    trimesh.Trimesh(_zup(v), f, face_colors=(c * 255).astype(np.uint8), process=False).export(
        folder / "chair" / "procedural_chair" / "model.ply")
    v, f, _ = parts["table"]
    trimesh.Trimesh(_zup(v), f, process=False).export(folder / "gadget" / "table.stl")
    v, f, _ = parts["car"]
    blue = np.tile([20, 40, 230, 255], (len(v), 1)).astype(np.uint8)
    trimesh.Trimesh(_zup(v), f, vertex_colors=blue, process=False).export(folder / "gadget" / "car.glb")
    box = trimesh.creation.box((0.8, 0.5, 0.3))
    trimesh.Trimesh(box.vertices, box.faces, visual=_box_uv(box), process=False).export(folder / "gadget" / "box.glb")
    (folder / "gadget" / "empty.ply").write_bytes(b"")
    (folder / "gadget" / "nan.off").write_text("OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n")
    (folder / "gadget" / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    (folder / "gadget" / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("build")
    write_meshes(base / "meshes")
    summary = build_dataset(base / "meshes", base / "out", up="z", seed=3, progress=False)
    return base / "meshes", base / "out", summary


def _keys(summary) -> list[tuple[str, str]]:
    return [(s, m) for s, ids in summary["models"].items() for m in ids]


def test_tree_check_data_accepts_with_categories_and_splits(built, capsys):
    meshes, out, summary = built
    assert summary["models"] == {"02691156": ["pyvista_airplane"], "03001627": ["procedural_chair"],
                                 GADGET: ["box", "car", "table"]}
    assert summary["categories"][GADGET] == "gadget" and summary["built"] == 5 and summary["reused"] == 0
    report = check_data(out)
    assert report.ok and report.n_models == 5, report.table()
    assert cli_main(["check-data", "--root", str(out)]) == 0
    splits = {name: load_split(path) for name, path in summary["splits"].items()}
    keys = [{k for v in s.values() for k in v} for s in splits.values()]
    assert set.union(*keys) == {f"{s}/{m}" for s, m in _keys(summary)} and sum(map(len, keys)) == 5
    assert splits["val"] and splits["test"]  # gadget's three models: one in each split
    assert select_keys(out, None, GADGET) == [f"{GADGET}/{m}" for m in ("box", "car", "table")]  # a filter takes the id
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["models"]["02691156/pyvista_airplane"] == "airplane/pyvista_airplane.ply"
    assert manifest["models"]["03001627/procedural_chair"] == "chair/procedural_chair/model.ply"


def test_broken_files_are_named_and_skipped(built, caplog):
    meshes, out, summary = built
    assert len(summary["bad"]) == len(BROKEN)
    for name, reason in BROKEN.items():
        line = next(b for b in summary["bad"] if b.startswith(str(meshes / "gadget" / name) + ":"))
        assert reason in line and "\n" not in line
        assert not (out / layout.POINTCLOUD_DIR / GADGET / Path(name).stem).exists()
    assert json.loads((out / MANIFEST).read_text())["skipped"] == summary["bad"]


def test_ground_truth_projects_inside_the_rendered_alpha_in_every_view(built):
    """As on real 3D-R2N2 folders: the 16384-point cloud projected with the written metadata lands on
    pixels of alpha > 0, for at least 99 % of the points in every one of the 24 views."""
    _, out, summary = built
    worst = {}
    for synset, mid in _keys(summary):
        metas = layout.parse_metadata(layout.metadata_path(out, synset, mid))
        pc = torch.from_numpy(layout.read_pointcloud(layout.pointcloud_path(out, synset, mid, 16384)))
        az, el, dr, fov = (torch.tensor([getattr(m, k) for m in metas])
                           for k in ("azimuth", "elevation", "distance_ratio", "fov"))
        uv, depth = project_points(pc.expand(24, -1, -1), az, el, dr, fov)
        assert (depth > 0).all()
        ij = torch.floor(uv).long().numpy()
        inside = []
        for v in range(layout.N_VIEWS):
            alpha = layout.read_image(layout.image_path(out, synset, mid, v))[..., 3]
            ok = ((ij[v] >= 0) & (ij[v] < 137)).all(1)
            assert ok.all(), (mid, v)  # the whole shape is in the picture
            inside.append((alpha[ij[v][:, 1], ij[v][:, 0]] > 0).mean())
        worst[mid] = min(inside)
    assert min(worst.values()) >= 0.99, worst


def test_frame_normalisation_and_up_axis(built):
    meshes, out, summary = built
    for synset, mid in _keys(summary):
        pc = layout.read_pointcloud(layout.pointcloud_path(out, synset, mid, 16384)).astype(np.float64)
        lo, hi = pc.min(0), pc.max(0)
        assert np.abs((lo + hi) / 2).max() < 0.02 and 0.97 < np.linalg.norm(hi - lo) <= 1.0 + 1e-6, mid
    # the pyvista airplane is z up: read with --up z its height (3D-LMNet x, +x down) is its smallest
    # extent and its tail fin (the top, -x) sits at one end of the fuselage
    v, _, _ = read_mesh(meshes / "airplane" / "pyvista_airplane.ply", up="z")
    extent = np.ptp(v, 0)
    assert extent[0] == extent.min() and extent[0] < 0.25
    top = v[v[:, 0] < np.percentile(v[:, 0], 2)]
    assert abs(top[:, 2].mean()) > 0.3 and abs(top[:, 1].mean()) < 0.05
    # a procedural chair written z up reads back exactly as the synthetic generator frames it
    chair_v, _, _ = BUILDERS["chair"](np.random.default_rng(1))
    back, _, _ = read_mesh(meshes / "chair" / "procedural_chair" / "model.ply", up="z")
    assert np.allclose(back, normalize_unit_diagonal(chair_v) @ LMNET_FROM_V1.numpy(), atol=1e-5)


def _mean_rgb(out: Path, synset: str, mid: str) -> np.ndarray:
    imgs = np.stack([layout.read_image(layout.image_path(out, synset, mid, v)) for v in range(4)]).reshape(-1, 4)
    return imgs[imgs[:, 3] == 255, :3].astype(float).mean(0)


def test_renders_use_the_meshes_own_colours(built, tmp_path):
    meshes, out, _ = built
    r, g, b = _mean_rgb(out, GADGET, "car")                       # vertex colours (GLB)
    assert b > 2 * r and b > 2 * g
    r, g, b = _mean_rgb(out, "03001627", "procedural_chair")     # face colours (PLY): a light grey
    assert max(r, g, b) - min(r, g, b) < 25
    r, g, b = _mean_rgb(out, "02691156", "pyvista_airplane")     # no colours: plain shaded grey
    assert r == g == b
    r, g, b = _mean_rgb(out, GADGET, "box")                       # texture: red and green, no blue
    assert r > 2 * b and g > 2 * b
    _, faces, colors = read_mesh(meshes / "gadget" / "box.glb")
    v = trimesh.load(meshes / "gadget" / "box.glb", force="mesh", process=False).vertices
    red = v[faces][..., 0] < 0                                    # the texture's red half at -x
    assert np.allclose(colors[red], np.array([230, 20, 20]) / 255) and np.allclose(colors[~red], np.array([20, 200, 30]) / 255)
    # the same texture as OBJ + MTL + PNG (trimesh writes the three files)
    box = trimesh.creation.box((0.8, 0.5, 0.3))
    trimesh.Trimesh(box.vertices, box.faces, visual=_box_uv(box), process=False).export(tmp_path / "box.obj")
    assert (tmp_path / "material.mtl").is_file()
    _, faces, colors = read_mesh(tmp_path / "box.obj")
    corners = trimesh.load(tmp_path / "box.obj", force="mesh", process=False).vertices[faces]
    assert np.allclose(colors[corners[..., 0] < 0], np.array([230, 20, 20]) / 255)


def test_resumes_and_rebuilds_only_what_is_missing(built, tmp_path):
    meshes, out, summary = built
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    again = build_dataset(meshes, copy, up="z", seed=3, progress=False)
    assert (again["built"], again["reused"]) == (0, 5) and again["models"] == summary["models"]
    (copy / MARKER_DIR / GADGET / "table").unlink()                 # killed before the marker
    layout.image_path(copy, GADGET, "table", 7).unlink()
    stale = layout.rendering_dir(copy, GADGET, "table") / ".07.png.abc.png.tmp"
    stale.write_bytes(b"partial")
    again = build_dataset(meshes, copy, up="z", seed=3, progress=False)
    assert (again["built"], again["reused"]) == (1, 4) and not stale.exists()
    for rel in [layout.image_path(out, GADGET, "table", 7), layout.pointcloud_path(out, GADGET, "table", 2048),
                layout.metadata_path(out, GADGET, "table")]:
        rel = rel.relative_to(out)
        assert (copy / rel).read_bytes() == (out / rel).read_bytes(), rel  # deterministic


def test_workers_give_the_same_files_a_changed_file_is_rebuilt_settings_must_match(tmp_path):
    src = tmp_path / "meshes"
    src.mkdir()
    # thin rods: few covered pixels, so the builds render fast
    trimesh.creation.cylinder(radius=0.02, height=1.0, sections=8).export(src / "crate.off")
    trimesh.creation.cylinder(radius=0.03, height=0.8, sections=6).export(src / "pole.stl")
    synset = category_id("crate")
    one = build_dataset(src, tmp_path / "one", category="crate", workers=1, progress=False)
    two = build_dataset(src, tmp_path / "two", category="crate", workers=2, progress=False)
    assert one["models"] == two["models"] == {synset: ["crate", "pole"]} and two["built"] == 2
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file() and p.name != MANIFEST)
    assert len(files) == 2 * (24 + 2 + 3 + 1) + 3  # PNGs, 2 text files, 3 clouds, marker; 3 splits
    assert all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in files)
    pc1 = layout.read_pointcloud(layout.pointcloud_path(tmp_path / "one", synset, "crate", 1024))
    trimesh.creation.cylinder(radius=0.03, height=1.0, sections=8).export(src / "crate.off")
    again = build_dataset(src, tmp_path / "one", category="crate", progress=False)
    pc2 = layout.read_pointcloud(layout.pointcloud_path(tmp_path / "one", synset, "crate", 1024))
    assert (again["built"], again["reused"]) == (1, 1) and not np.array_equal(pc1, pc2)
    (src / "pole.stl").unlink()                                      # a file removed: its model goes
    again = build_dataset(src, tmp_path / "one", category="crate", progress=False)
    assert again["removed"] == [f"{synset}/pole"] and again["models"] == {synset: ["crate"]}
    assert not layout.rendering_dir(tmp_path / "one", synset, "pole").parent.exists()
    assert not (tmp_path / "one" / layout.POINTCLOUD_DIR / synset / "pole").exists()
    assert check_data(tmp_path / "one").n_models == 1
    with pytest.raises(DataError, match=r"other settings: seed=0 \(now 5\)"):
        build_dataset(src, tmp_path / "one", category="crate", seed=5, progress=False)


def test_refuses_foreign_folders_and_loose_files(tmp_path, capsys):
    src = tmp_path / "meshes"
    src.mkdir()
    trimesh.creation.box().export(src / "loose.stl")
    with pytest.raises(DataError, match="loose.stl.*no category.*--category"):
        find_meshes(src)
    assert [m.model_id for m in find_meshes(src, category="Box Things")] == ["loose"]
    assert category_id("Box Things").startswith("9") and category_id("chair") == "03001627"
    for sub in ("chair/a", "chair/b", "03001627"):                 # one id, three files: all kept apart
        (tmp_path / "cats" / sub).mkdir(parents=True)
        trimesh.creation.box().export(tmp_path / "cats" / sub / "seat.obj")
    found = find_meshes(tmp_path / "cats")
    assert {m.synset for m in found} == {"03001627"} and len({m.model_id for m in found}) == 3
    assert sorted(m.model_id for m in found)[0] == "a"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    args = ["build-dataset", "--meshes", str(src), "--out", str(foreign), "--category", "box", "--no-progress"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "not written by lmnet build-dataset" in err and len(err.splitlines()) == 1
    assert not (foreign / "ShapeNetRendering").exists()
    (src / "loose.stl").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 mesh files is usable.*loose.stl"):
        build_dataset(src, tmp_path / "new", category="box", progress=False)


def test_cli_resumes_and_lists_the_skipped_files(built, capsys):
    meshes, out, _ = built
    assert cli_main(["build-dataset", "--meshes", str(meshes), "--out", str(out), "--up", "z", "--seed", "3",
                     "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "5 models" in text and "0 built, 5 already complete" in text and "gadget (9" in text
    assert f"skipped {len(BROKEN)} bad mesh file(s):" in text
    assert all(str(meshes / "gadget" / name) in text for name in BROKEN)


@pytest.mark.slow
def test_trains_an_autoencoder_for_one_epoch(built, tmp_path):
    _, out, summary = built
    run = train_autoencoder({"data_root": str(out), "train_split": summary["splits"]["train"],
                             "val_split": summary["splits"]["val"], "n_points": 1024, "batch_size": 2,
                             "epochs": 1, "num_workers": 0, "progress": False, "run_dir": str(tmp_path / "ae")})
    history = runs.read_history(run)
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])
    assert math.isfinite(history[0]["val_chamfer_x100"])
