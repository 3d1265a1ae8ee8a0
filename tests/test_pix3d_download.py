"""Pix3D downloads, offline: the release zip from a loopback HTTP server, the point clouds through a
stand-in for gdown (checked to receive the published Drive id), safe extraction, skip-if-installed."""

from __future__ import annotations

import io
import zipfile

import pytest

from lmnet.cli import main
from lmnet.data import pix3d_download
from lmnet.data.pix3d_check import check_pix3d
from lmnet.errors import DownloadError
from lmnet.synthetic.pix3d_synth import generate_pix3d


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    """(zip of the Pix3D files in one top folder, zip of pix3d_pointclouds/), from the synthetic set."""

    src = tmp_path_factory.mktemp("p3src") / "pix3d"
    generate_pix3d(src, categories=["chair"], n_models=1, n_photos=2)
    release, clouds = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(release, "w") as a, zipfile.ZipFile(clouds, "w") as b:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                rel = p.relative_to(src).as_posix()
                if rel.startswith("pix3d_pointclouds/"):
                    b.write(p, rel)
                else:
                    a.write(p, f"pix3d/{rel}")
    return release.getvalue(), clouds.getvalue()


def test_release_by_url_then_pointclouds_from_drive(server, zips, tmp_path, monkeypatch, capsys):
    release, clouds = zips
    server.files = {"/pix3d.zip": release}
    root = tmp_path / "data"
    args = ["download", "--what", "pix3d", "--root", str(root), "--url", f"{server.url}/pix3d.zip"]
    assert main(args) == 0
    assert "pix3d: installed in" in capsys.readouterr().out
    rep = check_pix3d(root, "chair")
    assert rep.ok and rep.gt_sampled == {"chair": 2} and not rep.gt_official  # no clouds yet: OBJ samples
    assert main(args) == 0 and "already installed" in capsys.readouterr().out

    import gdown

    seen = {}

    def fake_download(id=None, output=None, **kw):  # gdown needs the network: stand in for it
        seen["id"] = id
        with open(output, "wb") as fh:
            fh.write(clouds)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    assert main(["download", "--what", "pix3d-pointclouds", "--root", str(root)]) == 0
    assert seen["id"] == "1RZakyBu9lPbG85SyconBn4sR8r2faInV"
    assert check_pix3d(root, "chair").gt_official == {"chair": 2}
    assert not (root / ".lmnet_downloads").exists()


def test_unsafe_or_wrong_archives_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("pix3d.json", "[]")
        zf.writestr("../escaped.txt", "pwned")
    root = tmp_path / "sandbox"
    with pytest.raises(DownloadError, match="refusing|outside|unsafe"):
        pix3d_download.install(evil, root, "pix3d")
    assert not (tmp_path / "escaped.txt").exists() and list(root.iterdir()) == []
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(DownloadError, match="no pix3d.json"):
        pix3d_download.install(junk, tmp_path / "a", "pix3d")
    with pytest.raises(DownloadError, match="pix3d_pointclouds/"):
        pix3d_download.install(junk, tmp_path / "b", "pix3d-pointclouds")
