"""Download and install CUB-200-2011 and Pascal3D+ cars in the layouts of :mod:`lmnet.data.cub` and
:mod:`lmnet.data.p3d` (``lmnet download --dataset cub|p3d``).

Each asset goes through the verified, resumable path of the ShapeNet and Pix3D downloads
(:mod:`lmnet.data.download`, :mod:`lmnet.data.fetch`): HTTP ``Range`` resume from a ``.part`` file
with a provenance record, size / sha256 checks, an archive from an earlier run reused only when its
record verifies, safe extraction (no absolute paths, ``..``, links or devices) into a scratch folder
inside the root, then a merge into place and a completion marker (a second call is a no-op unless
``force``). Where a published MD5 is known (:attr:`CmrAsset.md5`), an archive fetched from the
default URLs must match it too.

| asset | archive | installs | source |
|---|---|---|---|
| ``cub-images`` | ``CUB_200_2011.tgz`` | ``CUB_200_2011/`` | Caltech data site |
| ``cub-annotations`` | CMR ``cachedir.tar.gz`` | ``data/*_cub_cleaned.mat``, ``sfm/anno_*.mat`` | CMR's links |
| ``p3d-images`` | ``PASCAL3D+_release1.1.zip`` | ``PASCAL3D+_release1.1/`` | Stanford CVGL |
| ``p3d-annotations`` | CMR's Pascal3D+ SfM archive | ``data/car_*.mat``, ``sfm/car_*.mat`` | Google Drive |
| ``p3d-labels`` | ``p3d_labels.csv`` | ``p3d_labels.csv`` | 2dimageto3dmodel repository |

The URLs and their status (which are confirmed by public documentation, which are reported dead,
which are inferred) are listed in ``docs/textured.md``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lmnet import atomic_io
from lmnet.data import cub, p3d
from lmnet.data.download import (Asset, _merge_move, discard_archive, download_first, fetch_gdrive,
                                  remove_with_sidecar, reuse_or_discard, safe_extract, start_download)
from lmnet.errors import DownloadError


@dataclass(frozen=True)
class CmrAsset:
    """One downloadable file. ``kind``: ``"tree"`` (an archive whose folder ``target`` is merged into
    the root), ``"annotations"`` (an archive searched for the ``required`` ``data/`` and ``sfm/``
    files, whose two folders are merged into the root) or ``"file"`` (a file placed at ``target``)."""

    name: str
    dataset: str
    filename: str
    kind: str
    target: str
    required: tuple[str, ...]
    urls: tuple[str, ...] = ()
    gdrive_id: str | None = None
    md5: str | None = None   #: published MD5 of the file at ``urls``


ASSETS = {a.name: a for a in (
    CmrAsset("cub-images", "cub", "CUB_200_2011.tgz", "tree", cub.CUB_DIR, (cub.IMAGES_TXT,),
             urls=("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                   "http://www.vision.caltech.edu/visipedia-data/CUB-200-2011/CUB_200_2011.tgz"),
             md5="97eceeb196236b17998738112f37df78"),
    CmrAsset("cub-annotations", "cub", "cachedir.tar.gz", "annotations", "",
             tuple(f"data/{s}_cub_cleaned.mat" for s in cub.SPLITS) + tuple(f"sfm/anno_{s}.mat" for s in cub.SPLITS),
             urls=("https://people.eecs.berkeley.edu/~shubhtuls/cachedir/cmr/cachedir.tar.gz",
                   "https://people.eecs.berkeley.edu/~kanazawa/cachedir/cmr/cachedir.tar.gz"),
             md5="89842f8937a136bfdd7106e80f88d30f"),
    CmrAsset("p3d-images", "p3d", "PASCAL3D+_release1.1.zip", "tree", p3d.RELEASE_DIR, (p3d.IMAGES_DIR,),
             urls=("http://ftp.cs.stanford.edu/cs/cvgl/PASCAL3D+_release1.1.zip",)),
    CmrAsset("p3d-annotations", "p3d", "p3d_annotations.archive", "annotations", "",
             (*(f"data/car_{s}.mat" for s in p3d.SPLITS), p3d.KPS_FILE, *(f"sfm/car_{s}.mat" for s in p3d.SPLITS)),
             gdrive_id="1RbiCWu1ArD3ii-92o5xNkY6TzXBH0tgo"),
    CmrAsset("p3d-labels", "p3d", p3d.LABELS_FILE, "file", p3d.LABELS_FILE, (p3d.LABELS_FILE,),
             urls=("https://raw.githubusercontent.com/NikolaZubic/2dimageto3dmodel/"
                   "6b0e4f59fdb6ad3dcd6a8b5287d4d0771f8f5d70/code/datasets/p3d/p3d_labels.csv",)),
)}
#: ``lmnet download --dataset D --what W`` → asset names
PARTS = {"cub": {"images": ("cub-images",), "annotations": ("cub-annotations",)},
         "p3d": {"images": ("p3d-images",), "annotations": ("p3d-annotations",), "labels": ("p3d-labels",)}}


def assets_for(dataset: str, what: str) -> list[CmrAsset]:
    """The assets ``what`` (a part of :data:`PARTS`, or ``all``) names for ``dataset``."""
    if dataset not in PARTS:
        raise DownloadError(f"unknown dataset {dataset!r}; expected one of {', '.join(PARTS)}")
    parts = PARTS[dataset]
    if what == "all":
        return [ASSETS[n] for names in parts.values() for n in names]
    if what not in parts:
        raise DownloadError(f"--what {what} is not a part of {dataset}; expected all or one of {', '.join(parts)}")
    return [ASSETS[n] for n in parts[what]]


def marker_path(root: str | Path, asset: CmrAsset) -> Path:
    return Path(root) / f".lmnet_{asset.name}_complete.json"


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _tree_source(scratch: Path, asset: CmrAsset, archive: Path) -> Path:
    """The extracted ``asset.target`` folder: at the top of the archive or one folder down."""
    for cand in [scratch / asset.target, *(p / asset.target for p in sorted(scratch.iterdir()) if p.is_dir())]:
        if cand.is_dir() and all((cand.parent / r).exists() for r in asset.required):
            return cand
    raise DownloadError(f"{archive}: no {asset.target}/ folder holding {', '.join(asset.required)} at the top "
                        f"(or one folder down); found {sorted(p.name for p in scratch.iterdir())[:10]}")


def _annotation_base(scratch: Path, asset: CmrAsset, archive: Path) -> Path:
    """The extracted folder that holds every ``asset.required`` file (e.g. ``cachedir/cub``)."""
    first = asset.required[0]
    bases = sorted({p.parents[len(Path(first).parts) - 1] for p in scratch.rglob(Path(first).name)
                    if p.as_posix().endswith("/" + first)})
    for base in bases:
        if all((base / r).is_file() for r in asset.required):
            return base
    found = [p.relative_to(scratch).as_posix() for p in scratch.rglob("*.mat")][:10]
    raise DownloadError(f"{archive}: no folder holds all of {', '.join(asset.required)}; .mat files found: {found}")


def install(archive: str | Path, root: str | Path, asset: CmrAsset, source: str = "") -> Path:
    """Extract ``archive`` safely (or, for a ``"file"`` asset, check it) and put ``asset`` in place
    under ``root``; write its completion marker. Returns ``root``."""
    archive, root = Path(archive), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = marker_path(root, asset)
    if marker.exists():
        marker.unlink()
    if asset.kind == "file":
        _install_labels(archive, root / asset.target)
        n_files = 1
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f".lmnet-extract-{asset.name}-", dir=root))
        try:
            n_files = safe_extract(archive, scratch)
            if asset.kind == "tree":
                _merge_move(_tree_source(scratch, asset, archive), root / asset.target)
            else:
                base = _annotation_base(scratch, asset, archive)
                for folder in sorted({Path(r).parts[0] for r in asset.required}):
                    _merge_move(base / folder, root / folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    atomic_io.write_json(marker, {"asset": asset.name, "archive": archive.name, "source": source, "files": n_files,
                                  "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return root


def _install_labels(path: Path, dest: Path) -> None:
    """Copy a downloaded ``p3d_labels.csv`` to ``dest`` after checking its header."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DownloadError(f"{path}: not a UTF-8 text file, so not {p3d.LABELS_FILE}") from None
    if text.splitlines()[:1] != [p3d.LABELS_HEADER]:
        raise DownloadError(f"{path}: first line must be {p3d.LABELS_HEADER!r}; not the Pascal3D+ labels file")
    atomic_io.write_text(dest, text)


def _fetch(asset: CmrAsset, archive: Path, urls: Sequence[str] | None, gdrive_id: str | None,
           size: int | None, sha256: str | None, http_kw: dict) -> str:
    """Make ``archive`` the verified file of ``asset`` (HTTP ``urls``, else its defaults or its Google
    Drive id, or ``gdrive_id`` for an asset that has one); check the published MD5 when it came from
    the defaults. Returns the source."""
    if urls or not asset.gdrive_id:
        chosen = list(urls or asset.urls)
        if not reuse_or_discard(archive, chosen, size, sha256):
            download_first(chosen, archive, size=size, sha256=sha256, **http_kw)
        source = ", ".join(chosen)
    else:
        source = fetch_gdrive(gdrive_id or asset.gdrive_id, archive, size, sha256,
                              progress=http_kw.get("progress", True), max_attempts=http_kw.get("max_attempts", 5))
    if asset.md5 and not urls and sha256 is None:
        got = md5_file(archive)
        if got != asset.md5:
            remove_with_sidecar(archive)
            raise DownloadError(f"{archive}: MD5 {got} is not the published {asset.md5} of {asset.filename}; deleted")
    return source


def download(root: str | Path, name: str, *, urls: Sequence[str] | None = None, gdrive_id: str | None = None,
             force: bool = False, keep_archive: bool = False, size: int | None = None, sha256: str | None = None,
             **http_kw) -> Path | None:
    """Download and install the asset ``name`` (:data:`ASSETS`) into ``root``; returns ``root``, or
    None when it was installed already (and not ``force``). ``http_kw`` go to
    :func:`lmnet.data.fetch.http_download` (``max_attempts``, ``timeout``, ``progress``…)."""
    if name not in ASSETS:
        raise DownloadError(f"unknown asset {name!r}; expected one of {', '.join(ASSETS)}")
    asset, root = ASSETS[name], Path(root)
    if marker_path(root, asset).is_file() and not force:
        return None
    archive = start_download(Asset(asset.name, "", asset.filename), root, force)
    source = _fetch(asset, archive, urls, gdrive_id, size, sha256, http_kw)
    out = install(archive, root, asset, source=source)
    discard_archive(archive, keep_archive)
    return out
