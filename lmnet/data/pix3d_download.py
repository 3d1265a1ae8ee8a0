"""Download and safely install Pix3D and 3D-LMNet's Pix3D point clouds (layout: :mod:`lmnet.data.pix3d`).

- ``pix3d``: the Pix3D release ``pix3d.zip`` (~3.6 GB) over HTTP(S) from a list of URLs (default:
  the MIT link), resumed and verified like the ShapeNet archives (:mod:`lmnet.data.download`: an
  archive is extracted only after its size / sha256 match its provenance record);
- ``pix3d-pointclouds``: 3D-LMNet's ``pix3d_pointclouds`` zip (~13 MB) from Google Drive with gdown
  (the file id :data:`POINTCLOUDS_GDRIVE_ID`, or another with ``gdrive_id``), or from HTTP mirrors.

Both are extracted with :func:`lmnet.data.download.safe_extract` (no absolute paths, ``..``, links
or devices) into a scratch folder inside the root, then merged into place; a marker file makes a
second call a no-op unless ``force``. Accepted archive shapes: the Pix3D files (``pix3d.json``,
``img/``, ``mask/``, ``model/``) at the top or inside one folder; the point clouds as a top-level
``pix3d_pointclouds/`` or directly the category folders.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from lmnet import atomic_io
from lmnet.data import pix3d
from lmnet.data.download import (Asset, _merge_move, discard_archive, download_first, fetch_gdrive, reuse_or_discard,
                                  safe_extract, start_download)
from lmnet.errors import DownloadError

PIX3D_URLS: tuple[str, ...] = ("http://pix3d.csail.mit.edu/data/pix3d.zip",)
POINTCLOUDS_GDRIVE_ID = "1RZakyBu9lPbG85SyconBn4sR8r2faInV"
MARKERS = {"pix3d": ".lmnet_pix3d_complete.json", "pix3d-pointclouds": ".lmnet_pix3d_pointclouds_complete.json"}
#: every Pix3D category (the evaluation uses chair, sofa, table)
ALL_CATEGORIES = ("bed", "bookcase", "chair", "desk", "misc", "sofa", "table", "tool", "wardrobe")
ARCHIVES = {"pix3d": "pix3d.zip", "pix3d-pointclouds": "pix3d_pointclouds.zip"}
# as download assets: the same verification, provenance records and litter cleaning as ShapeNet's
ASSETS = {what: Asset(what, pix3d.POINTCLOUD_DIR if what == "pix3d-pointclouds" else "", name)
          for what, name in ARCHIVES.items()}


def marker_path(root: str | Path, what: str) -> Path:
    base = Path(root) / (pix3d.POINTCLOUD_DIR if what == "pix3d-pointclouds" else "")
    return base / MARKERS[what]


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]


def install(archive: str | Path, root: str | Path, what: str, source: str = "") -> Path:
    """Extract ``archive`` (``what``: ``pix3d`` or ``pix3d-pointclouds``) safely and merge it into
    ``root``; returns the installed folder (``root`` or ``root/pix3d_pointclouds``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".lmnet-extract-{what}-", dir=root))
    try:
        n_files = safe_extract(archive, scratch)
        top = _visible(scratch)
        if what == "pix3d":
            src = scratch if (scratch / pix3d.INDEX_FILE).is_file() else (
                top[0] if len(top) == 1 and (top[0] / pix3d.INDEX_FILE).is_file() else None)
            if src is None:
                raise DownloadError(f"{archive}: no {pix3d.INDEX_FILE} at the top (or in one top folder); "
                                    f"found {sorted(p.name for p in top)[:10]}")
            dst = root
            children = _visible(src)
        else:
            if (scratch / pix3d.POINTCLOUD_DIR).is_dir():
                src = scratch / pix3d.POINTCLOUD_DIR
            elif top and all(p.is_dir() and p.name in ALL_CATEGORIES for p in top):
                src = scratch
            else:
                raise DownloadError(f"{archive}: expected a top-level {pix3d.POINTCLOUD_DIR}/ folder or category "
                                    f"folders, found {sorted(p.name for p in top)[:10]}")
            dst = root / pix3d.POINTCLOUD_DIR
            dst.mkdir(parents=True, exist_ok=True)
            children = _visible(src)
        marker = marker_path(root, what)
        if marker.exists():
            marker.unlink()
        for child in children:
            _merge_move(child, dst / child.name)
        atomic_io.write_json(marker, {"asset": what, "archive": Path(archive).name, "source": source,
                                      "files": n_files, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return dst
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def download(root: str | Path, what: str, *, urls: Sequence[str] | None = None, gdrive_id: str | None = None,
             force: bool = False, keep_archive: bool = False, size: int | None = None, sha256: str | None = None,
             **http_kw) -> Path | None:
    """Download and install ``what`` (``pix3d`` or ``pix3d-pointclouds``) into ``root``; returns the
    folder, or None when already installed (and not ``force``). ``http_kw`` go to
    :func:`lmnet.data.download.http_download` (``max_attempts``, ``timeout``, ``progress``…)."""
    if what not in MARKERS:
        raise DownloadError(f"unknown Pix3D asset {what!r}; expected one of {', '.join(MARKERS)}")
    root = Path(root)
    if marker_path(root, what).is_file() and not force:
        return None
    asset = ASSETS[what]
    archive = start_download(asset, root, force)
    if what == "pix3d" or urls:
        urls = list(urls or PIX3D_URLS)
        source = ", ".join(urls)
        if not reuse_or_discard(archive, urls, size, sha256):
            download_first(urls, archive, size=size, sha256=sha256, **http_kw)
    else:
        source = fetch_gdrive(gdrive_id or POINTCLOUDS_GDRIVE_ID, archive, size, sha256,
                              progress=http_kw.get("progress", True), max_attempts=http_kw.get("max_attempts", 5))
    out = install(archive, root, what, source=source)
    discard_archive(archive, keep_archive)
    return out
