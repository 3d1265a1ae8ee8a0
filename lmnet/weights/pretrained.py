"""The eight published 3D-LMNet weight files: catalogue, download (Google Drive via gdown) and import.

Layout under ``out`` (e.g. ``trained_models/``)::

    out/files/<file name>       the downloaded file (resumed from ``<file>.part`` by gdown), kept
    out/files/<name>/           an official zip, extracted safely (lmnet.data.download.safe_extract)
    out/<name>/                 the image run (``lmnet import-weights``); official ones also write
    out/<name>-ae/              their autoencoder run; the port's autoencoder is ``out/port-autoencoder/``

A run already imported (``config.json`` + ``checkpoints/best.pt``) is skipped unless ``force``; an
import that stopped halfway is redone. A *trained* run found there (``last.pt`` or ``history.csv``)
is replaced only with ``force``, and a folder that is not an lmnet run folder never
(:mod:`lmnet.runs.guard`). ``out`` is locked for the whole download: one download into it at a time.
``from_file``: use a file fetched by hand instead of downloading it. Checks: zip member CRCs on
extraction, the TensorFlow reader's CRC-32C on every tensor, the port files' strict keys and shapes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lmnet import runs
from lmnet.data.download import safe_extract
from lmnet.errors import ConfigError, DataError, DownloadError
from lmnet.runs import guard
from lmnet.weights import imported_run, port
from lmnet.weights.official_tf import import_official
from lmnet.weights.port import import_port


@dataclass(frozen=True)
class Published:
    name: str
    gdrive_id: str
    filename: str
    kind: str          # "official-tf" (a zip of an experiment folder) or "port" (a .pth state dict)
    variant: str       # "l1", "l2", "probabilistic" or "autoencoder"
    about: str


CATALOGUE = {p.name: p for p in (
    Published("official-lm", "1nl30z1CJL5WZn8svFllHkVLvS4GWiAxf", "lm.zip", "official-tf", "l1",
              "official TensorFlow latent matching (Variant I, L1) + its autoencoder"),
    Published("official-plm", "1iYUOPTrhwAIwubihrBhLGG-KVD4Qr7is", "plm.zip", "official-tf", "probabilistic",
              "official TensorFlow probabilistic latent matching (Variant II) + its autoencoder"),
    Published("port-autoencoder", "1unq5OYW8WBhb-7ccFWGU2m1B0SaBlCjm", "model_autoencoder_final.pth", "port",
              "autoencoder", "PyTorch port: point-cloud autoencoder (needed by every port image model)"),
    Published("port-l1", "1YnNNJ15hwcGqDQHb-7t4HMC-TC1S-1fT", "model_final.pth", "port", "l1",
              "PyTorch port: Variant I, L1"),
    Published("port-l2", "1uS13xA3k28jT5kxFHLVUveqm2_kD-5I8", "model_epoch_L2_30.pth", "port", "l2",
              "PyTorch port: Variant I, L2"),
    Published("port-prob-5.5", "1b90RlaXwkl37V0Ue8MpT7vJTMfCM5-Uz", "model_epoch_30_55.pth", "port", "probabilistic",
              "PyTorch port: Variant II, lambda 5.5"),
    Published("port-prob-0.5", "1-u4awBG05Kzk2cnkT4v0G-oqj2_7e874", "model_epoch_30_05.pth", "port", "probabilistic",
              "PyTorch port: Variant II, lambda 0.5"),
    Published("port-prob-0.0", "1TZ40LANluZqIZ4utURnzJ-w8UqydirhE", "model_epoch_30_00.pth", "port", "probabilistic",
              "PyTorch port: Variant II, lambda 0"),
)}


def lookup(name: str) -> Published:
    if name not in CATALOGUE:
        raise DataError(f"unknown published model {name!r}; choose one of: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def fetch(item: Published, files_dir: Path, from_file: str | Path | None = None, timeout: float = 5.0,
          progress: bool = True) -> Path:
    """The local file of ``item``: ``from_file``, an earlier complete download, or a gdown download."""
    if from_file is not None:  # a file; for the official models also the already extracted folder
        path = Path(from_file)
        if not (path.is_file() or (path.is_dir() and item.kind == "official-tf")):
            raise DataError(f"--from-file {path} does not exist")
        return path
    dest = files_dir / item.filename
    if dest.is_file():
        return dest
    files_dir.mkdir(parents=True, exist_ok=True)
    import gdown

    how = (f"download https://drive.google.com/uc?id={item.gdrive_id} ({item.filename}) by hand and run "
           f"`lmnet pretrained download {item.name} --out {files_dir.parent} --from-file PATH`")
    try:
        out = gdown.download(id=item.gdrive_id, output=str(dest), quiet=not progress, resume=True,
                             timeout=(timeout, 60.0), retries=0)
    except Exception as exc:  # gdown raises its own and requests' exception types
        raise DownloadError(f"Google Drive file {item.gdrive_id} ({item.name}) could not be downloaded "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                            f"Offline or blocked: {how}") from None
    if not out or not dest.is_file():
        raise DownloadError(f"Google Drive file {item.gdrive_id} ({item.name}): no file written; {how}")
    return dest


def _requested_by(item: Published) -> str:
    """Who asks for ``item.variant`` in an import's variant-mismatch error: the published name, and
    which published names hold the other variant."""
    def family(p: Published) -> bool:  # Variant II, or Variant I (l1 and l2 have the same heads)
        return p.variant == "probabilistic"

    others = [p.name for p in CATALOGUE.values()
              if p.kind == item.kind and p.variant != "autoencoder" and family(p) != family(item)]
    return f"the published model {item.name} (variant {item.variant}; the other variant is {' / '.join(others)})"


def _imported(run_dir: Path) -> bool:
    """An imported run: ``config.json`` and ``best.pt``, no ``last.pt`` or history of a training."""
    return ((run_dir / runs.CONFIG_FILE).is_file() and runs.checkpoint_path(run_dir, "best").is_file()
            and not runs.checkpoint_path(run_dir, "last").exists() and not (run_dir / runs.HISTORY_FILE).exists())


def _refuse_trained(run_dirs: list[Path], force: bool) -> None:
    """Without ``force``, refuse to import over a trained run (what an import replaces is its own)."""
    for run_dir in run_dirs:
        folder = guard.inspect_run_folder(run_dir, "run folder")
        if folder.trained and not force:
            raise ConfigError(f"{run_dir} holds a trained {folder.kind} run, not an imported one: pass --force to "
                              f"replace it, or choose another --out")


def _official_checkpoint(zip_path: Path, files_dir: Path, name: str) -> Path:
    """Extract the zip (safely, again on every call into a fresh folder) and find its one checkpoint."""
    target = files_dir / name
    if target.exists():
        shutil.rmtree(target)
    safe_extract(zip_path, target)  # creates target; removes it again if the zip is refused
    indexes = sorted(target.rglob("*.index"))
    best = [p for p in indexes if p.name == "best.index"] or indexes
    if len(best) != 1:
        raise DataError(f"{zip_path}: expected one TensorFlow checkpoint (best.index) inside, found "
                        f"{[str(p.relative_to(target)) for p in indexes] or 'none'}")
    return best[0].with_suffix("")


def download(name: str, out: str | Path, from_file: str | Path | None = None,
             ae_from_file: str | Path | None = None, force: bool = False, timeout: float = 5.0,
             progress: bool = True) -> dict[str, Path]:
    """Fetch and import the published model ``name`` into run folders under ``out`` (see module doc)."""
    item = lookup(name)
    with guard.lock_folder(out, "--out", f"lmnet pretrained download {name}"):
        return _download(item, Path(out), from_file, ae_from_file, force, timeout, progress)


def _download(item: Published, out: Path, from_file, ae_from_file, force: bool, timeout: float,
              progress: bool) -> dict[str, Path]:
    files_dir = out / "files"
    run_dir = out / item.name
    if item.kind == "official-tf":
        ae_dir = out / f"{item.name}-ae"
        if _imported(run_dir) and _imported(ae_dir) and not force:
            return {"image": run_dir, "autoencoder": ae_dir}
        _refuse_trained([run_dir, ae_dir], force)
        path = fetch(item, files_dir, from_file, timeout, progress)
        prefix = _official_checkpoint(path, files_dir, item.name) if path.is_file() and path.suffix == ".zip" else path
        return import_official(prefix, run_dir, ae_out=ae_dir, variant=item.variant, overwrite=True,
                               requested_by=_requested_by(item))
    ae_item = CATALOGUE["port-autoencoder"]
    ae_dir = out / ae_item.name
    if item.variant == "autoencoder":
        if _imported(ae_dir) and not force:
            return {"autoencoder": ae_dir}
        _refuse_trained([ae_dir], force)
        # the port's autoencoder alone: an autoencoder run (its state dict through the same checks)
        path = fetch(item, files_dir, from_file, timeout, progress)
        ae = port.ae_state(port.load_state_dict(path, port.ae_shapes(), "autoencoder"))
        src = {"format": "port", "autoencoder": str(path.resolve()), "sha256": imported_run.sha256_of(path),
               "part": "autoencoder", "published": item.name}
        with imported_run.claim({"run folder": ae_dir}, True, f"lmnet pretrained download {item.name}"):
            return {"autoencoder": imported_run.write_run(ae_dir, imported_run.ae_model_config(), ae, {}, src, True,
                                                          "run folder")}
    if _imported(run_dir) and _imported(ae_dir) and not force:
        return {"image": run_dir, "autoencoder": ae_dir}
    _refuse_trained([run_dir, ae_dir], force)
    img_path = fetch(item, files_dir, from_file, timeout, progress)
    ae_path = fetch(ae_item, files_dir, ae_from_file, timeout, progress)
    return import_port(ae_path, img_path, item.variant, run_dir, ae_out=ae_dir, overwrite=True,
                       requested_by=_requested_by(item))
