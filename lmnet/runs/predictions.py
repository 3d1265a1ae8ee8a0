"""The inference output folder (``lmnet infer --out DIR``): its writer and its reader.

Output layout (``--out DIR``)::

    DIR/index.csv              one row per input image: id, source, synset, model_id, view,
                               image, gt, pred, samples   (file names relative to DIR; empty when absent)
    DIR/<id>.image.npy         float32 (3, 128, 128): the exact network input, RGB 0–255 in the run's
                               input convention (image_input; lmnet.data.inputs.composite)
    DIR/<id>.input.png         the same network input as a picture (user images only): what the network saw
    DIR/<id>.gt.npy            float32 (1024, 3): ground truth pointcloud_1024 (dataset inputs only)
    DIR/<id>.pred.npy          float32 (2048, 3): the deterministic prediction (μ for Variant II)
    DIR/<id>.samples.npy       float32 (K, 2048, 3): K samples z ~ N(μ, σ²) (Variant II, --samples K)
    DIR/<id>.colors.npy        uint8 (2048, 3): RGB of each predicted point from the input image (--color)
    DIR/<id>.pred.ply          the prediction with those colours (--color; .pred.glb with --format glb)

``<id>`` is a running 6-digit number (``000000``, ``000001``, …) in input order. Point clouds are
in the 3D-LMNet canonical frame (+x down, unit bounding-box diagonal), as the training data.
Every file is written atomically; ``index.csv`` is written last. While the files are written,
``DIR/.lmnet-infer-partial`` marks the folder as lmnet's (an interrupted run leaves it, and no
``index.csv``); it is removed once ``index.csv`` is there.

Outputs are never mixed (:mod:`lmnet.runs.guard`): a non-empty ``DIR`` is refused unless
``overwrite``; with it, a folder without lmnet's marker (``index.csv`` or the partial marker) is
refused, and so is one that also holds other files (nothing of the user's is deleted). Otherwise
the previous ``index.csv`` goes first and then every file this layout names. The caller holds the
folder's lock (:func:`lmnet.runs.guard.lock_folder`) from :func:`check_out` to
:meth:`PredictionWriter.close`: a second writer is refused.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lmnet import atomic_io
from lmnet.colour_files import COLOURED_SUFFIXES, write_coloured
from lmnet.data.layout import load_npy
from lmnet.errors import ConfigError, DataError, NonFiniteError
from lmnet.runs import guard

INDEX_FILE = "index.csv"
PARTIAL_MARKER = ".lmnet-infer-partial"
INDEX_FIELDS = ("id", "source", "synset", "model_id", "view", "image", "gt", "pred", "samples")


def check_finite(preds: np.ndarray, keys: Sequence[str], source: str) -> None:
    """Raise :class:`NonFiniteError` naming the first input whose prediction ``(B, N, 3)`` is not finite."""
    bad = ~np.isfinite(preds.reshape(len(preds), -1)).all(axis=1)
    if bad.any():
        raise NonFiniteError(f"{source} predicted NaN or infinite points for {keys[int(np.argmax(bad))]} "
                             f"({int(bad.sum())} of {len(preds)} in this batch): its weights are not finite "
                             f"(a diverged training run?)")


# the files of both layouts: point clouds (this module) and textured meshes (lmnet.infer_textured)
_OUTPUT_NAME = re.compile(r"^(index\.csv|\.lmnet-infer-partial|\d{6}\.(image|gt|pred|samples|colors)\.npy"
                          r"|\d{6}\.pred\.(ply|glb)"
                          r"|\d{6}\.(obj|mtl|png|input\.png|render\.png|turntable\.gif)|\.[^/]+\.tmp)$")


def check_out(out: str | Path, overwrite: bool = False) -> list[Path]:
    """The previous outputs in ``out`` that ``overwrite`` replaces; raises ConfigError when ``out``
    cannot be used (rules in the module docstring). Deletes nothing."""
    out = guard.require_folder_path(out, "--out")
    present = [out / name for name in guard.entries(out)]
    if present and not overwrite:
        raise ConfigError(f"--out {out} is not empty ({len(present)} entries, e.g. {present[0].name}): "
                          f"choose another folder, or pass --overwrite to replace the previous outputs")
    if present and not ((out / INDEX_FILE).is_file() or (out / PARTIAL_MARKER).is_file()):
        raise ConfigError(f"--out {out} is not empty and is not an lmnet infer output (no {INDEX_FILE}): it holds "
                          f"{guard.listing([p.name for p in present])}; choose an empty folder "
                          f"(--overwrite replaces only what lmnet infer wrote)")
    foreign = [p.name for p in present if not (p.is_file() and _OUTPUT_NAME.match(p.name))]
    if foreign:
        raise ConfigError(f"--out {out} holds files lmnet infer did not write ({', '.join(foreign[:5])}): "
                          f"choose an empty folder")
    return present


def prepare_out(out: str | Path, overwrite: bool = False) -> Path:
    """Make ``out`` an empty output folder: :func:`check_out`, then delete the previous outputs."""
    out = Path(out)
    present = check_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    atomic_io.write_text(out / PARTIAL_MARKER, "lmnet infer is writing here; index.csv comes last\n")
    index = out / INDEX_FILE
    if index.exists():  # first: a run killed while clearing never leaves an index of missing files
        index.unlink()
    for p in present:
        if p.exists() and p.name != PARTIAL_MARKER:
            p.unlink()
    return out


def _png(image: np.ndarray) -> bytes:
    """``(3, H, W)`` RGB 0–255 → PNG bytes (rounded, clipped)."""
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.clip(np.rint(np.asarray(image).transpose(1, 2, 0)), 0, 255).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buf, "PNG")
    return buf.getvalue()


class PredictionWriter:
    """Writes one prediction per :meth:`add` (atomically, ids in order) and ``index.csv`` at
    :meth:`close`, into a folder made empty by :func:`prepare_out`."""

    def __init__(self, out: str | Path, overwrite: bool = False, color_format: str = "ply"):
        if f".{color_format}" not in COLOURED_SUFFIXES:
            raise ConfigError(f"--format must be one of {', '.join(x[1:] for x in COLOURED_SUFFIXES)}, "
                              f"got {color_format!r}")
        self.color_format = color_format
        self.out = prepare_out(out, overwrite)
        self.rows: list[dict[str, Any]] = []

    def add(self, source: str, image: np.ndarray, pred: np.ndarray, samples: np.ndarray | None = None,
            gt: np.ndarray | None = None, synset: str = "", model_id: str = "", view: int | str = "",
            input_png: bool = False, colours: np.ndarray | None = None) -> None:
        """One prediction; ``image`` float ``(3, H, W)`` RGB 0–255 (also as ``<id>.input.png`` when
        ``input_png``); ``colours`` uint8 ``(N, 3)``, one per point of ``pred`` (``<id>.colors.npy``
        and the coloured ``<id>.pred.ply`` / ``.glb``)."""
        i = f"{len(self.rows):06d}"
        if input_png:
            atomic_io.write_bytes(self.out / f"{i}.input.png", _png(image))
        row = {"id": i, "source": source, "synset": synset, "model_id": model_id, "view": view,
               "image": f"{i}.image.npy", "pred": f"{i}.pred.npy", "gt": "", "samples": ""}
        atomic_io.save_npy(self.out / row["image"], image.astype(np.float32))
        atomic_io.save_npy(self.out / row["pred"], pred.astype(np.float32))
        if gt is not None:
            row["gt"] = f"{i}.gt.npy"
            atomic_io.save_npy(self.out / row["gt"], gt.astype(np.float32))
        if samples is not None:
            row["samples"] = f"{i}.samples.npy"
            atomic_io.save_npy(self.out / row["samples"], samples.astype(np.float32))
        if colours is not None:  # uint8 (N, 3) per point of pred: not in index.csv, named after <id>
            atomic_io.save_npy(self.out / f"{i}.colors.npy", colours)
            write_coloured(self.out / f"{i}.pred.{self.color_format}", pred, colours)
        self.rows.append(row)

    def close(self) -> Path:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=INDEX_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        path = self.out / INDEX_FILE
        atomic_io.write_text(path, buf.getvalue())
        (self.out / PARTIAL_MARKER).unlink(missing_ok=True)
        return path


def load_predictions(out_dir, limit: int = 0) -> list[dict[str, Any]]:
    """Read an output folder written by :class:`PredictionWriter` (``out_dir/index.csv`` + ``.npy``
    files) → make_grid / Browser rows ``{"input" (3, 128, 128) 0–255, "prediction" (2048, 3), "gt"
    (1024, 3) when known, "samples" (K, 2048, 3) when written, "category", "model_id", "view",
    "title"}``; ``limit`` > 0 keeps the first N. A listed file that is missing or unreadable is a
    :class:`~lmnet.errors.CorruptFileError` naming it."""
    out_dir = Path(out_dir)
    index = out_dir / INDEX_FILE
    if not index.is_file():
        raise DataError(f"{index} does not exist: not an lmnet inference output folder")
    with open(index, newline="") as fh:
        entries = list(csv.DictReader(fh))
    if limit:
        entries = entries[: int(limit)]
    rows = []
    for e in entries:
        row: dict[str, Any] = {"input": load_npy(out_dir / e["image"], "network input"),
                               "prediction": load_npy(out_dir / e["pred"], "prediction")}
        for key, what in (("gt", "ground truth"), ("samples", "samples")):
            if e.get(key):
                row[key] = load_npy(out_dir / e[key], what)
        if e.get("synset"):
            row.update(category=e["synset"], model_id=e["model_id"], view=int(e["view"]))
        else:
            row.update(category="user image", title=Path(e["source"]).name)
        rows.append(row)
    return rows
