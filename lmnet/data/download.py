"""Download and safely install the two ShapeNet archives (docs/formats.md#downloads).

- renderings: ``ShapeNetRendering.tgz`` over HTTP(S) from a list of URLs tried in turn (the Stanford
  cvgl link first; add mirrors with ``urls``), resumed with HTTP ``Range`` from a ``.part`` file;
- point clouds: ``ShapeNet_pointclouds.zip`` from Google Drive via gdown (the file id is configured,
  see :func:`pointclouds_gdrive_id`) or from HTTP mirrors like the renderings.

Both then go through the same path: :func:`install_archive` extracts into a temporary folder inside
``root`` (:func:`safe_extract` refuses absolute paths, ``..``, symlinks, hard links and device files,
archives over the size and compression-ratio limits, damaged members; tar members also pass
tarfile's ``data`` filter), moves the tree into place and writes a marker
file; a marked tree is skipped next time unless ``force``. Archives live in
``<root>/.lmnet_downloads/`` and are deleted after a successful install unless ``keep_archive``.

Verification: an archive is extracted only after its size and sha256 match its provenance record
(:mod:`lmnet.data.fetch`: which URL or Google Drive id it came from, what was expected) and the
expected ``size`` / ``sha256`` when given — also an archive left in ``.lmnet_downloads/`` by an
earlier run, which is otherwise deleted and downloaded again. ``force`` also drops any partial
file. Scratch folders and unrecorded partial files of an interrupted run are removed on the next.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from lmnet import atomic_io
from lmnet.data import layout
from lmnet.data.fetch import (FORCE_HINT, SIDECAR_SUFFIX, USER_AGENT, download_first, http_download,  # noqa: F401
                              read_sidecar, record_file, remove_with_sidecar, sha256_file, sidecar_path, verify_file)
from lmnet.envvars import MAX_COMPRESSION_RATIO, MAX_EXTRACT_BYTES
from lmnet.errors import DownloadError

log = logging.getLogger("lmnet.data")

# the original 3D-R2N2 link (dead for many users), then the Stanford mirror of the same file
DEFAULT_RENDERING_URLS: tuple[str, ...] = ("http://cvgl.stanford.edu/data2/ShapeNetRendering.tgz",
                                           "http://ftp.cs.stanford.edu/cs/cvgl/ShapeNetRendering.tgz")
# The 3D-LMNet point-cloud zip on Google Drive (docs/formats.md#downloads); --gdrive-id or the
# environment variable below choose another copy.
POINTCLOUDS_GDRIVE_ID_PREFIX = "1cfoe521"
POINTCLOUDS_GDRIVE_ID: str | None = "1cfoe521iTgcB_7-g_98GYAqO553W8Y0g"
GDRIVE_ID_ENV = "LMNET_POINTCLOUDS_GDRIVE_ID"
DOWNLOAD_DIRNAME = ".lmnet_downloads"
#: members smaller than this are exempt from the compression-ratio limit (small files of zeros or
#: text compress any amount and cannot hurt)
RATIO_MIN_BYTES = 1 << 20
MARKER_NAME = ".lmnet_download_complete.json"


@dataclass(frozen=True)
class Asset:
    """One downloadable archive and the top-level folder it installs under ``root``."""

    name: str
    top: str
    filename: str
    size: int | None = None      # bytes, when known
    sha256: str | None = None    # hex digest, when known


RENDERINGS = Asset("renderings", layout.RENDERING_DIR, "ShapeNetRendering.tgz")
POINTCLOUDS = Asset("pointclouds", layout.POINTCLOUD_DIR, "ShapeNet_pointclouds.zip")
ASSETS = {a.name: a for a in (RENDERINGS, POINTCLOUDS)}


# --------------------------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------------------------
def _check_name(name: str, archive: Path) -> None:
    n = name.replace("\\", "/")
    if not n or n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise DownloadError(f"{archive}: refusing absolute member path {name!r}")
    if ".." in PurePosixPath(n).parts:
        raise DownloadError(f"{archive}: refusing member path with '..': {name!r}")
    if "\x00" in n:
        raise DownloadError(f"{archive}: refusing member path with a NUL byte: {name!r}")


def _inside(path: Path, target: Path) -> bool:
    try:
        path.resolve().relative_to(target.resolve())
        return True
    except ValueError:
        return False


def _shown(name: str) -> str:
    """A member name for a one-line message: at most 80 characters."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


class _Budget:
    """The extraction limits of one archive (:mod:`lmnet.envvars`): the bytes it expands to in all
    (``LMNET_MAX_EXTRACT_BYTES``) and how much a member expands (``LMNET_MAX_COMPRESSION_RATIO``;
    members under :data:`RATIO_MIN_BYTES` are exempt, for a tar the whole archive counts)."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.total = 0

    def add(self, size: int) -> None:
        self.total += int(size)
        MAX_EXTRACT_BYTES.check(self.total, f"{self.archive}: extracted size (so far)", error=DownloadError)

    def ratio(self, what: str, size: int, compressed: int) -> None:
        if size >= RATIO_MIN_BYTES:
            MAX_COMPRESSION_RATIO.check(math.ceil(size / max(int(compressed), 1)),
                                        f"{self.archive}: {what} expands {int(compressed):,} -> {int(size):,} bytes",
                                        error=DownloadError)


def _check_zip_member(info: zipfile.ZipInfo, archive: Path, target: Path, budget: _Budget) -> Path:
    """Where the zip member ``info`` goes under ``target``, after the checks of :func:`safe_extract`."""
    _check_name(info.filename, archive)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DownloadError(f"{archive}: refusing symlink member {_shown(info.filename)}")
    if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DownloadError(f"{archive}: refusing special file member {_shown(info.filename)}")
    out = target / info.filename.replace("\\", "/")
    if not _inside(out, target):
        raise DownloadError(f"{archive}: member {_shown(info.filename)} would land outside {target}")
    budget.ratio(f"member {_shown(info.filename)}", info.file_size, info.compress_size)
    budget.add(info.file_size)
    return out


def _extract_zip(archive: Path, target: Path) -> int:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DownloadError(f"{archive}: damaged zip archive ({exc})") from None
    n_files, budget = 0, _Budget(archive)
    with zf:
        members = [(info, _check_zip_member(info, archive, target, budget)) for info in zf.infolist()]
        for info, out in members:  # every member checked (names, kinds, sizes) before anything is written
            try:
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if not _inside(out.parent, target) or out.is_symlink():
                    raise DownloadError(f"{archive}: member {_shown(info.filename)} would land outside {target}")
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DownloadError(f"{archive}: damaged member {_shown(info.filename)} ({exc})") from None
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise DownloadError(f"{archive}: cannot extract member {_shown(info.filename)}: a file and a "
                                    "folder of the archive have the same name") from None
            except OSError as exc:  # a name too long for the file system, a full disk, ...
                raise DownloadError(f"{archive}: cannot extract member {_shown(info.filename)} "
                                    f"({exc.strerror or exc})") from None
            n_files += 1
    return n_files


def _extract_tar(archive: Path, target: Path) -> int:
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable tar or zip archive ({exc})") from None
    n_files, budget, packed = 0, _Budget(archive), archive.stat().st_size
    with tf:
        try:
            for member in tf:
                _check_name(member.name, archive)
                if member.issym() or member.islnk():
                    raise DownloadError(f"{archive}: refusing link member {_shown(member.name)} -> "
                                        f"{member.linkname!r}")
                if not (member.isfile() or member.isdir()):
                    raise DownloadError(f"{archive}: refusing special file member {_shown(member.name)}")
                budget.add(member.size)
                budget.ratio("the archive", budget.total, packed)
                tf.extract(member, target, filter="data")
                n_files += member.isfile()
        except tarfile.FilterError as exc:
            raise DownloadError(f"{archive}: unsafe member refused by tarfile's data filter: {exc}") from None
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise DownloadError(f"{archive}: damaged archive ({exc})") from None
        except OSError as exc:
            raise DownloadError(f"{archive}: damaged archive or a member that cannot be written "
                                f"({exc.strerror or exc})") from None
    return n_files


def _remove_new(target: Path, before: set[str] | None, top: Path) -> None:
    """Undo a failed extraction: remove ``top`` (the first folder it created) or, when ``target``
    existed (``before``: its entries then), the entries added since."""
    if before is None:
        shutil.rmtree(top, ignore_errors=True)
        return
    for name in set(os.listdir(target)) - before:
        p = target / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def safe_extract(archive: str | Path, target: str | Path) -> int:
    """Extract a ``.tgz``/``.tar*`` or ``.zip`` into ``target``; return the number of files.

    Refuses (with :class:`DownloadError`, one line naming the archive and the member) absolute
    paths, ``..`` components, symlinks, hard links, device files and FIFOs, an archive that expands
    to more than ``LMNET_MAX_EXTRACT_BYTES`` (default 64 GiB) or a member over 1 MiB that expands
    more than ``LMNET_MAX_COMPRESSION_RATIO`` times (default 200; a tar counts as one member), a
    damaged member (bad CRC, truncated data) and a member that cannot be written (a name too long
    for the file system, a file where a folder goes). Tar members also pass tarfile's ``data``
    filter; zip members are all checked before the first is written, then written one by one after
    checking that the resolved path stays inside ``target``. On any failure (Ctrl-C included) what
    was extracted is removed: ``target`` itself when this call created it, else the entries it added.
    """
    archive, target = Path(archive), Path(target)
    top = target
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    before = set(os.listdir(target)) if target.is_dir() else None
    target.mkdir(parents=True, exist_ok=True)
    try:
        return _extract_zip(archive, target) if zipfile.is_zipfile(archive) else _extract_tar(archive, target)
    except BaseException:
        _remove_new(target, before, top)
        raise


# --------------------------------------------------------------------------------------------
# Install (shared by every source)
# --------------------------------------------------------------------------------------------
def marker_path(root: str | Path, asset: Asset) -> Path:
    return Path(root) / asset.top / MARKER_NAME


def is_installed(root: str | Path, asset: Asset) -> bool:
    return marker_path(root, asset).is_file()


def _merge_move(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; where ``dst`` exists, merge folders and replace files."""
    if not dst.exists():
        os.replace(src, dst)
        return
    if src.is_dir() and dst.is_dir() and not dst.is_symlink():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        return
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(src, dst)


def install_archive(archive: str | Path, root: str | Path, asset: Asset, source: str = "") -> Path:
    """Extract ``archive`` into a scratch folder inside ``root``, move ``<asset.top>/`` into place
    and write the completion marker. Accepts archives whose top level is ``<asset.top>/`` or
    directly the synset folders. Returns ``root / asset.top``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".lmnet-extract-{asset.name}-", dir=root))
    try:
        n_files = safe_extract(archive, scratch)
        entries = [p for p in scratch.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if (scratch / asset.top).is_dir():
            src = scratch / asset.top
        elif entries and all(p.is_dir() and re.fullmatch(r"\d{8}", p.name) for p in entries):
            src = scratch
        else:
            raise DownloadError(f"{archive}: expected a top-level {asset.top}/ folder (or synset folders), "
                                f"found {sorted(p.name for p in entries)[:10]}")
        dst = root / asset.top
        marker = marker_path(root, asset)
        if marker.exists():
            marker.unlink()
        _merge_move(src, dst)

        atomic_io.write_json(marker, {"asset": asset.name, "archive": Path(archive).name, "source": source,
                                      "files": n_files, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return dst
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def discard_archive(archive: Path, keep_archive: bool = False) -> None:
    """After a successful install: delete ``archive`` and its record (unless ``keep_archive``) and
    the download folder when that leaves it empty."""
    if keep_archive:
        return
    remove_with_sidecar(archive)
    try:
        archive.parent.rmdir()
    except OSError:
        pass


def _finish(archive: Path, root: Path, asset: Asset, source: str, keep_archive: bool) -> Path:
    out = install_archive(archive, root, asset, source=source)
    discard_archive(archive, keep_archive)
    return out


def download_renderings(root: str | Path, urls: Sequence[str] | None = None, force: bool = False,
                        keep_archive: bool = False, size: int | None = None, sha256: str | None = None,
                        **http_kw) -> Path | None:
    """Download and install ``ShapeNetRendering/`` from the first working URL.

    Returns the installed folder, or None when it was already installed (and not ``force``).
    ``http_kw`` go to :func:`http_download` (``max_attempts``, ``timeout``, ``progress``…).
    """
    return _download_http(RENDERINGS, root, list(urls or DEFAULT_RENDERING_URLS), force, keep_archive,
                          size, sha256, **http_kw)


def clean_litter(root: str | Path, asset: Asset) -> list[Path]:
    """Remove what an interrupted earlier run of ``asset`` left behind: ``<root>/.lmnet-extract-<name>-*``
    scratch folders, and in ``<root>/.lmnet_downloads/`` a ``.part`` without a provenance record,
    records without their file and atomic-write temporaries. Returns the removed paths."""
    root = Path(root)
    removed = []
    for p in root.glob(f".lmnet-extract-{asset.name}-*") if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    ddir = root / DOWNLOAD_DIRNAME
    for p in ddir.iterdir() if ddir.is_dir() else []:
        if not p.name.startswith((asset.filename, f".{asset.filename}")):
            continue
        stray_tmp = p.name.startswith(".") and p.name.endswith(".tmp")
        orphan_record = p.name.endswith(SIDECAR_SUFFIX) and not p.with_name(p.name[:-len(SIDECAR_SUFFIX)]).exists()
        unrecorded_part = p.name == f"{asset.filename}.part" and read_sidecar(p) is None  # gdown's are its own
        if stray_tmp or orphan_record or unrecorded_part:
            p.unlink()
            removed.append(p)
    if removed:
        log.warning("removed %d leftover file(s) of an interrupted download/extraction: %s", len(removed),
                    ", ".join(str(p) for p in removed[:5]))
    return removed


def reuse_or_discard(archive: Path, sources: Sequence[str], size: int | None, sha256: str | None) -> bool:
    """True when a finished ``archive`` from an earlier run is verified for this request; otherwise
    it is deleted (with its record) and False."""
    if not archive.exists():
        return False
    reason = verify_file(archive, sources, size, sha256)
    if reason is None:
        return True
    log.warning("discarding %s from an earlier run: %s; downloading it again", archive, reason)
    remove_with_sidecar(archive)
    return False


def start_download(asset: Asset, root: Path, force: bool) -> Path:
    clean_litter(root, asset)
    archive = root / DOWNLOAD_DIRNAME / asset.filename
    if force:  # from scratch: no earlier archive and no partial file
        remove_with_sidecar(archive)
        for part in archive.parent.glob(f"{glob.escape(archive.name)}*.part"):  # ours and gdown's
            remove_with_sidecar(part)
    return archive


def _download_http(asset, root, urls, force, keep_archive, size, sha256, **http_kw):
    root = Path(root)
    if is_installed(root, asset) and not force:
        return None
    archive = start_download(asset, root, force)
    size, sha256 = size or asset.size, sha256 or asset.sha256
    if not reuse_or_discard(archive, urls, size, sha256):
        download_first(urls, archive, size=size, sha256=sha256, **http_kw)
    return _finish(archive, root, asset, ", ".join(urls), keep_archive)


def pointclouds_gdrive_id(explicit: str | None = None) -> str:
    """The Google Drive id: ``explicit``, else ``$LMNET_POINTCLOUDS_GDRIVE_ID``, else the module
    constant; raises :class:`DownloadError` with instructions when none is set."""
    gid = explicit or os.environ.get(GDRIVE_ID_ENV) or POINTCLOUDS_GDRIVE_ID
    if not gid:
        raise DownloadError(
            f"the Google Drive id of the 3D-LMNet point-cloud zip is not configured (it starts with "
            f"{POINTCLOUDS_GDRIVE_ID_PREFIX!r}). Pass --gdrive-id ID or set {GDRIVE_ID_ENV}; "
            f"or give an HTTP mirror with --url")
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,}", gid):
        raise DownloadError(f"{gid!r} does not look like a Google Drive file id")
    return gid


def download_pointclouds(root: str | Path, gdrive_id: str | None = None, urls: Sequence[str] | None = None,
                         force: bool = False, keep_archive: bool = False, size: int | None = None,
                         sha256: str | None = None, **http_kw) -> Path | None:
    """Download and install ``ShapeNet_pointclouds/``: from HTTP ``urls`` when given, else from
    Google Drive with gdown. Returns the folder, or None when already installed."""
    if urls:
        return _download_http(POINTCLOUDS, root, list(urls), force, keep_archive, size, sha256, **http_kw)
    root = Path(root)
    if is_installed(root, POINTCLOUDS) and not force:
        return None
    gid = pointclouds_gdrive_id(gdrive_id)
    archive = start_download(POINTCLOUDS, root, force)
    source = fetch_gdrive(gid, archive, size, sha256, progress=http_kw.get("progress", True),
                          max_attempts=http_kw.get("max_attempts", 5))
    return _finish(archive, root, POINTCLOUDS, source, keep_archive)


def fetch_gdrive(gid: str, archive: Path, size: int | None = None, sha256: str | None = None, *,
                 progress: bool = True, max_attempts: int = 5) -> str:
    """Make ``archive`` the verified Google Drive file ``gid``: an earlier finished download of the
    same id (and expected size / sha256) is reused, anything else fetched with gdown (resumable),
    recorded (:func:`record_file`) and checked. Returns the source string ``"gdrive:<id>"``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    source = f"gdrive:{gid}"
    if reuse_or_discard(archive, [source], size, sha256):
        return source
    import gdown

    try:
        out = gdown.download(id=gid, output=str(archive), quiet=not progress, resume=True, retries=max_attempts - 1)
    except Exception as exc:  # gdown raises its own and requests' exception types
        raise DownloadError(f"Google Drive download of {gid} failed: {exc}; {FORCE_HINT}") from None
    if not out or not archive.exists():
        raise DownloadError(f"Google Drive download of {gid} failed (no file written); {FORCE_HINT}")
    rec = record_file(archive, source, size, sha256)
    bad = (size is not None and rec["size"] != size) or (sha256 and rec["sha256"] != sha256.lower())
    if bad:
        remove_with_sidecar(archive)
        raise DownloadError(f"{archive}: got {rec['size']} bytes with sha256 {rec['sha256']}, expected "
                            f"{size if size is not None else 'any size'} / {sha256 or 'any sha256'}; deleted")
    return source
