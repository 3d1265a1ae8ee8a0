"""Downloads, fully offline: a local HTTP server on 127.0.0.1 with Range support that can drop the
connection mid-file; resume, checksum, skip-if-present, safe extraction and malicious archives."""

import hashlib
import io
import os
import stat
import tarfile
import zipfile

import pytest
from conftest import write_tiny_shapenet

from lmnet.cli import main as cli_main
from lmnet.data import download as dl
from lmnet.data.check import check_data
from lmnet.errors import DownloadError


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """(tgz bytes of ShapeNetRendering/, zip bytes of ShapeNet_pointclouds/, the TinyShapeNet)."""
    src = write_tiny_shapenet(tmp_path_factory.mktemp("src") / "data", synsets=("03001627",), n_models=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src.root / "ShapeNetRendering", arcname="ShapeNetRendering")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for p in sorted((src.root / "ShapeNet_pointclouds").rglob("*")):
            zf.write(p, p.relative_to(src.root).as_posix())
    return buf.getvalue(), zbuf.getvalue(), src


def _kw():
    return dict(max_attempts=3, timeout=10, progress=False, retry_wait=0.0)


def test_download_interrupted_then_resumed_and_extracted(server, archives, tmp_path):
    tgz, zp, src = archives
    server.files = {"/ShapeNetRendering.tgz": tgz, "/pc.zip": zp}
    server.cut["/ShapeNetRendering.tgz"] = len(tgz) // 3
    root = tmp_path / "data"
    out = dl.download_renderings(root, urls=[server.url + "/missing.tgz", server.url + "/ShapeNetRendering.tgz"],
                                 sha256=hashlib.sha256(tgz).hexdigest(), size=len(tgz), **_kw())
    assert out == root / "ShapeNetRendering"
    tgz_log = [r for p, r in server.log if p == "/ShapeNetRendering.tgz"]
    assert tgz_log == [None, f"bytes={len(tgz) // 3}-"]  # one drop, one resume from the right byte
    assert ("/missing.tgz", None) in server.log  # the dead mirror was tried first
    dl.download_pointclouds(root, urls=[server.url + "/pc.zip"], **_kw())
    report = check_data(root)
    assert report.ok and report.n_models == 2
    for f in (src.root / "ShapeNetRendering").rglob("*.png"):
        assert (root / f.relative_to(src.root)).read_bytes() == f.read_bytes()
    assert not (root / dl.DOWNLOAD_DIRNAME / "ShapeNetRendering.tgz").exists()  # archive removed
    assert not [p for p in root.iterdir() if p.name.startswith(".lmnet-extract")]
    # skip-if-present: no request at all; --force downloads again
    n = len(server.log)
    assert dl.download_renderings(root, urls=[server.url + "/ShapeNetRendering.tgz"], **_kw()) is None
    assert len(server.log) == n
    assert dl.download_renderings(root, urls=[server.url + "/ShapeNetRendering.tgz"], force=True,
                                  **_kw()) == out
    assert len(server.log) == n + 1


def test_resume_across_calls_and_part_file(server, archives, tmp_path):
    tgz, _, _ = archives
    server.files = {"/r.tgz": tgz}
    server.cut["/r.tgz"] = 5000
    dest = tmp_path / "r.tgz"
    with pytest.raises(DownloadError, match="gave up after 1 attempts"):
        dl.http_download(server.url + "/r.tgz", dest, max_attempts=1, progress=False)
    part = tmp_path / "r.tgz.part"
    assert part.stat().st_size == 5000 and not dest.exists()
    dl.http_download(server.url + "/r.tgz", dest, max_attempts=1, progress=False)
    assert dest.read_bytes() == tgz and not part.exists()
    assert server.log[-1] == ("/r.tgz", "bytes=5000-")
    # a .part that is already complete: the server answers 416 and the file is accepted
    part.write_bytes(tgz)
    dest.unlink()
    dl.http_download(server.url + "/r.tgz", dest, max_attempts=1, progress=False)
    assert dest.read_bytes() == tgz


def test_server_without_range_restarts_and_checksum_mismatch(server, archives, tmp_path):
    tgz, _, _ = archives
    server.files = {"/r.tgz": tgz}
    server.ranges = False
    dest = tmp_path / "r.tgz"
    (tmp_path / "r.tgz.part").write_bytes(b"garbage" * 10)
    dl.http_download(server.url + "/r.tgz", dest, progress=False, retry_wait=0)
    assert dest.read_bytes() == tgz
    dest.unlink()
    with pytest.raises(DownloadError, match="sha256"):
        dl.http_download(server.url + "/r.tgz", dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not (tmp_path / "r.tgz.part").exists()
    with pytest.raises(DownloadError, match="every URL failed"):
        dl.download_first([server.url + "/a", server.url + "/b"], dest, progress=False)


def _tar(tmp_path, name, members):
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _tinfo(name, data=b"", type_=tarfile.REGTYPE, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.size = type_, linkname, len(data) if type_ == tarfile.REGTYPE else 0
    return ti, (data if type_ == tarfile.REGTYPE else None)


def _zip(tmp_path, name, members):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for n, data, mode in members:
            zi = zipfile.ZipInfo(n)
            if mode:
                zi.external_attr = mode << 16
            zf.writestr(zi, data)
    return path


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "hardlink", "device",
                                  "zip_dotdot", "zip_absolute", "zip_symlink"])
def test_malicious_archives_rejected(tmp_path, case):
    ok = _tinfo("ShapeNetRendering/03001627/a/rendering/00.png", b"x")
    evil_abs = str(tmp_path / "evil_abs")
    tars = {
        "dotdot": [ok, _tinfo("ShapeNetRendering/../../evil", b"pwned")],
        "absolute": [ok, _tinfo(evil_abs, b"pwned")],
        "symlink": [_tinfo("ShapeNetRendering/link", type_=tarfile.SYMTYPE, linkname=str(tmp_path)), ok],
        "hardlink": [ok, _tinfo("ShapeNetRendering/hard", type_=tarfile.LNKTYPE, linkname="/etc/passwd")],
        "device": [ok, _tinfo("ShapeNetRendering/dev", type_=tarfile.CHRTYPE)],
    }
    zips = {
        "zip_dotdot": [("ShapeNetRendering/x", b"x", 0), ("../evil", b"pwned", 0)],
        "zip_absolute": [("ShapeNetRendering/x", b"x", 0), (evil_abs, b"pwned", 0)],
        "zip_symlink": [("ShapeNetRendering/link", str(tmp_path).encode(), stat.S_IFLNK | 0o777)],
    }
    archive = _tar(tmp_path, "a.tgz", tars[case]) if case in tars else _zip(tmp_path, "a.zip", zips[case])
    root = tmp_path / "sandbox" / "data"
    root.mkdir(parents=True)
    before = sorted(p for p in tmp_path.rglob("*") if "sandbox" not in p.parts)
    with pytest.raises(DownloadError, match="refusing|outside|unsafe"):
        dl.install_archive(archive, root, dl.RENDERINGS)
    after = sorted(p for p in tmp_path.rglob("*") if "sandbox" not in p.parts)
    assert after == before  # nothing written outside the root
    assert list(root.iterdir()) == []  # scratch removed, nothing installed, no marker
    assert not os.path.exists(evil_abs) and not (tmp_path / "evil").exists()


def test_install_accepts_synset_top_level_and_merges(tmp_path, archives):
    _, zp, src = archives
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(io.BytesIO(zp)) as zin, zipfile.ZipFile(flat, "w") as zout:
        for info in zin.infolist():  # strip the ShapeNet_pointclouds/ prefix
            zout.writestr(info.filename.split("/", 1)[1], zin.read(info))
    root = tmp_path / "data"
    (root / "ShapeNet_pointclouds" / "02691156" / "keep").mkdir(parents=True)
    dl.install_archive(flat, root, dl.POINTCLOUDS)
    assert (root / "ShapeNet_pointclouds" / "02691156" / "keep").is_dir()  # merged, not wiped
    assert check_data(root, categories="chair", images=False).ok
    assert dl.is_installed(root, dl.POINTCLOUDS)
    junk = _zip(tmp_path, "junk.zip", [("readme.txt", b"hi", 0)])
    with pytest.raises(DownloadError, match="top-level ShapeNetRendering"):
        dl.install_archive(junk, tmp_path / "other", dl.RENDERINGS)


def test_gdrive_id_configuration_and_gdown_path(tmp_path, archives, monkeypatch):
    _, zp, _ = archives
    monkeypatch.delenv(dl.GDRIVE_ID_ENV, raising=False)
    assert dl.pointclouds_gdrive_id() == "1cfoe521iTgcB_7-g_98GYAqO553W8Y0g"  # the published file by default
    monkeypatch.setattr(dl, "POINTCLOUDS_GDRIVE_ID", None)
    with pytest.raises(DownloadError, match="--gdrive-id"):
        dl.download_pointclouds(tmp_path / "data")
    with pytest.raises(DownloadError, match="does not look like"):
        dl.pointclouds_gdrive_id("../x")
    monkeypatch.setenv(dl.GDRIVE_ID_ENV, "1cfoe521_fake_id_for_tests_0000")
    import gdown

    seen = {}

    def fake_download(id=None, output=None, **kw):  # gdown needs the network: stand in for it
        seen["id"], seen["resume"] = id, kw.get("resume")
        with open(output, "wb") as fh:
            fh.write(zp)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    out = dl.download_pointclouds(tmp_path / "data", progress=False)
    assert seen == {"id": "1cfoe521_fake_id_for_tests_0000", "resume": True}
    assert out == tmp_path / "data" / "ShapeNet_pointclouds"
    assert check_data(tmp_path / "data", images=False).ok


def test_cli_download(server, archives, tmp_path, capsys):
    tgz, zp, _ = archives
    server.files = {"/S.tgz": tgz, "/P.zip": zp}
    root = tmp_path / "data"
    args = ["download", "--root", str(root), "--what", "all", "--url", server.url + "/S.tgz",
            "--url", server.url + "/P.zip", "--attempts", "2"]
    assert cli_main(args) == 0
    assert "renderings: installed" in capsys.readouterr().out
    assert cli_main(args) == 0
    assert "already installed" in capsys.readouterr().out
    assert cli_main(["check-data", "--root", str(root)]) == 0
    assert cli_main(["download", "--root", str(tmp_path / "x"), "--what", "renderings",
                     "--url", server.url + "/nope.tgz", "--attempts", "1"]) == 2
