"""Running the notebooks headlessly (CI, ``make demo``) and keeping them clean in git.

Each notebook starts with one ``config = {...}`` cell followed by
``config = lmnet.notebook_tools.with_overrides(config)``. Users edit the dict; automation injects
overrides through the environment variable ``LMNET_NOTEBOOK_OVERRIDES`` (a JSON object), so CI can
run every notebook with a tiny configuration and ``make demo`` with the demo one, without
parameter cells or string templating. Overrides go through :func:`lmnet.config.resolve_config`, so
an unknown key fails loudly instead of being ignored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from lmnet.config import resolve_config
from lmnet.errors import ConfigError, LmnetError

ENV_VAR = "LMNET_NOTEBOOK_OVERRIDES"
REPO_ROOT = Path(__file__).resolve().parent.parent
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


# Config keys holding paths. Relative ones are taken from the repository root (not the kernel's
# working directory: JupyterLab starts a notebook's kernel in notebooks/, nbclient in the root).
PATH_KEYS = ("data_root", "run_root", "figures_dir", "train_split", "val_split", "test_split", "model_run",
             "user_images")


def resolve_paths(config: Mapping[str, Any]) -> dict:
    """``config`` with the relative paths of :data:`PATH_KEYS` made absolute against the
    repository root (when lmnet runs from its source tree; otherwise left as they are)."""
    out = dict(config)
    if not (REPO_ROOT / "notebooks").is_dir():
        return out
    for key in PATH_KEYS:
        v = out.get(key)
        if isinstance(v, str) and v:
            out[key] = _from_root(v)
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[key] = [_from_root(x) for x in v]
    return out


def _from_root(path: str) -> str:
    return path if Path(path).is_absolute() else str(REPO_ROOT / path)


def with_overrides(config: Mapping[str, Any]) -> dict:
    """Return ``config`` updated with the JSON overrides in ``$LMNET_NOTEBOOK_OVERRIDES`` (if any),
    relative paths resolved against the repository root (:func:`resolve_paths`).

    Keys in the overrides that the notebook's config does not have are skipped when they are
    prefixed with ``"?"`` (shared overrides for all notebooks) and are an error otherwise.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return resolve_paths(config)
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"${ENV_VAR} is not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"${ENV_VAR} must be a JSON object, got {type(overrides).__name__}")
    clean = {}
    for key, value in overrides.items():
        if key.startswith("?"):
            if key[1:] in config:
                clean[key[1:]] = value
        else:
            clean[key] = value
    return resolve_paths(resolve_config(config, clean, name="notebook config"))


# A tiny configuration for every notebook (CI, smoke tests): 2 categories × 5 synthetic models,
# 1 epoch, batch 4, a few items. Add "?data_root" / "?run_root" / "?figures_dir" for where it goes.
TINY_OVERRIDES: dict[str, Any] = {
    "?categories": ["chair", "airplane"], "?synthetic_models": 5, "?device": "cpu", "?num_workers": 0,
    "?ae_epochs": 1, "?ae_batch_size": 4, "?image_epochs": 1, "?image_batch_size": 4, "?sil_epochs": 1,
    "?sil_batch_size": 4, "?n_views": 2, "?max_train_items": 6, "?max_val_items": 4, "?eval_max_items": 3,
    "?eval_views": [0], "?views": "random", "?preview_per_category": 1, "?preview_views": [0],
    "?n_show": 2, "?interp_steps": 3, "?k_samples": 2, "?spread_k": 2, "?spread_items": 6,
    "?n_items": 3, "?gif_frames": 3, "?mesh_depth": 5, "?sigmas": [1.0], "?lambdas": [0.0, 5.5],
    "?logvar_head_epochs": 1, "?pix3d_synthetic": True, "?pix3d_max_items": 6,
}


SPLITS = ("train", "val", "test")


def split_files(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"train"|"val"|"test": path}``: the notebook config's ``<split>_split`` keys, where a
    ``None`` means the synthetic set's file ``<data_root>/splits/synthetic_<split>_models.json``
    (for real ShapeNet set the three keys to the split files, e.g. the official ones)."""
    out = {}
    for s in SPLITS:
        given = config.get(f"{s}_split")
        out[s] = str(given) if given else str(Path(config["data_root"]) / "splits" / f"synthetic_{s}_models.json")
    return out


def ensure_data(config: Mapping[str, Any]) -> dict | None:
    """With ``config["synthetic_models"] > 0``: generate (or complete: it is resumable) the
    synthetic set under ``data_root`` for ``categories`` and return its summary; with 0 (real
    ShapeNet): only check that ``data_root`` and the three split files exist, return None."""
    from lmnet.errors import DataError

    n = int(config.get("synthetic_models", 0))
    if n > 0:
        from lmnet.data.synthetic import generate_dataset

        return generate_dataset(config["data_root"], categories=config["categories"], n_models=n,
                                seed=int(config.get("seed", 0)), workers=config.get("workers"), progress=False)
    if not Path(config["data_root"]).is_dir():
        raise DataError(f"data_root {config['data_root']} does not exist (set synthetic_models > 0 to "
                        f"generate the synthetic set there, or point data_root at ShapeNet)")
    for s, p in split_files(config).items():
        if not Path(p).is_file():
            raise DataError(f"{s}_split {p} does not exist")
    return None


def run_dir(config: Mapping[str, Any], name: str) -> str:
    """``<run_root>/<name>``: the run folders the notebooks share."""
    return str(Path(config["run_root"]) / name)


def figures_dir(config: Mapping[str, Any]) -> Path:
    """``config["figures_dir"]`` or ``<run_root>/figures``, created."""
    d = Path(config.get("figures_dir") or Path(config["run_root"]) / "figures")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _common_train(config: Mapping[str, Any]) -> dict:
    sp = split_files(config)
    return {"data_root": config["data_root"], "train_split": sp["train"], "val_split": sp["val"],
            "categories": config["categories"], "device": config["device"], "seed": int(config.get("seed", 0)),
            "num_workers": int(config.get("num_workers", 0)), "resume": True,
            "lr_schedule": config.get("lr_schedule", "none"),
            "progress": bool(config.get("progress", False)),
            "max_train_items": int(config.get("max_train_items", 0)),
            "max_val_items": int(config.get("max_val_items", 0))}


def ae_config(config: Mapping[str, Any]) -> dict:
    """The autoencoder training config of the notebooks (run folder ``<run_root>/autoencoder``,
    ``resume=True``: training an already finished run returns at once, which is how notebooks 02–06
    make sure the AE of notebook 01 exists)."""
    return {**_common_train(config), "run_dir": run_dir(config, "autoencoder"),
            "epochs": int(config["ae_epochs"]), "batch_size": int(config["ae_batch_size"]),
            "lr": float(config["ae_lr"])}


def image_config(config: Mapping[str, Any], variant: str, name: str, **extra) -> dict:
    """An image-encoder training config (Variant I ``"l1"``/``"l2"`` or ``"probabilistic"``) into
    ``<run_root>/<name>`` on top of the autoencoder of :func:`ae_config`; ``extra`` overrides keys
    (e.g. ``lambda_div``)."""
    return {**_common_train(config), "run_dir": run_dir(config, name), "variant": variant,
            "ae_run": run_dir(config, "autoencoder"), "epochs": int(config["image_epochs"]),
            "batch_size": int(config["image_batch_size"]), "lr": float(config["image_lr"]),
            "views": config["views"], "val_views": config.get("val_views", [0]),
            "amp": config.get("amp", "auto"), **extra}


def has_outputs(path: str | Path) -> list[int]:
    """Indices of code cells in notebook ``path`` that carry outputs or execution counts."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip_outputs(path: str | Path) -> bool:
    """Remove outputs and execution counts in place; returns whether anything changed."""
    import nbformat

    from lmnet import atomic_io

    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for c in nb.cells:
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            c.outputs, c.execution_count = [], None
            changed = True
    if changed:
        atomic_io.write_text(path, nbformat.writes(nb) + "\n")
    return changed


def run_notebook(path: str | Path, out_path: str | Path | None = None, *,
                 overrides: Mapping[str, Any] | None = None, timeout: int = 1800,
                 cwd: str | Path | None = None) -> float:
    """Execute notebook ``path`` top to bottom in a fresh kernel; write the executed copy to
    ``out_path`` (atomically, also when a cell fails) when given. Raises :class:`LmnetError`
    naming the failing cell. Returns the wall time in seconds.

    The kernel runs in ``cwd`` (default: the repository root, so relative paths such as ``data/``
    and ``runs/`` mean the same in every notebook, wherever the notebook file lies) with
    matplotlib's inline backend, even when the caller's environment sets ``MPLBACKEND`` (CI sets
    ``Agg``, which would make every figure vanish from the executed notebook). ``overrides``
    reach the notebook's ``with_overrides`` through ``$LMNET_NOTEBOOK_OVERRIDES``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from lmnet import atomic_io

    path = Path(path)
    if not path.is_file():
        raise LmnetError(f"notebook {path} does not exist")
    nb = nbformat.read(str(path), as_version=4)
    env = {"MPLBACKEND": INLINE_BACKEND}
    if overrides is not None:
        env[ENV_VAR] = json.dumps(dict(overrides))
    # the kernel inherits this process's environment: set it for the kernel's start, then restore
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(Path(cwd) if cwd else REPO_ROOT)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            raise LmnetError(f"notebook {path} failed:\n{exc}") from None
        finally:
            if out_path is not None:
                atomic_io.write_text(out_path, nbformat.writes(nb) + "\n")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return time.perf_counter() - t0
