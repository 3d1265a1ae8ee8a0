"""The notebooks' configuration, and running them headlessly (CI, ``make demo``) and clean in git.

Each notebook starts with one config cell: ``config = {**defaults(), ...the keys it is about...}``
followed by ``config = lmnet.notebook_tools.with_overrides(config)``. :func:`defaults` holds every
setting that several notebooks share (data, run folders, the autoencoder, the image runs,
evaluation), documented once; a notebook's cell repeats only what that notebook is about. Users
edit the dict; automation injects overrides through the environment variable
``LMNET_NOTEBOOK_OVERRIDES`` (a JSON object), so CI can run every notebook with a tiny
configuration and ``make demo`` with the demo one, without parameter cells or string templating.
Overrides go through :func:`lmnet.config.resolve_config`, so an unknown key fails loudly instead
of being ignored.

The notebooks share one autoencoder run, ``<run_root>/autoencoder``: a notebook whose
``ae_epochs`` differs from that run's never changes it (:func:`ae_run_dir`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from lmnet import atomic_io
from lmnet.config import parse_json_object, resolve_config
from lmnet.envvars import environ
from lmnet.errors import DataError, LmnetError
from lmnet.runs.folder import CONFIG_FILE, read_run_config
from lmnet.synthetic import generate_dataset

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


def defaults() -> dict:
    """A fresh dict of the settings the notebooks share; a notebook's config cell adds or replaces
    the keys it is about. Paths are relative to the repository root (:func:`resolve_paths`).

    Data (the synthetic set by default; for real ShapeNet set ``data_root`` to the folder holding
    ``ShapeNetRendering/`` and ``ShapeNet_pointclouds/``, ``synthetic_models`` to 0 and the three
    split files):

    - ``data_root``: ``"data/synthetic"``, the dataset folder.
    - ``synthetic_models``: 40 models per category to generate there (0 = use ``data_root`` as it is).
    - ``categories``: the five categories chair, table, airplane, car, lamp.
    - ``train_split`` / ``val_split`` / ``test_split``: split files; None =
      ``<data_root>/splits/synthetic_<split>_models.json`` (:func:`split_files`).
    - ``seed``: 0, for generating the synthetic set and for training.

    Run folders and compute:

    - ``run_root``: ``"runs/notebooks"``, where every notebook's runs live (one folder per run,
      :func:`run_dir`); notebooks 02-06 reuse notebook 01's autoencoder from here.
    - ``figures_dir``: None = ``<run_root>/figures`` (:func:`figures_dir`).
    - ``device``: ``"auto"`` = CUDA when available, else ``"cpu"``.
    - ``num_workers``: 0 data-loader worker processes.
    - ``max_train_items`` / ``max_val_items``: 0 = all; N = a seeded subset of N items (quick tries).

    The point autoencoder (notebook 01 trains it, the others make sure it exists, :func:`ae_config`):

    - ``ae_epochs``: 200 (~15 min on 2 CPU cores for 40 models per category).
    - ``ae_batch_size``: 16.  ``ae_lr``: 1e-3.
    - ``lr_schedule``: ``"cosine"`` (to 0 at the last epoch) or ``"none"`` (the official constant
      rate), for every training run of the notebooks.

    Image encoder runs (Variant I and II, :func:`image_config`), CPU-sized (the paper: lr 5e-5,
    batch 32, all 24 views, 50 epochs):

    - ``image_epochs``: 3 passes over all 24 views of every training model.
    - ``image_batch_size``: 16.  ``image_lr``: 5e-4.
    - ``views``: None = all 24 views per model per epoch; ``"random"`` = one.
    - ``val_views``: ``[0, 6, 12, 18]``, the views validated each epoch.
    - ``amp``: ``"auto"``, mixed precision where it is fast (bf16 on CPUs with native bf16, CUDA).

    Evaluation (the paper protocol uses all 24 views; one keeps it quick), inference and meshes:

    - ``eval_views``: ``[0]``.  ``eval_max_items``: 0 = every (shape, view) pair of the test split.
    - ``model_run``: an image run folder or ``.pt``; None = ``<run_root>/variant1_l1`` (trained if missing).
    - ``user_images``: paths of your images; ``[]`` = two stand-ins made from the test split.
    - ``mesh_method``: ``"auto"`` (the best fit of ``"bpa"``, ``"poisson"`` and ``"alpha"``) or one of them.
    - ``mesh_depth``: 8, the octree depth when Poisson is used.
    """
    return {
        "data_root": "data/synthetic", "synthetic_models": 40,
        "categories": ["chair", "table", "airplane", "car", "lamp"],
        "train_split": None, "val_split": None, "test_split": None, "seed": 0,
        "run_root": "runs/notebooks", "figures_dir": None, "device": "auto", "num_workers": 0,
        "max_train_items": 0, "max_val_items": 0,
        "ae_epochs": 200, "ae_batch_size": 16, "ae_lr": 1e-3, "lr_schedule": "cosine",
        "image_epochs": 3, "image_batch_size": 16, "image_lr": 5e-4, "views": None,
        "val_views": [0, 6, 12, 18], "amp": "auto",
        "eval_views": [0], "eval_max_items": 0, "model_run": None, "user_images": [],
        "mesh_method": "auto", "mesh_depth": 8,
    }


def with_overrides(config: Mapping[str, Any]) -> dict:
    """Return ``config`` updated with the JSON overrides in ``$LMNET_NOTEBOOK_OVERRIDES`` (if any),
    relative paths resolved against the repository root (:func:`resolve_paths`).

    Keys in the overrides that the notebook's config does not have are skipped when they are
    prefixed with ``"?"`` (shared overrides for all notebooks) and are an error otherwise.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return resolve_paths(config)
    overrides = parse_json_object(raw, f"${ENV_VAR}")
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

    n = int(config.get("synthetic_models", 0))
    if n > 0:

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


SHARED_AE = "autoencoder"


def ae_run_dir(config: Mapping[str, Any], *, say: bool = False) -> str:
    """The autoencoder run folder a notebook uses: the shared ``<run_root>/autoencoder``, unless
    that run already exists for another number of epochs than ``config["ae_epochs"]``. Then the
    notebook gets its own run ``<run_root>/autoencoder_<ae_epochs>ep`` (shared in turn by every
    notebook asking for that many epochs), and the shared run is left as it is: extending it
    would change the latent space under the image runs already trained on it. ``say``: print a
    line saying so (:func:`ae_config` does; the other callers resolve the same folder quietly).

    The shared run's epochs are those its ``config.json`` was started (or last resumed) with; a
    run interrupted before them is the same run, and resuming it completes it.
    """
    shared = Path(run_dir(config, SHARED_AE))
    asked = int(config["ae_epochs"])
    has = read_run_config(shared).get("epochs") if (shared / CONFIG_FILE).is_file() else None
    if has is None or int(has) == asked:
        return str(shared)
    own, has = run_dir(config, f"{SHARED_AE}_{asked}ep"), int(has)
    if say:
        print(f"ae_epochs={asked}, but the shared autoencoder run {shared} has {has} epoch{'s' * (has != 1)}: "
              f"this notebook trains and uses its own run {own} instead, and names the runs it trains on it *_ae{asked}ep "
              f"(the shared run is left as it is; set ae_epochs={has} to use it)")
    return own


def _on_ae(config: Mapping[str, Any], name: str) -> str:
    """``name``, or ``<name>_ae<N>ep`` for a run trained on a notebook's own autoencoder (:func:`ae_run_dir`)."""
    own = Path(ae_run_dir(config)).name != SHARED_AE
    return f"{name}_ae{int(config['ae_epochs'])}ep" if own else name


def ae_config(config: Mapping[str, Any]) -> dict:
    """The autoencoder training config of the notebooks (run folder :func:`ae_run_dir`, normally
    ``<run_root>/autoencoder``; ``resume=True``: training an already finished run returns at once,
    which is how notebooks 02–06 make sure the AE of notebook 01 exists)."""
    return {**_common_train(config), "run_dir": ae_run_dir(config, say=True),
            "epochs": int(config["ae_epochs"]), "batch_size": int(config["ae_batch_size"]),
            "lr": float(config["ae_lr"])}


def image_config(config: Mapping[str, Any], variant: str, name: str, **extra) -> dict:
    """An image-encoder training config (Variant I ``"l1"``/``"l2"`` or ``"probabilistic"``) into
    ``<run_root>/<name>`` on top of the autoencoder of :func:`ae_config` (``<name>_ae<N>ep`` on a
    notebook's own autoencoder); ``extra`` overrides keys (e.g. ``lambda_div``)."""
    return {**_common_train(config), "run_dir": run_dir(config, _on_ae(config, name)), "variant": variant,
            "ae_run": ae_run_dir(config), "epochs": int(config["image_epochs"]),
            "batch_size": int(config["image_batch_size"]), "lr": float(config["image_lr"]),
            "views": config["views"], "val_views": config.get("val_views", [0]),
            "amp": config.get("amp", "auto"), **extra}


def silhouette_config(config: Mapping[str, Any]) -> dict:
    """The mask-supervised training config of notebook 06 (``lmnet.train.silhouette``) into
    ``<run_root>/silhouette_<pose>``; with ``init_from_ae`` its decoder starts from the
    autoencoder of :func:`ae_config` (train that first; on a notebook's own autoencoder the run
    is ``silhouette_<pose>_ae<N>ep``)."""
    name = f"silhouette_{config['pose']}"
    # the measured recipe keeps the silhouette defaults for seed and lr_schedule (constant rate)
    common = {k: v for k, v in _common_train(config).items() if k not in ("seed", "lr_schedule")}
    out = {**common, "epochs": config["sil_epochs"], "batch_size": config["sil_batch_size"], "lr": config["sil_lr"],
           "views": config["sil_views"], "n_views": config["n_views"], "silhouette_size": config["silhouette_size"],
           "depth_bins": config["depth_bins"], "pose": config["pose"], "amp": config["amp"],
           "run_dir": run_dir(config, _on_ae(config, name) if config["init_from_ae"] else name)}
    if config["init_from_ae"]:
        out["init_ae_run"] = ae_run_dir(config)
    return out


def has_outputs(path: str | Path) -> list[int]:
    """Indices of code cells in notebook ``path`` that carry outputs or execution counts."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip_outputs(path: str | Path) -> bool:
    """Remove outputs and execution counts in place; returns whether anything changed."""
    import nbformat

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

    path = Path(path)
    if not path.is_file():
        raise LmnetError(f"notebook {path} does not exist")
    nb = nbformat.read(str(path), as_version=4)
    env = {"MPLBACKEND": INLINE_BACKEND}
    if overrides is not None:
        env[ENV_VAR] = json.dumps(dict(overrides))
    t0 = time.perf_counter()
    with environ(env):  # the kernel inherits this process's environment when it starts
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(Path(cwd) if cwd else REPO_ROOT)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            raise LmnetError(f"notebook {path} failed:\n{exc}") from None
        finally:
            if out_path is not None:
                atomic_io.write_text(out_path, nbformat.writes(nb) + "\n")
    return time.perf_counter() - t0
