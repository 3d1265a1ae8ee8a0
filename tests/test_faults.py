"""Fault injection, part 1: downloads, bad data, the image cache, images and bad arguments.

Every test reproduces one way lmnet used to go wrong (a silent wrong result, a traceback, lost or
mixed data): servers on 127.0.0.1 that cut transfers or send no length, archives and partial files
left by earlier runs, files truncated or rewritten in place, malformed images and arguments.
Part 2 (tests/test_faults_runs.py) covers training runs, their outputs and interruptions.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from conftest import write_tiny_shapenet

from lmnet.cli import main as cli_main
from lmnet.data import download as dl
from lmnet.errors import DownloadError
from lmnet.data.dataset import ShapeNetDataset
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.errors import CorruptFileError
from lmnet.data import inputs
from lmnet.data import inputs, layout
from lmnet.data.inputs import MAX_PIXELS_ENV
from lmnet.data.check import check_data
from lmnet import infer
from lmnet.errors import ConfigError
from lmnet.eval.run import evaluate_run
from lmnet.errors import DataError


# --------------------------------------------------------------------------------------------
# 1. downloads always verify before they install
# --------------------------------------------------------------------------------------------


def _tgz(src_root, top="ShapeNetRendering") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src_root / top, arcname=top)
    return buf.getvalue()


@pytest.fixture(scope="module")
def two_archives(tmp_path_factory):
    """Two different valid rendering archives: (good tgz, other tgz, good TinyShapeNet)."""
    good = write_tiny_shapenet(tmp_path_factory.mktemp("good") / "data", synsets=("03001627",), n_models=2,
                               pointclouds=False, seed=1)
    other = write_tiny_shapenet(tmp_path_factory.mktemp("other") / "data", synsets=("02691156",), n_models=1,
                                pointclouds=False, seed=2)
    return _tgz(good.root), _tgz(other.root), good


def _kw():
    return dict(max_attempts=3, timeout=10, progress=False, retry_wait=0.0)


def _installed_pngs(root):
    return sorted(p.relative_to(root).as_posix() for p in (root / "ShapeNetRendering").rglob("*.png"))


def test_leftover_archive_is_verified_before_install(server, two_archives, tmp_path):
    good, other, src = two_archives
    server.files = {"/good.tgz": good}
    root = tmp_path / "data"
    ddir = root / dl.DOWNLOAD_DIRNAME
    ddir.mkdir(parents=True)
    # an archive from an earlier --url (a different, valid file) sits where good.tgz would go
    (ddir / dl.RENDERINGS.filename).write_bytes(other)
    dl.download_renderings(root, urls=[server.url + "/good.tgz"], **_kw())
    assert _installed_pngs(root) == _installed_pngs(src.root)  # the served file, not the leftover
    assert [p for p, _ in server.log] == ["/good.tgz"]
    # a half download left as the archive itself (never installed): discarded, downloaded again
    root2 = tmp_path / "data2"
    (root2 / dl.DOWNLOAD_DIRNAME).mkdir(parents=True)
    (root2 / dl.DOWNLOAD_DIRNAME / dl.RENDERINGS.filename).write_bytes(good[: len(good) // 2])
    out = dl.download_renderings(root2, urls=[server.url + "/good.tgz"], **_kw())
    assert out == root2 / "ShapeNetRendering" and _installed_pngs(root2) == _installed_pngs(src.root)
    # a verified archive (kept) is reused without a request; rewritten in place it is not
    n = len(server.log)
    dl.download_renderings(root, urls=[server.url + "/good.tgz"], force=True, keep_archive=True, **_kw())
    assert len(server.log) == n + 1
    (root / "ShapeNetRendering" / dl.MARKER_NAME).unlink()
    dl.download_renderings(root, urls=[server.url + "/good.tgz"], keep_archive=True, **_kw())
    assert len(server.log) == n + 1  # reused: size and sha256 match its record
    archive = ddir / dl.RENDERINGS.filename
    archive.write_bytes(good[:-10] + b"\0" * 10)  # same size, other bytes
    (root / "ShapeNetRendering" / dl.MARKER_NAME).unlink()
    dl.download_renderings(root, urls=[server.url + "/good.tgz"], keep_archive=True, **_kw())
    assert len(server.log) == n + 2 and archive.read_bytes() == good


def test_partial_file_of_another_url_or_hash_is_discarded(server, two_archives, tmp_path):
    good, other, _ = two_archives
    server.files = {"/a.tgz": other, "/b.tgz": good}
    server.cut["/a.tgz"] = 3000
    dest = tmp_path / "r.tgz"
    with pytest.raises(DownloadError, match="--force"):  # the error says how to start over
        dl.http_download(server.url + "/a.tgz", dest, max_attempts=1, progress=False)
    assert (tmp_path / "r.tgz.part").stat().st_size == 3000
    dl.http_download(server.url + "/b.tgz", dest, max_attempts=1, progress=False)
    assert server.log[-1] == ("/b.tgz", None)  # not resumed from a.tgz's bytes
    assert dest.read_bytes() == good
    # same URL, but now another expected sha256: the old partial bytes are not trusted either
    dest.unlink()
    server.cut["/b.tgz"] = 3000
    with pytest.raises(DownloadError):
        dl.http_download(server.url + "/b.tgz", dest, max_attempts=1, progress=False)
    dl.http_download(server.url + "/b.tgz", dest, max_attempts=1, progress=False,
                     sha256=hashlib.sha256(good).hexdigest())
    assert server.log[-1] == ("/b.tgz", None) and dest.read_bytes() == good


def test_no_content_length_and_a_cut_is_not_complete(server, two_archives, tmp_path):
    good, _, _ = two_archives
    server.files = {"/r.tgz": good}
    server.length = False
    server.cut["/r.tgz"] = 4000
    dest = tmp_path / "r.tgz"
    dl.http_download(server.url + "/r.tgz", dest, **_kw())
    assert dest.read_bytes() == good  # the cut was noticed and the rest fetched with Range
    assert server.log[1] == ("/r.tgz", "bytes=4000-")
    # a server that also ignores Range: nothing can confirm the end -> refused, not accepted short
    server.ranges = False
    server.cut["/r.tgz"] = 4000
    dest2 = tmp_path / "s.tgz"
    with pytest.raises(DownloadError, match="Content-Length.*--size or --sha256"):
        dl.http_download(server.url + "/r.tgz", dest2, **_kw())
    assert not dest2.exists()
    # with the expected size a cut is an incomplete transfer, retried until the size is reached
    server.cut["/r.tgz"] = 4000
    dl.http_download(server.url + "/r.tgz", dest2, size=len(good), **_kw())
    assert dest2.read_bytes() == good


def test_leftover_drive_archive_without_a_record_is_downloaded_again(tmp_path, monkeypatch):
    import zipfile

    import gdown

    src = write_tiny_shapenet(tmp_path / "src", synsets=("03001627",), n_models=1, renderings=False)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for p in sorted((src.root / "ShapeNet_pointclouds").rglob("*")):
            zf.write(p, p.relative_to(src.root).as_posix())
    calls = []

    def fake_download(id=None, output=None, **kw):  # gdown needs the network: stand in for it
        calls.append(id)
        with open(output, "wb") as fh:
            fh.write(zbuf.getvalue())
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    root = tmp_path / "data"
    (root / dl.DOWNLOAD_DIRNAME).mkdir(parents=True)
    (root / dl.DOWNLOAD_DIRNAME / dl.POINTCLOUDS.filename).write_bytes(b"PK half a zip")
    gid = "1cfoe521_fake_id_for_tests_0000"
    dl.download_pointclouds(root, gdrive_id=gid, keep_archive=True, progress=False)
    assert calls == [gid] and (root / "ShapeNet_pointclouds" / "03001627").is_dir()
    (root / "ShapeNet_pointclouds" / dl.MARKER_NAME).unlink()
    dl.download_pointclouds(root, gdrive_id=gid, keep_archive=True, progress=False)
    assert calls == [gid]  # the recorded archive is verified and reused
    (root / "ShapeNet_pointclouds" / dl.MARKER_NAME).unlink()
    dl.download_pointclouds(root, gdrive_id="1cfoe521_another_id_for_tests_00", keep_archive=True, progress=False)
    assert calls == [gid, "1cfoe521_another_id_for_tests_00"]  # another id: not the same file


def test_litter_of_an_interrupted_run_is_removed(server, two_archives, tmp_path, capsys):
    good, _, _ = two_archives
    server.files = {"/S.tgz": good}
    root = tmp_path / "data"
    scratch = root / ".lmnet-extract-renderings-killed"
    (scratch / "ShapeNetRendering").mkdir(parents=True)
    ddir = root / dl.DOWNLOAD_DIRNAME
    ddir.mkdir()
    (ddir / (dl.RENDERINGS.filename + ".part")).write_bytes(b"x" * 100)  # no record of its request
    (ddir / f".{dl.RENDERINGS.filename}.abc.tmp").write_bytes(b"x")
    assert cli_main(["download", "--root", str(root), "--what", "renderings", "--url", server.url + "/S.tgz"]) == 0
    assert server.log == [("/S.tgz", None)]
    assert not scratch.exists() and not [p for p in root.glob(".lmnet-extract-*")]
    assert not ddir.exists() or not list(ddir.iterdir())
    # a failed extraction leaves neither a scratch folder nor the bad archive behind
    server.files["/S.tgz"] = b"not an archive"
    assert cli_main(["download", "--root", str(root), "--what", "renderings", "--force",
                     "--url", server.url + "/S.tgz"]) == 2
    assert "not a readable tar" in capsys.readouterr().err
    assert not [p for p in root.glob(".lmnet-extract-*")]
    assert json.loads((root / "ShapeNetRendering" / dl.MARKER_NAME).read_text())["source"].endswith("/S.tgz")


# --------------------------------------------------------------------------------------------
# 2. bad data never crashes training
# --------------------------------------------------------------------------------------------
def _ae_args(root, run_dir, *extra):
    sets = [f"data_root={root}", "n_points=1024", "batch_size=2", "epochs=1", "progress=False",
            f"run_dir={run_dir}", *extra]
    return ["train", "ae"] + [a for s in sets for a in ("--set", s)]


def test_skip_bad_drops_models_with_a_bad_cloud_in_points_only_mode(tiny_shapenet, tmp_path, capsys):

    bad_key = tiny_shapenet.keys[1]
    bad = tiny_shapenet.model_dir(bad_key, "ShapeNet_pointclouds") / "pointcloud_1024.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    ds = ShapeNetDataset(tiny_shapenet.root, n_points=1024, load_images=False, skip_bad=True)
    assert bad_key not in ds.keys and len(ds) == len(tiny_shapenet.keys) - 1
    assert [s.split(":")[0] for s in ds.skipped] == [bad_key]
    assert all(ds[i]["key"] != bad_key for i in range(len(ds)))
    assert cli_main(_ae_args(tiny_shapenet.root, tmp_path / "run", "skip_bad=True", "num_workers=0")) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


@pytest.mark.parametrize("workers", [0, 2])
def test_data_errors_are_one_line_with_any_number_of_workers(tiny_shapenet, tmp_path, capsys, workers):
    bad = tiny_shapenet.model_dir(tiny_shapenet.keys[0], "ShapeNet_pointclouds") / "pointcloud_1024.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    rc = cli_main(_ae_args(tiny_shapenet.root, tmp_path / "run", f"num_workers={workers}", "batch_size=6"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1] == f"lmnet train: error: {bad}: unreadable .npy (" + err[-1].split(" (", 1)[1]
    assert "Traceback" not in "\n".join(err) and "DataLoader worker" not in err[-1]


def test_lmnet_errors_pickle_and_rebuild_from_worker_text():
    import pickle
    import traceback


    for exc in (CorruptFileError("/d/a.npy", "bad: really"), DataError("no models"), ConfigError("key 'x'")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
        try:
            raise exc
        except Exception:
            text = "".join(traceback.format_exception(*__import__("sys").exc_info()))
        rebuilt = type(exc)(f"Caught {type(exc).__name__} in DataLoader worker process 1.\nOriginal {text}")
        assert str(rebuilt) == str(exc) and rebuilt.where == "in DataLoader worker process 1"
    assert CorruptFileError("/d/a.npy: bad: really").reason == "bad: really"


# --------------------------------------------------------------------------------------------
# 3. the image cache is never stale
# --------------------------------------------------------------------------------------------
def _rewrite_in_place(path, data):
    """Overwrite ``path``'s bytes without touching its folder's mtime (as an editor or a copy tool
    rewriting the same file does)."""
    import os

    folder = path.parent.stat()
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(data)
    os.utime(path.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))


def test_image_cache_sees_files_rewritten_or_truncated_in_place(tiny_shapenet):
    import numpy as np
    from PIL import Image


    key = tiny_shapenet.keys[0]
    png = tiny_shapenet.model_dir(key) / "rendering" / "00.png"
    ds = ShapeNetDataset(tiny_shapenet.root, categories=key.split("/")[0], views=[0], n_points=1024)
    i = ds.keys.index(key)
    before = ds[i]["image"].numpy()
    rgba = np.zeros((137, 137, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # an opaque red square
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    _rewrite_in_place(png, buf.getvalue())
    ds2 = ShapeNetDataset(tiny_shapenet.root, categories=key.split("/")[0], views=[0], n_points=1024)
    after = ds2[i]["image"].numpy()
    assert not np.array_equal(before, after) and np.allclose(after[0], 200.0) and np.allclose(after[1:], 0.0)
    _rewrite_in_place(png, buf.getvalue()[:100])  # truncated
    ds3 = ShapeNetDataset(tiny_shapenet.root, categories=key.split("/")[0], views=[0], n_points=1024)
    with pytest.raises(CorruptFileError, match="00.png"):
        ds3[i]


# --------------------------------------------------------------------------------------------
# 8. images are read correctly or refused
# --------------------------------------------------------------------------------------------
def _png_bytes(arr, bit_depth, color_type, width=None, height=None, idat=None) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB): ``arr`` uint8/uint16 ``(H, W, C)``;
    ``width``/``height``/``idat`` override the header / the data (huge or truncated files)."""
    import struct
    import zlib

    import numpy as np

    h, w = arr.shape[:2] if arr is not None else (height, width)
    if idat is None:
        dt = ">u2" if bit_depth == 16 else "u1"
        idat = zlib.compress(b"".join(b"\0" + np.ascontiguousarray(arr[y]).astype(dt).tobytes() for y in range(h)))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width or w, height or h, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_16_bit_gray_is_scaled_not_clipped(tmp_path):
    import numpy as np


    ramp = np.linspace(0, 65535, 128 * 128).reshape(128, 128, 1).astype(np.uint16)
    (tmp_path / "g16.png").write_bytes(_png_bytes(ramp, 16, 0))
    out = inputs.prepare_image(tmp_path / "g16.png")
    expected = np.rint(ramp[..., 0] / 257.0)
    np.testing.assert_allclose(out[0], expected, atol=0.5)
    assert (out[0] == 255).mean() < 0.01  # was 26 % clipped at 255 and more


def test_exif_orientation_is_respected(tmp_path):
    import numpy as np
    from PIL import Image


    rgba = np.zeros((137, 137, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, :40, 0] = 255  # a red band on the left as stored
    for orientation, k in ((3, 2), (6, -1)):  # 180°; 90° clockwise to display
        im = Image.fromarray(rgba, "RGBA")
        exif = im.getexif()
        exif[0x0112] = orientation
        p = tmp_path / f"o{orientation}.png"
        im.save(p, exif=exif)
        np.testing.assert_array_equal(layout.read_image(p), np.rot90(rgba, k))
        shown = np.ascontiguousarray(np.rot90(rgba, k))
        Image.fromarray(shown, "RGBA").save(tmp_path / "ref.png")
        np.testing.assert_array_equal(inputs.prepare_image(p), inputs.prepare_image(tmp_path / "ref.png"))


def test_huge_images_are_refused_with_a_way_to_allow_them(tmp_path, monkeypatch, capsys):
    import zlib

    import numpy as np


    huge = tmp_path / "huge.png"  # 14000 x 14000 gray, header only: refused before decoding
    huge.write_bytes(_png_bytes(None, 8, 0, width=14000, height=14000, idat=zlib.compress(b"\0" * 100)))
    with pytest.raises(CorruptFileError, match=f"14000x14000 = 196,000,000 pixels.*{MAX_PIXELS_ENV}=196000000"):
        inputs.prepare_image(huge)
    small = tmp_path / "small.png"
    small.write_bytes(_png_bytes(np.full((300, 300, 1), 7, np.uint8), 8, 0))
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    with pytest.raises(CorruptFileError, match="90,000 pixels is larger than the 10,000-pixel limit"):
        inputs.prepare_image(small)
    monkeypatch.setenv(MAX_PIXELS_ENV, "90000")
    assert inputs.prepare_image(small).shape == (3, 128, 128)


def test_check_data_flags_images_that_would_give_a_wrong_mask(tiny_shapenet, monkeypatch):
    import numpy as np
    from PIL import Image


    rd = tiny_shapenet.model_dir(tiny_shapenet.keys[0]) / "rendering"
    gray = np.random.default_rng(0).integers(0, 256, (137, 137), dtype=np.uint8)
    Image.fromarray(gray, "L").save(rd / "01.png")  # 8-bit gray: no silhouette
    (rd / "02.png").write_bytes(_png_bytes((gray.astype(np.uint16) * 257)[..., None], 16, 0))  # 16-bit gray
    la = np.stack([gray, np.where(gray > 128, 255, 0).astype(np.uint8)], -1)
    Image.fromarray(la, "LA").save(rd / "03.png")  # gray + alpha: fine, the alpha is the mask
    report = check_data(tiny_shapenet.root)
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == {str(rd / "01.png"), str(rd / "02.png")}
    assert all("without an alpha channel" in r for r in reasons.values())
    ds = ShapeNetDataset(tiny_shapenet.root, categories="airplane", views=[1, 3], n_points=1024, image_cache=False)
    with pytest.raises(CorruptFileError, match="01.png.*without an alpha channel"):
        ds[0]
    item = ds[1]
    np.testing.assert_array_equal(item["mask"][0].numpy(), (la[4:-5, 4:-5, 1] / 255.0).astype(np.float32))
    monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "1000")
    assert any("pixel limit" in p.reason for p in check_data(tiny_shapenet.root, categories="chair").problems)


# --------------------------------------------------------------------------------------------
# 9. bad arguments get a clear error, not a traceback or a silent rc 0
# --------------------------------------------------------------------------------------------
def _usage_error(capsys, argv, match):
    """argparse refuses ``argv`` with a usage line naming the option (exit code 2, no traceback)."""
    import re

    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and re.search(match, err) and "Traceback" not in err, err


@pytest.mark.parametrize("argv, match", [
    (["infer", "--checkpoint", "r", "--images", "a.png", "--out", "o", "--limit", "-5"], "--limit: must be >= 0, got -5"),
    (["infer", "--checkpoint", "r", "--images", "a.png", "--out", "o", "--batch-size", "0"], "--batch-size: must be >= 1"),
    (["eval", "--run", "r", "--batch-size", "-1"], "--batch-size: must be >= 1, got -1"),
    (["eval", "--run", "r", "--max-items", "-3"], "--max-items: must be >= 0"),
    (["download", "--root", "d", "--attempts", "0"], "--attempts: must be >= 1"),
])
def test_out_of_range_numbers_are_usage_errors(capsys, argv, match):
    _usage_error(capsys, argv, match)


def test_library_calls_refuse_bad_counts(tmp_path):

    with pytest.raises(ConfigError, match="--limit must be a whole number >= 0"):
        infer.predict_split(tmp_path, tmp_path / "o", limit=-5)
    with pytest.raises(ConfigError, match="--batch-size"):
        infer.predict_images(tmp_path, ["a.png"], tmp_path / "o", batch_size=0)
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate_run(tmp_path, batch_size=-1)


def test_bad_config_files_and_values(tmp_path, capsys):
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "latin1.json").write_bytes('{"lr": 1e-3, "name": "caf\xe9"}'.encode("latin-1"))
    cases = [
        (["--config", str(tmp_path / "cfgdir")], "is a folder; expected a JSON file"),
        (["--config", str(tmp_path / "latin1.json")], "is not UTF-8 text"),
        (["--set", "beta1=2.0"], r"'beta1' \(Adam\) must be in \[0, 1\), got 2.0"),
        (["--set", "grad_clip=-1"], r"'grad_clip' must be a finite max gradient norm >= 0 \(0 = off\), got -1"),
        (["--set", "lr=1e999"], "'lr' must be a finite number > 0, got inf"),
    ]
    for extra, match in cases:
        assert cli_main(["train", "ae", "--print-config", *extra]) == 2, extra
        err = capsys.readouterr().err
        import re

        assert re.search(match, err) and "Traceback" not in err, err


def test_categories_without_models_are_named(tiny_shapenet, caplog):

    with caplog.at_level("WARNING", logger="lmnet.data"):
        ds = ShapeNetDataset(tiny_shapenet.root, categories="chair,sofa", n_points=1024, load_images=False)
    assert ds.categories == ["03001627"]
    assert "sofa (04256520)" in caplog.text and "have no models" in caplog.text
    with pytest.raises(DataError, match="no models found.*sofa"):
        ShapeNetDataset(tiny_shapenet.root, categories="sofa", n_points=1024, load_images=False)


@pytest.mark.parametrize("content, match", [
    ({"03001627": "03001627/m627_000"}, "value of '03001627' must be a list"),  # a string, read char by char
    ({"03001627": 5}, "value of '03001627' must be a list"),
    ({"03001627": ["03001627/../../etc"]}, "is not 'synset/model_id'"),
    ({"03001627": ["03001627/m627_000/rendering"]}, "is not 'synset/model_id'"),
    ({"03001627": [".."]}, "is not 'synset/model_id'"),
])
def test_malformed_split_files_are_refused(tiny_shapenet, tmp_path, content, match):

    split = tmp_path / "bad_split.json"
    split.write_text(json.dumps(content))
    with pytest.raises(DataError, match=match):
        ShapeNetDataset(tiny_shapenet.root, split=split, n_points=1024, load_images=False)
    with pytest.raises(DataError, match=match):
        check_data(tiny_shapenet.root, split=split)
    with pytest.raises(DataError, match="is not 'synset/model_id'"):
        ShapeNetDataset(tiny_shapenet.root, split={"03001627": ["03001627/../x"]}, load_images=False)
