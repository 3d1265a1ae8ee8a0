"""Train / val / test split files.

Formats (both accepted everywhere a split file is read):

- **official JSON** (3D-LMNet): ``{"03001627": ["03001627/<model_id>", ...], ...}``;
- **plain text**: one ``synset/model_id`` per line (``#`` comments and blank lines ignored).

:func:`make_splits` is what ``create_split_files.py`` and ``lmnet synth`` use. It is seeded **per
category** (adding a category never reshuffles another), sorts ids before shuffling (the listing
order of a file system never matters) and never puts one model in two splits. Models listed in
``holdout`` (e.g. the official test set, which 3D-LMNet calls "val") go to ``test`` only, so an
autoencoder trained on ``train`` never sees a shape that the image network is evaluated on.

:func:`select_keys` is which models of a dataset root a split (or the whole root) names; it needs no
torch, so :func:`lmnet.data.check.check_data` and the readers stay torch-free.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from lmnet import atomic_io
from lmnet.config import parse_json_object
from lmnet.data import layout
from lmnet.data.categories import name_of, to_synsets
from lmnet.errors import ConfigError, DataError

log = logging.getLogger("lmnet.data")

SPLIT_NAMES = ("train", "val", "test")
Split = dict[str, list[str]]  # synset -> ["synset/model_id", ...]
log = logging.getLogger("lmnet.data")


def _key(synset: str, model: str) -> str:
    return f"{synset}/{model}"


def check_key(entry: str, where: str) -> str:
    """``entry`` if it is a clean ``"synset/model_id"`` (two non-empty parts, neither ``.`` nor ``..``,
    no backslash or NUL): a split entry becomes a path under the dataset root, so nothing else may
    reach outside ``<root>/<tree>/<synset>/<model>``. Raises :class:`DataError` naming ``where``."""
    parts = entry.split("/")
    if (len(parts) != 2 or any(p in ("", ".", "..") for p in parts)
            or any(c in entry for c in ("\\", "\x00"))):
        raise DataError(f"{where}: {entry!r} is not 'synset/model_id' (exactly one '/', no '..', no empty part)")
    return entry


def load_split(path: str | Path) -> Split:
    """Read a split file (official JSON or text list) into ``{synset: ["synset/model", ...]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"split file {path} is not UTF-8 text") from None
    out: Split = {}
    if path.suffix == ".json":
        data = parse_json_object(text, f"split file {path}", DataError,
                                 expected='{synset: ["synset/model", ...]}')
        for s, ms in data.items():
            if not isinstance(ms, list) or not all(isinstance(m, str) for m in ms):
                raise DataError(f"split file {path}: the value of {s!r} must be a list of \"synset/model\" "
                                f"strings, got {type(ms).__name__} {str(ms)[:60]!r}")
        items = [(s, m) for s, ms in data.items() for m in ms]
    else:
        items = []
        for ln in text.splitlines():
            ln = ln.split("#", 1)[0].strip()
            if ln:
                items.append((None, ln))
    for i, (synset, entry) in enumerate(items, 1):
        entry = str(entry).strip().strip("/")
        if "/" not in entry:
            if synset is None:
                raise DataError(f"split file {path}: entry {i} {entry!r} is not 'synset/model_id'")
            entry = _key(synset, entry)
        check_key(entry, f"split file {path}, entry {i}")
        s, _, m = entry.partition("/")
        if synset is not None and s != synset:
            raise DataError(f"split file {path}: {entry!r} listed under synset {synset}")
        out.setdefault(s, []).append(entry)
    return out


def write_split(path: str | Path, split: Mapping[str, Iterable[str]]) -> None:
    """Write ``split`` atomically; ``.json`` → official format, anything else → text lines."""
    path = Path(path)
    clean = {s: sorted(split[s]) for s in sorted(split)}
    if path.suffix == ".json":
        atomic_io.write_text(path, json.dumps(clean) + "\n")
    else:
        atomic_io.write_text(path, "".join(f"{e}\n" for s in clean for e in clean[s]))


def split_keys(split: Mapping[str, Iterable[str]]) -> set[str]:
    return {e for entries in split.values() for e in entries}


def _counts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    total = sum(ratios)
    n_val = int(math.floor(n * ratios[1] / total + 0.5))
    n_test = int(math.floor(n * ratios[2] / total + 0.5))
    n_val = min(n_val, n)
    n_test = min(n_test, n - n_val)
    return n - n_val - n_test, n_val, n_test


#: train / val / test proportions of a split when none are given (per category, normalised)
DEFAULT_RATIOS = (0.6, 0.2, 0.2)


def check_ratios(ratios) -> tuple[float, float, float]:
    """``ratios`` as a train/val/test float triple, or a :class:`DataError` when they are not three
    finite non-negative numbers with a positive sum."""
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or not all(0 <= r < math.inf for r in ratios) or sum(ratios) <= 0:
        raise DataError(f"ratios must be three finite non-negative numbers with a positive sum, got {ratios}")
    return ratios


def make_splits(models: Mapping[str, Iterable[str]], ratios=DEFAULT_RATIOS, seed: int = 0,
                holdout: Iterable[str] | None = None) -> dict[str, Split]:
    """Split models per category.

    Args:
        models: ``{synset: [model_id or "synset/model_id", ...]}``.
        ratios: train/val/test proportions (normalised; any of them may be 0).
        seed: the permutation of category ``s`` uses ``numpy.random.default_rng([seed, int(s)])``.
        holdout: ``"synset/model_id"`` entries forced into ``test`` and excluded from train/val.
    Returns:
        ``{"train": Split, "val": Split, "test": Split}``, pairwise disjoint, deterministic.
    """
    ratios = check_ratios(ratios)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a whole number >= 0, got {seed!r}")
    held = set(holdout or ())
    out: dict[str, Split] = {name: {} for name in SPLIT_NAMES}
    for synset in sorted(models):
        keys = sorted({e if "/" in e else _key(synset, e) for e in models[synset]})
        forced = [k for k in keys if k in held]
        free = [k for k in keys if k not in held]
        rng = np.random.default_rng([seed, int(synset) if synset.isdigit() else sum(map(ord, synset))])
        order = [free[i] for i in rng.permutation(len(free))]
        n_train, n_val, _ = _counts(len(order), ratios)
        parts = {
            "train": order[:n_train],
            "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:] + forced,
        }
        for name, entries in parts.items():
            if entries:
                out[name][synset] = sorted(entries)
    _warn_empty(out, models, ratios)
    return out


def min_models(ratios: tuple[float, float, float]) -> int:
    """The fewest models of a category for which every split with a ratio > 0 gets at least one."""
    wanted = [r > 0 for r in ratios]
    return next(n for n in range(1, 10_000) if all(c > 0 or not w for c, w in zip(_counts(n, ratios), wanted)))


def _warn_empty(out: Mapping[str, Split], models: Mapping[str, Iterable[str]], ratios) -> None:
    """A warning naming each split that was asked for (ratio > 0) but got no model of a category, and
    how many models per category every split needs: an empty val or test split breaks training or
    evaluation later, far from here."""
    for name, ratio in zip(SPLIT_NAMES, ratios):
        empty = [s for s in sorted(models) if ratio > 0 and s not in out[name]]
        if empty:
            counts = ", ".join(f"{s} ({len(set(models[s]))} models: " +
                               ", ".join(f"{n} {len(out[n].get(s, []))}" for n in SPLIT_NAMES) + ")" for s in empty)
            log.warning("split %r (ratio %g) has no model of %s; with ratios %s every split needs at least %d "
                        "models per category", name, ratio, counts, "/".join(f"{r:g}" for r in ratios),
                        min_models(ratios))


def assert_disjoint(splits: Mapping[str, Split]) -> None:
    """Raise :class:`DataError` naming a model that appears in two splits."""
    seen: dict[str, str] = {}
    for name, split in splits.items():
        for key in split_keys(split):
            if key in seen:
                raise DataError(f"model {key} is in both the {seen[key]!r} and {name!r} splits")
            seen[key] = name


def write_splits(out_dir: str | Path, splits: Mapping[str, Split], prefix: str = "lmnet",
                 fmt: str = "json") -> dict[str, Path]:
    """Write ``<prefix>_{train,val,test}_models.{json|txt}`` into ``out_dir``; return the paths."""
    assert_disjoint(splits)
    paths = {}
    for name, split in splits.items():
        p = Path(out_dir) / f"{prefix}_{name}_models.{fmt}"
        write_split(p, split)
        paths[name] = p
    return paths


def select_keys(root: str | Path, split=None, categories=None, point_clouds_only: bool = False) -> list[str]:
    """The sorted ``"synset/model"`` keys of ``split`` (None → everything on disk) in ``categories``.

    With ``point_clouds_only`` and no split, only models of ``ShapeNet_pointclouds/`` are listed.
    """
    wanted = to_synsets(categories)
    if split is None:
        if point_clouds_only:
            base = Path(root) / layout.POINTCLOUD_DIR
            synsets = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
            listing = {s: sorted(p.name for p in (base / s).iterdir() if p.is_dir()) for s in synsets}
        else:
            listing = {s: layout.list_models(root, s) for s in layout.list_synsets(root)}
        keys = [f"{s}/{m}" for s, ms in listing.items() for m in ms]
    else:
        if isinstance(split, (str, Path)):
            split = load_split(split)
        if not isinstance(split, Mapping):
            raise ConfigError(f"split must be None, a split file path or a dict {{synset: [keys]}}, "
                              f"got {type(split).__name__}")
        for s, ks in split.items():
            if not isinstance(ks, (list, tuple)):
                raise ConfigError(f"split: the value of {s!r} must be a list of keys, got {type(ks).__name__}")
        keys = [check_key(str(k) if "/" in str(k) else f"{s}/{k}", "split")
                for s, ks in split.items() for k in ks]
    if wanted is not None:
        keys = [k for k in keys if k.split("/", 1)[0] in wanted]
        present = {k.split("/", 1)[0] for k in keys}
        missing = [s for s in wanted if s not in present]
        if missing and keys:
            log.warning("categories %s have no models under %s%s; using %s",
                        ", ".join(f"{name_of(s)} ({s})" for s in missing), root,
                        "" if split is None else f" in split {describe_split(split)}",
                        ", ".join(name_of(s) for s in sorted(present)))
    return sorted(set(keys))


def describe_split(split) -> str:
    """``split`` (None, a split file path or a dict) in a few words, for messages."""
    if split is None or isinstance(split, (str, Path)):
        return repr(str(split) if split is not None else None)
    return f"<dict of {sum(len(v) for v in split.values())} models>"
