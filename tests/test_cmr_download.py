"""CUB / Pascal3D+ downloads, offline: archives built from stand-in trees, served on 127.0.0.1 (or
through a stand-in for gdown checked to receive CMR's Drive id), installed into the loaders' layout;
the published MD5, skip-if-installed, a cut connection resumed and unsafe archives."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile

import pytest
from cmr_standin import write_cub, write_p3d

from lmnet.cli import main
from lmnet.data import cmr_download
from lmnet.data.cmr_check import check_cmr
from lmnet.errors import DownloadError


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _files(root, under: str, prefix: str) -> dict[str, bytes]:
    """``{prefix + relative path: bytes}`` of every file below ``root / under``."""
    base = root / under
    return {prefix + p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    src = tmp_path_factory.mktemp("cmrsrc")
    write_cub(src / "cub")
    write_p3d(src / "p3d")
    cub_images = _tgz({"attributes.txt": b"top-level file of the real archive\n",
                       **_files(src / "cub", "CUB_200_2011", "CUB_200_2011/")})
    cachedir = _tgz({**_files(src / "cub", "data", "cachedir/cub/data/"),
                     **_files(src / "cub", "sfm", "cachedir/cub/sfm/"),
                     "cachedir/snapshots/readme.txt": b"other things CMR keeps there\n"})
    p3d_images = _zip(_files(src / "p3d", "PASCAL3D+_release1.1", "PASCAL3D+_release1.1/"))
    p3d_anno = _tgz({**_files(src / "p3d", "data", "p3d/data/"), **_files(src / "p3d", "sfm", "p3d/sfm/")})
    return {"CUB_200_2011.tgz": cub_images, "cachedir.tar.gz": cachedir, "PASCAL3D+_release1.1.zip": p3d_images,
            "p3d_annotations": p3d_anno, "p3d_labels.csv": (src / "p3d" / "p3d_labels.csv").read_bytes()}


def test_cub_by_url_installs_the_loader_layout(server, archives, tmp_path, capsys):
    server.files = {f"/m/{name}": archives[name] for name in ("CUB_200_2011.tgz", "cachedir.tar.gz")}
    server.cut = {"/m/CUB_200_2011.tgz": 500}   # the first transfer drops after 500 bytes: resumed
    root = tmp_path / "cub"
    args = ["download", "--dataset", "cub", "--root", str(root), "--url", f"{server.url}/m/cachedir.tar.gz",
            "--url", f"{server.url}/m/CUB_200_2011.tgz"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cub-images: installed" in out and "cub-annotations: installed" in out
    assert ("/m/CUB_200_2011.tgz", "bytes=500-") in server.log
    rep = check_cmr(root, "cub")
    assert rep.ok and rep.splits == {"train": {"images": 4, "usable": 4}, "testval": {"images": 2, "usable": 2}}
    assert (root / "data" / "train_cub_cleaned.mat").is_file() and not (root / ".lmnet_downloads").exists()
    assert main(args) == 0 and capsys.readouterr().out.count("already installed") == 2


def test_p3d_images_by_url_annotations_from_drive_labels_by_url(server, archives, tmp_path, monkeypatch, capsys):
    import gdown

    server.files = {"/PASCAL3D+_release1.1.zip": archives["PASCAL3D+_release1.1.zip"],
                    "/p3d_labels.csv": archives["p3d_labels.csv"]}
    seen = {}

    def fake_download(id=None, output=None, **kw):  # gdown needs the network: stand in for it
        seen["id"] = id
        with open(output, "wb") as fh:
            fh.write(archives["p3d_annotations"])
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    root = tmp_path / "p3d"
    assert main(["download", "--dataset", "p3d", "--root", str(root), "--url", f"{server.url}/PASCAL3D+_release1.1.zip",
                 "--url", f"{server.url}/p3d_labels.csv"]) == 0
    assert seen["id"] == "1RbiCWu1ArD3ii-92o5xNkY6TzXBH0tgo"
    rep = check_cmr(root, "p3d")
    assert rep.ok and rep.splits["train"]["usable"] == 3, rep.problems
    assert (root / "p3d_labels.csv").read_bytes() == archives["p3d_labels.csv"]


def test_published_md5_is_checked_for_the_default_urls(server, archives, tmp_path, monkeypatch):
    server.files = {"/CUB_200_2011.tgz": archives["CUB_200_2011.tgz"]}
    asset = cmr_download.ASSETS["cub-images"]
    monkeypatch.setitem(cmr_download.ASSETS, "cub-images",
                        dataclasses.replace(asset, urls=(f"{server.url}/CUB_200_2011.tgz",)))
    root = tmp_path / "cub"
    with pytest.raises(DownloadError, match=f"MD5 .* is not the published {asset.md5} of CUB_200_2011.tgz; deleted"):
        cmr_download.download(root, "cub-images", progress=False, max_attempts=2)
    assert not (root / ".lmnet_downloads" / "CUB_200_2011.tgz").exists() and not (root / "CUB_200_2011").exists()


def test_unsafe_or_wrong_archives_are_refused(tmp_path, capsys):
    evil = tmp_path / "evil.tgz"
    evil.write_bytes(_tgz({"CUB_200_2011/images.txt": b"1 a.jpg\n", "../escaped.txt": b"pwned"}))
    root = tmp_path / "sandbox"
    with pytest.raises(DownloadError, match="refusing|outside|unsafe"):
        cmr_download.install(evil, root, cmr_download.ASSETS["cub-images"])
    assert not (tmp_path / "escaped.txt").exists()
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(_tgz({"cachedir/cub/data/train_cub_cleaned.mat": b"x"}))
    with pytest.raises(DownloadError, match="no folder holds all of data/train_cub_cleaned.mat"):
        cmr_download.install(junk, tmp_path / "a", cmr_download.ASSETS["cub-annotations"])
    csv = tmp_path / "p3d_labels.csv"
    csv.write_text("<html>not found</html>\n")
    with pytest.raises(DownloadError, match="not the Pascal3D\\+ labels file"):
        cmr_download.install(csv, tmp_path / "b", cmr_download.ASSETS["p3d-labels"])
    capsys.readouterr()
    assert main(["download", "--dataset", "cub", "--what", "pointclouds", "--root", str(tmp_path / "c")]) == 2
    assert "--what pointclouds is not a part of cub" in capsys.readouterr().err
    stray = "http://127.0.0.1:9/x.zip"   # never fetched: refused before any download
    assert main(["download", "--dataset", "cub", "--root", str(tmp_path / "c"), "--url", stray]) == 2
    assert "its file name is none of CUB_200_2011.tgz, cachedir.tar.gz" in capsys.readouterr().err
