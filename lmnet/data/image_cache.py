"""On-disk cache of decoded, cropped renderings so that later epochs never decode a PNG.

One cache covers one synset and one list of models (a category of a split)::

    <cache_root>/<synset>-<n_models>-<hash of the model list>/
        images.npy   uint8 (n_models, 24, 128, 128, 4)  RGBA, already cropped (lmnet.data.inputs.crop)
        meta.npy     float32 (n_models, 24, 5)           rendering_metadata.txt, NaN where unusable
        index.json   models, stat fingerprint, bad views/metadata with the reason

Properties:

- **atomic**: it is built in a temporary folder beside the final one and renamed into place only
  when complete (``index.json`` written last), so a killed build leaves no "valid" cache;
- **invalidated when a file changes**: the fingerprint stores size and ``mtime_ns`` of every PNG and
  metadata file it was decoded from and of every model's ``rendering/`` folder (a file truncated,
  rewritten, added, removed or renamed changes it) and is compared on open; a stale cache is rebuilt
  and replaced (:func:`stat_fingerprint`);
- **DataLoader-worker safe**: readers open ``images.npy`` read-only with ``mmap_mode="r"`` lazily,
  once per process (the memmap is dropped when pickled, so workers never receive a copy);
- corrupt or missing files do not abort the build: they are recorded per view (or per model for
  metadata) and re-raised as :class:`~lmnet.errors.CorruptFileError` by :meth:`ImageCache.image`.

Size: 65,536 bytes per view, i.e. 1.5 MiB per model (~55 GB for the 35k official train models).
The build checks free disk space first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from lmnet.data import layout
from lmnet.data.inputs import CROP_NOTATION, CROP_SIZE, crop
from lmnet.errors import CorruptFileError, DataError

CACHE_VERSION = 1
CACHE_DIRNAME = ".lmnet_cache"
VIEW_BYTES = CROP_SIZE * CROP_SIZE * 4


def default_cache_root(root: str | Path) -> Path:
    return Path(root) / CACHE_DIRNAME


def _list_hash(synset: str, models: Sequence[str]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}\n{synset}\n".encode())
    h.update("\n".join(models).encode())
    return h.hexdigest()[:16]


def _files_of(root: str | Path, synset: str, model: str) -> list[Path]:
    """The files a model's cache row is decoded from: 24 PNGs and the metadata file."""
    return [layout.image_path(root, synset, model, v) for v in range(layout.N_VIEWS)] + \
        [layout.metadata_path(root, synset, model)]


def stat_fingerprint(root: str | Path, synset: str, models: Sequence[str]) -> str:
    """Hash of ``size`` and ``mtime_ns`` of every file a model's row is decoded from (``-1`` when
    missing) and of its ``rendering/`` folder (files added or removed).

    A file truncated or rewritten in place changes its size or mtime, which the folder's mtime
    alone does not see. Stat was chosen over a content hash because it costs a fraction of it
    (docs/reliability.md: ~0.1 vs ~1.3 ms per model with warm caches) while seeing every rewrite that
    goes through the file system's clock.
    """
    h = hashlib.sha256(b"fingerprint-v2\n")
    for m in models:
        for p in [layout.rendering_dir(root, synset, m), *_files_of(root, synset, m)]:
            try:
                st = os.stat(p)
                h.update(f"{m}/{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
            except FileNotFoundError:
                h.update(f"{m}/{p.name}:-1\n".encode())
    return h.hexdigest()[:32]


def cache_path(cache_root: str | Path, synset: str, models: Sequence[str]) -> Path:
    return Path(cache_root) / f"{synset}-{len(models)}-{_list_hash(synset, models)}"


class ImageCache:
    """Read side of one complete cache folder. Cheap to pickle (no array data travels)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        index_file = self.path / "index.json"
        try:
            index = json.loads(index_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise DataError(f"image cache {self.path} is incomplete or damaged ({exc})") from None
        if index.get("version") != CACHE_VERSION:
            raise DataError(f"image cache {self.path} has version {index.get('version')}, "
                            f"expected {CACHE_VERSION}")
        self.synset: str = index["synset"]
        self.models: list[str] = index["models"]
        self.fingerprint: str = index["fingerprint"]
        self.root: str = index["root"]
        self.row = {m: i for i, m in enumerate(self.models)}
        # "model/view" -> [path, reason]; "model" -> [path, reason] for metadata
        self.bad_views: dict[str, list[str]] = index["bad_views"]
        self.bad_meta: dict[str, list[str]] = index["bad_meta"]
        self._images = None
        self._meta = None
        self._pid = None

    # -- worker-safe lazy opening ---------------------------------------------------------------
    def _open(self) -> None:
        if self._images is None or self._pid != os.getpid():
            self._images = np.load(self.path / "images.npy", mmap_mode="r")
            self._meta = np.load(self.path / "meta.npy", mmap_mode="r")
            self._pid = os.getpid()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_images"] = state["_meta"] = state["_pid"] = None
        return state

    # -- queries ---------------------------------------------------------------------------------
    def view_error(self, model: str, view: int) -> CorruptFileError | None:
        """The error recorded at build time for this view (its metadata or its PNG), else None."""
        bad = self.bad_meta.get(model) or self.bad_views.get(f"{model}/{view}")
        return CorruptFileError(bad[0], bad[1]) if bad else None

    def good_views(self, model: str) -> list[int]:
        if model in self.bad_meta:
            return []
        return [v for v in range(layout.N_VIEWS) if f"{model}/{v}" not in self.bad_views]

    def image(self, model: str, view: int) -> np.ndarray:
        """``uint8 (128, 128, 4)`` cropped RGBA (a copy). Raises the recorded CorruptFileError."""
        bad = self.bad_views.get(f"{model}/{view}")
        if bad:
            raise CorruptFileError(bad[0], bad[1])
        self._open()
        return np.array(self._images[self.row[model], view])

    def metadata(self, model: str) -> np.ndarray:
        """``float32 (24, 5)``: azimuth, elevation, inplane, distance_ratio, fov (degrees/ratio)."""
        bad = self.bad_meta.get(model)
        if bad:
            raise CorruptFileError(bad[0], bad[1])
        self._open()
        return np.array(self._meta[self.row[model]])


def _decode_model(root: str, synset: str, model: str):
    """Decode one model: ``(images uint8 (24,128,128,4), meta float32 (24,5), bad_meta, bad_views)``."""
    images = np.zeros((layout.N_VIEWS, CROP_SIZE, CROP_SIZE, 4), np.uint8)
    meta = np.full((layout.N_VIEWS, 5), np.nan, np.float32)
    bad_meta = None
    bad_views: dict[int, list[str]] = {}
    try:
        metas = layout.parse_metadata(layout.metadata_path(root, synset, model))
        meta[:] = [[m.azimuth, m.elevation, m.inplane, m.distance_ratio, m.fov] for m in metas]
    except CorruptFileError as exc:
        bad_meta = [exc.path, exc.reason]
    for v in range(layout.N_VIEWS):
        try:
            images[v] = crop(layout.read_image(layout.image_path(root, synset, model, v)))
        except CorruptFileError as exc:
            bad_views[v] = [exc.path, exc.reason]
    return images, meta, bad_meta, bad_views


def open_cache(root: str | Path, synset: str, models: Sequence[str],
               cache_root: str | Path) -> ImageCache | None:
    """The valid cache for these models, or None (missing, incomplete or stale)."""
    path = cache_path(cache_root, synset, models)
    if not (path / "index.json").is_file():
        return None
    try:
        cache = ImageCache(path)
    except DataError:
        return None
    if cache.models != list(models) or cache.fingerprint != stat_fingerprint(root, synset, models):
        return None
    return cache


def build_cache(root: str | Path, synset: str, models: Sequence[str], cache_root: str | Path,
                progress: bool = True, workers: int = 0) -> ImageCache:
    """Decode every view of ``models`` into a new cache folder and move it into place atomically.

    Args:
        workers: decode threads (0 = in this thread).
    Returns:
        the opened :class:`ImageCache`.
    """
    models = list(models)
    root = str(root)
    final = cache_path(cache_root, synset, models)
    tmp = _scratch_folder(final, synset, len(models))
    fingerprint = stat_fingerprint(root, synset, models)
    try:
        bad_views, bad_meta = _decode_into(tmp, root, synset, models, progress, workers)
        index = {"version": CACHE_VERSION, "synset": synset, "root": str(Path(root).resolve()),
                 "models": models, "fingerprint": fingerprint, "crop": CROP_NOTATION,
                 "bad_views": bad_views, "bad_meta": bad_meta}
        with open(tmp / "index.json", "w") as fh:
            json.dump(index, fh)
            fh.flush()
            os.fsync(fh.fileno())
        _move_into_place(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ImageCache(final)


def _scratch_folder(final: Path, synset: str, n_models: int) -> Path:
    """A new empty folder beside ``final`` to build it in, once the disk has room for ``n_models``."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_builds(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-{os.getpid()}-", dir=final.parent))
    except OSError as exc:
        raise DataError(f"cannot create the image cache in {final.parent} ({exc}); pass a writable "
                        f"image_cache folder or image_cache=False") from None
    need = n_models * layout.N_VIEWS * VIEW_BYTES
    free = shutil.disk_usage(final.parent).free
    if need > free:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"image cache for {synset} needs {need / 2**30:.1f} GiB but only "
                        f"{free / 2**30:.1f} GiB are free in {final.parent}; pass another "
                        f"image_cache folder or image_cache=False")
    return tmp


def _decode_into(tmp: Path, root: str, synset: str, models: list[str], progress: bool, workers: int):
    """Decode ``models`` into ``tmp/images.npy`` and ``tmp/meta.npy`` → ``(bad_views, bad_meta)``
    as :class:`ImageCache` reads them from ``index.json``."""
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(len(models), layout.N_VIEWS, CROP_SIZE, CROP_SIZE, 4))
    meta = np.full((len(models), layout.N_VIEWS, 5), np.nan, np.float32)
    bad_views: dict[str, list[str]] = {}
    bad_meta: dict[str, list[str]] = {}

    def store(i, result):
        imgs, m, bm, bv = result
        images[i] = imgs
        meta[i] = m
        if bm:
            bad_meta[models[i]] = bm
        for v, err in bv.items():
            bad_views[f"{models[i]}/{v}"] = err

    bar = _progress(len(models), f"caching {synset}", progress)
    if workers and len(models) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            for i, result in enumerate(pool.map(lambda m: _decode_model(root, synset, m), models)):
                store(i, result)
                bar.update(1)
    else:
        for i, m in enumerate(models):
            store(i, _decode_model(root, synset, m))
            bar.update(1)
    bar.close()
    images.flush()
    del images
    np.save(tmp / "meta.npy", meta)
    return bad_views, bad_meta


def remove_dead_builds(final: Path) -> list[Path]:
    """Delete the scratch folders ``.tmp-<name>-<pid>-*`` / ``.stale-<name>-<pid>`` of ``final``
    whose building process is gone (killed mid-build); live builders' are left alone."""
    removed = []
    for p in final.parent.glob(f".*-{final.name}-*"):
        pid = p.name[len(".tmp-" if p.name.startswith(".tmp-") else ".stale-") + len(final.name) + 1:].split("-")[0]
        if not (p.name.startswith((".tmp-", ".stale-")) and pid.isdigit()) or _alive(int(pid)):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; a stale ``final`` is swapped out first and deleted."""
    if final.exists():
        stale = final.with_name(f".stale-{final.name}-{os.getpid()}")
        try:
            os.rename(final, stale)
        except FileNotFoundError:
            stale = None
        os.rename(tmp, final)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    else:
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "index.json").is_file():  # someone else finished first: theirs is fine
                raise


def open_or_build(root: str | Path, synset: str, models: Sequence[str], cache_root: str | Path,
                  progress: bool = True, workers: int | None = None) -> ImageCache:
    """Open the valid cache or build it (``workers=None`` → up to 4 decode threads)."""
    cache = open_cache(root, synset, models, cache_root)
    if cache is not None:
        return cache
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if len(models) > 8 else 0
    return build_cache(root, synset, models, cache_root, progress=progress, workers=workers)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="model", disable=not enabled or total < 2, leave=False)

