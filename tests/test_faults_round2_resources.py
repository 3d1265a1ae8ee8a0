"""Fault injection, round 2: resource limits, degenerate clouds and archives (issue #31).

Each test reproduces one case of a hostile probe of `infer --images`, `mesh`, `render` and
`pretrained --from-file`:

- **resource cases** run the CLI in a child process (:func:`_run_limited`): it must end within
  10 s with exit code 2 and one line naming the limit and its environment variable, its peak
  resident memory (``ru_maxrss``, read by the child at exit) must stay under 1 GiB, and an address
  space cap of 2 GiB makes a regression fail fast instead of swapping. (An ``lmnet`` command with
  torch loaded peaks at 0.25–0.4 GB resident and ~0.95 GB of address space before it does any work,
  measured on the development machine, so a 1 GiB address-space cap alone would not be reliable.)
- **silent wrong results** now give the right result (asserted) or a one-line error;
- **tracebacks** are now one line naming the file, member or value, exit code 2.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmnet import mesh
from lmnet.cli import main as cli_main
from lmnet.data import inputs
from lmnet.data.download import safe_extract
from lmnet.errors import DownloadError, ResourceLimitError

ROOT = Path(__file__).resolve().parents[1]
GIB = 1 << 30
# The child's own peak: VmHWM of its address space (reset by exec). ru_maxrss would not do: Linux
# carries the forking pytest worker's high-water mark across exec into it.
_CHILD = ("import atexit, runpy, sys\n"
          "def _hwm():\n"
          "    for line in open('/proc/self/status'):\n"
          "        if line.startswith('VmHWM:'):\n"
          "            return int(line.split()[1])\n"
          "atexit.register(lambda: print('PEAK_RSS_KB', _hwm(), file=sys.stderr))\n"
          "sys.argv = ['lmnet'] + sys.argv[1:]\n"
          "runpy.run_module('lmnet', run_name='__main__')\n")


def _cap_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (2 * GIB, 2 * GIB))


def _run_limited(argv, cwd, env=None):
    """``python -m lmnet argv`` in a child (10 s timeout, 2 GiB address space) →
    ``(exit code, stderr without the peak line, peak RSS in bytes, seconds)``."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *map(str, argv)], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=10, preexec_fn=_cap_address_space)
    seconds = time.monotonic() - t0
    lines = proc.stderr.strip().splitlines()
    peak = [int(line.split()[1]) * 1024 for line in lines if line.startswith("PEAK_RSS_KB")]
    return proc.returncode, "\n".join(line for line in lines if not line.startswith("PEAK_RSS_KB")), peak[0], seconds


def _refused(argv, cwd, variable, *patterns, env=None):
    """The child is refused in time and memory with one line naming ``variable`` and ``patterns``."""
    rc, err, peak, seconds = _run_limited(argv, cwd, env)
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert variable in err and all(p in err for p in patterns), err
    assert peak < GIB and seconds < 10, (peak, seconds)
    return err


def _one_line_error(capsys, argv, *patterns):
    """In-process CLI: exit code 2, one line on stderr naming ``patterns``, no traceback."""
    assert cli_main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(p in err for p in patterns), err
    return err


def _chair(n=2048, seed=0):
    """A chair-like cloud (seat, back, four legs) inside the unit-diagonal frame, float32 ``(n, 3)``."""
    rng = np.random.default_rng(seed)
    k = n // 3
    seat = np.c_[np.zeros(k), rng.uniform(-0.2, 0.2, k), rng.uniform(-0.2, 0.2, k)]
    back = np.c_[rng.uniform(-0.35, 0.0, k), rng.uniform(-0.2, 0.2, k), np.full(k, -0.2)]
    legs = np.c_[rng.uniform(0.0, 0.3, n - 2 * k), rng.choice([-0.2, 0.2], n - 2 * k),
                 rng.choice([-0.2, 0.2], n - 2 * k)]
    return np.concatenate([seat, back, legs]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# infer --images: the padded square and the sample clouds are limited, before the model loads
# --------------------------------------------------------------------------------------------
def test_infer_tall_image_is_refused_for_its_padded_square(tmp_path):
    """A 1x60000 PNG is 60,000 pixels in the file but a 60000x60000 square (14.4 GB RGBA) once
    padded; the header is checked before the model loads (so no checkpoint is needed here)."""
    Image.fromarray(np.zeros((60000, 1), np.uint8)).save(tmp_path / "tall.png")
    assert (tmp_path / "tall.png").stat().st_size < 1000
    _refused(["infer", "--checkpoint", "no-run", "--images", "tall.png", "--out", "out"], tmp_path,
             "LMNET_MAX_IMAGE_PIXELS=3600000000", "tall.png", "60000x60000 square")
    with pytest.raises(ResourceLimitError, match="images\\[0\\].*1x60000.*LMNET_MAX_IMAGE_PIXELS"):
        inputs.prepare_array(np.zeros((60000, 1, 3), np.uint8), name="images[0]")  # lmnet.reconstruct's arrays


def test_infer_a_million_samples_is_refused_before_allocating(tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    _refused(["infer", "--checkpoint", "no-run", "--images", "a.png", "--samples", "1000000", "--out", "out"],
             tmp_path, "LMNET_MAX_SAMPLE_CLOUDS=1000000", "--samples 1000000", "24.6 GB")


# --------------------------------------------------------------------------------------------
# mesh: duplicates, size, flat and extreme-scale clouds, --knn
# --------------------------------------------------------------------------------------------
def test_mesh_collapsed_prediction_merges_duplicates_quickly(tmp_path):
    """1,900 of 2,048 points on one position made `lmnet mesh` (ball pivoting) run 104 s; the
    duplicates are merged first and the rest is meshed."""
    pytest.importorskip("open3d")

    pts = _chair()
    pts[:1900] = pts[0]
    t0 = time.monotonic()
    res = mesh.reconstruct(pts)
    assert time.monotonic() - t0 < 10
    assert res.n_merged == 1899 and res.n_points + res.n_removed == 149 and len(res.faces) > 0
    assert "1899 duplicates merged" in res.summary()


def test_mesh_ten_thousand_duplicates_are_merged(tmp_path):
    pytest.importorskip("open3d")

    pts = _chair()
    t0 = time.monotonic()
    res = mesh.reconstruct(np.concatenate([pts, np.repeat(pts[:1], 10_000, 0)]), "bpa")
    assert time.monotonic() - t0 < 10 and res.n_merged == 10_000
    assert res.n_points + res.n_removed == len(pts)


def test_mesh_too_few_distinct_points_is_one_line(tmp_path, capsys):
    pytest.importorskip("open3d")
    np.save(tmp_path / "p.npy", np.repeat(_chair(30), 100, 0))  # 3,000 points, 30 distinct
    _one_line_error(capsys, ["mesh", "--points", tmp_path / "p.npy", "--out", tmp_path / "m.ply"],
                    "p.npy", "30 distinct points", "at least 50")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npy"]


def test_mesh_five_million_points_is_refused(tmp_path):
    pytest.importorskip("open3d")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "big.npy", rng.uniform(-0.5, 0.5, (5_000_000, 3)).astype(np.float32))
    _refused(["mesh", "--points", "big.npy", "--out", "m.ply"], tmp_path,
             "LMNET_MAX_MESH_POINTS=5000000", "big.npy", "5,000,000 points")
    assert not (tmp_path / "m.ply").exists()


@pytest.mark.parametrize("knn, message", [("-5", "must be >= 3, got -5"), ("0", "must be >= 3, got 0"),
                                          ("501", "must be <= 500, got 501")])
def test_mesh_knn_out_of_range_is_a_usage_error(tmp_path, capsys, knn, message):
    """--knn 0 crashed Open3D (exit 139); -5 (and 1, 2) gave undefined normals without a word."""
    pytest.importorskip("open3d")
    np.save(tmp_path / "p.npy", _chair())
    with pytest.raises(SystemExit) as exc:
        cli_main(["mesh", "--points", str(tmp_path / "p.npy"), "--out", str(tmp_path / "m.ply"), "--knn", knn])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--knn: {message}" in err and "Traceback" not in err


def test_mesh_flat_cloud_gets_a_flat_mesh_and_no_alpha_shape(tmp_path, capsys):
    """A flat cloud raised a qhull precision error (normal orientation, alpha shape)."""
    pytest.importorskip("open3d")

    rng = np.random.default_rng(1)
    plane = np.c_[rng.uniform(-0.4, 0.4, (1500, 2)), np.zeros(1500)]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    bpa = mesh.reconstruct(plane @ q.T, "bpa")  # triangles between the points: exactly in the plane
    assert len(bpa.faces) > 1000 and np.abs(bpa.vertices.astype(np.float64) @ q[:, 2]).max() < 1e-6
    assert bpa.fit < 2 * 100 * bpa.spacing  # and covering it: within two point spacings
    res = mesh.reconstruct(plane @ q.T, "auto")
    assert set(res.fits) == {"bpa", "poisson"} and len(res.faces) > 100
    # Poisson's vertices sit on its octree (cells of 1/256 of the size at depth 8), near the plane
    assert np.abs(res.vertices.astype(np.float64) @ q[:, 2]).max() < 0.01
    np.save(tmp_path / "flat.npy", plane @ q.T)
    _one_line_error(capsys, ["mesh", "--points", tmp_path / "flat.npy", "--method", "alpha", "--out",
                             tmp_path / "m.ply"], "flat.npy", "one plane", "alpha")


def test_mesh_extreme_scales_mesh_like_the_unit_cloud(tmp_path, capsys):
    """1e30- and 1e-30-sized clouds crashed Poisson's trim (non-finite vertices). Scaling to unit
    size is by a power of two, exact: a cloud ×2^100 gives the same faces and vertices ×2^100."""
    pytest.importorskip("open3d")

    pts = _chair().astype(np.float64)
    unit = mesh.reconstruct(pts, "bpa")
    for factor in (2.0 ** 100, 2.0 ** -100):
        res = mesh.reconstruct(pts * factor, "bpa")
        np.testing.assert_array_equal(res.faces, unit.faces)
        np.testing.assert_array_equal(res.vertices, (unit.vertices.astype(np.float64) * factor).astype(np.float32))
        assert res.fit == pytest.approx(unit.fit * factor, rel=1e-9)
    for factor in (1e30, 1e-30):
        np.save(tmp_path / "p.npy", pts * factor)
        assert cli_main(["mesh", "--points", str(tmp_path / "p.npy"), "--out", str(tmp_path / "m.ply")]) == 0
        assert "Traceback" not in capsys.readouterr().err
    np.save(tmp_path / "huge.npy", pts * 1e300)
    _one_line_error(capsys, ["mesh", "--points", tmp_path / "huge.npy", "--out", tmp_path / "m.ply"],
                    "huge.npy", "float32")


def test_mesh_npz_named_npy_is_one_line(tmp_path, capsys):
    pytest.importorskip("open3d")
    with open(tmp_path / "p.npy", "wb") as fh:
        np.savez(fh, points=_chair())
    _one_line_error(capsys, ["mesh", "--points", tmp_path / "p.npy", "--out", tmp_path / "m.ply"],
                    "p.npy", ".npz archive", "np.save")


# --------------------------------------------------------------------------------------------
# render: pixels held, blank images, formats, frames
# --------------------------------------------------------------------------------------------
def test_render_a_thousand_cloud_stack_is_refused(tmp_path):
    np.save(tmp_path / "stack.npy", np.random.default_rng(0).uniform(-0.3, 0.3, (1000, 20, 3)).astype(np.float32))
    _refused(["render", "--points", "stack.npy", "--out", "s.png"], tmp_path,
             "LMNET_MAX_RENDER_PIXELS=262144000", "1000 image cell(s) of 512x512")
    assert not (tmp_path / "s.png").exists()


def test_render_a_200_frame_2048px_gif_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", _chair())
    _refused(["render", "--points", "c.npy", "--gif", "--frames", "200", "--size", "2048", "--out", "t.gif"],
             tmp_path, "LMNET_MAX_RENDER_PIXELS=838860800", "200 GIF frames of 2048x2048")


def test_render_identical_points_draw_a_dot(tmp_path, capsys):
    """A collapsed cloud in the frame is a dot; outside it (or at 1e30) it is an error, not white."""
    np.save(tmp_path / "same.npy", np.zeros((2048, 3), np.float32))
    assert cli_main(["render", "--points", str(tmp_path / "same.npy"), "--size", "64",
                     "--out", str(tmp_path / "same.png")]) == 0
    rgb = np.asarray(Image.open(tmp_path / "same.png"))[..., :3]
    drawn = (rgb < 255).any(-1)
    assert 0 < drawn.sum() < 64 * 64 // 20  # a dot, not an empty or a full image
    rows, cols = np.nonzero(drawn)
    assert abs(rows.mean() - 32) < 4 and abs(cols.mean() - 32) < 4  # at the centre: the origin
    np.save(tmp_path / "far.npy", np.full((2048, 3), 0.5, np.float32))
    _one_line_error(capsys, ["render", "--points", tmp_path / "far.npy", "--out", tmp_path / "far.png"],
                    "far.npy", "no point is drawn", "3D-LMNet frame")
    np.save(tmp_path / "huge.npy", _chair() * np.float32(1e30))
    _one_line_error(capsys, ["render", "--points", tmp_path / "huge.npy", "--out", tmp_path / "huge.png"],
                    "huge.npy", "no point is drawn")
    assert not (tmp_path / "far.png").exists() and not (tmp_path / "huge.png").exists()


def test_render_nan_view_is_refused(tmp_path, capsys):
    np.save(tmp_path / "c.npy", _chair())
    _one_line_error(capsys, ["render", "--points", tmp_path / "c.npy", "--view", "r2n2:nan,25,0.8",
                             "--out", tmp_path / "v.png"], "--view", "r2n2:nan,25,0.8", "finite")
    _one_line_error(capsys, ["render", "--points", tmp_path / "c.npy", "--view", "r2n2:45,25,0",
                             "--out", tmp_path / "v.png"], "distance ratio > 0")


def test_render_format_follows_the_extension(tmp_path, capsys):
    np.save(tmp_path / "c.npy", _chair())
    assert cli_main(["render", "--points", str(tmp_path / "c.npy"), "--size", "64", "--out", str(tmp_path / "c.jpg")]) == 0
    assert (tmp_path / "c.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    assert Image.open(tmp_path / "c.jpg").format == "JPEG"
    assert cli_main(["render", "--points", str(tmp_path / "c.npy"), str(tmp_path / "c.npy"), "--size", "32",
                     "--out", str(tmp_path / "strip.jpeg")]) == 0
    assert Image.open(tmp_path / "strip.jpeg").format == "JPEG"
    capsys.readouterr()
    _one_line_error(capsys, ["render", "--points", tmp_path / "c.npy", "--out", tmp_path / "c.bmp"], "c.bmp", ".png")
    _one_line_error(capsys, ["render", "--points", tmp_path / "c.npy", "--transparent", "--out", tmp_path / "t.jpg"],
                    "--transparent", "JPEG")
    assert not (tmp_path / "c.bmp").exists() and not (tmp_path / "t.jpg").exists()


def test_render_zero_frames_is_a_usage_error(tmp_path, capsys):
    np.save(tmp_path / "c.npy", _chair())
    with pytest.raises(SystemExit) as exc:
        cli_main(["render", "--points", str(tmp_path / "c.npy"), "--gif", "--frames", "0", "--out", str(tmp_path / "t.gif")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--frames: must be >= 1, got 0" in err and "Traceback" not in err


def test_render_npz_named_npy_is_one_line(tmp_path, capsys):
    with open(tmp_path / "p.npy", "wb") as fh:
        np.savez(fh, points=_chair())
    _one_line_error(capsys, ["render", "--points", tmp_path / "p.npy", "--out", tmp_path / "p.png"],
                    "p.npy", ".npz archive")


# --------------------------------------------------------------------------------------------
# archives: size and ratio caps, damaged members, nothing left behind
# --------------------------------------------------------------------------------------------
def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def test_pretrained_zip_bomb_is_refused_before_extracting(tmp_path, monkeypatch, capsys):
    """A 200 KB member that expanded to 200 MB was extracted in full (here 64 KB → 64 MiB)."""
    _zip(tmp_path / "lm.zip", [("lm/best/best.data-00000-of-00001", bytes(64 << 20))])
    assert (tmp_path / "lm.zip").stat().st_size < 100_000
    _refused(["pretrained", "download", "official-lm", "--from-file", "lm.zip", "--out", "tm"], tmp_path,
             "LMNET_MAX_COMPRESSION_RATIO=", "lm.zip", "best.data-00000-of-00001", "67,108,864 bytes")
    assert not (tmp_path / "tm").exists()
    monkeypatch.setenv("LMNET_MAX_COMPRESSION_RATIO", "0")
    monkeypatch.setenv("LMNET_MAX_EXTRACT_BYTES", "1000000")
    _one_line_error(capsys, ["pretrained", "download", "official-lm", "--from-file", tmp_path / "lm.zip",
                             "--out", tmp_path / "tm"], "lm.zip", "LMNET_MAX_EXTRACT_BYTES=67108864")
    assert not (tmp_path / "tm").exists()


def test_tar_bomb_and_size_cap_leave_nothing_behind(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, size in (("top/small.txt", 10), ("top/zeros.bin", 20 << 20)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(bytes(size)))
    (tmp_path / "a.tgz").write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="a.tgz: the archive expands .* LMNET_MAX_COMPRESSION_RATIO="):
        safe_extract(tmp_path / "a.tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("LMNET_MAX_COMPRESSION_RATIO", "0")
    monkeypatch.setenv("LMNET_MAX_EXTRACT_BYTES", str(1 << 20))
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "kept").write_text("there before")
    with pytest.raises(DownloadError, match="LMNET_MAX_EXTRACT_BYTES=20971530"):
        safe_extract(tmp_path / "a.tgz", tmp_path / "scratch")
    assert [p.name for p in (tmp_path / "scratch").iterdir()] == ["kept"]  # only what was there before
    monkeypatch.setenv("LMNET_MAX_EXTRACT_BYTES", "0")
    assert safe_extract(tmp_path / "a.tgz", tmp_path / "scratch") == 2


def _bad_crc_zip(path):
    _zip(path, [("lm/best/best.index", b"hello world" * 100)], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[data.index(b"hello world")] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case, make, patterns", [
    ("bad CRC", _bad_crc_zip, ("damaged member 'lm/best/best.index'", "Bad CRC-32")),
    ("file/folder clash", lambda p: _zip(p, [("lm/best/best.index", b"x"), ("lm/best/best.index/x", b"y")]),
     ("'lm/best/best.index/x'", "a file and a folder")),
    ("300-character name", lambda p: _zip(p, [("lm/best/best.index", b"x"), ("lm/" + "n" * 300, b"y")]),
     ("nnnn...'", "File name too long")),
])
def test_damaged_zip_is_one_line_and_leaves_nothing(tmp_path, capsys, case, make, patterns):
    make(tmp_path / "lm.zip")
    _one_line_error(capsys, ["pretrained", "download", "official-lm", "--from-file", tmp_path / "lm.zip",
                             "--out", tmp_path / "tm"], "lm.zip", *patterns)
    assert not (tmp_path / "tm").exists()  # no partial extraction (nor its empty parents)
