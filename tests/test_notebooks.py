"""Every notebook runs top to bottom (headless, nbclient) with a tiny configuration, and the
committed notebooks carry no outputs.

The tiny configuration is injected through ``$LMNET_NOTEBOOK_OVERRIDES`` (see
:mod:`lmnet.notebook`): 2 categories × 5 synthetic models, 1 epoch, batch 4, a few items.
The notebooks run one after the other in ONE test (they share the data and the autoencoder run,
as they do for a user, and this keeps them off the other xdist worker's core).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lmnet.notebook import TINY_OVERRIDES, has_outputs, run_notebook, with_overrides
from lmnet.errors import ConfigError
from lmnet.errors import LmnetError

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

TINY = TINY_OVERRIDES


def test_notebooks_exist_and_are_stripped():
    names = [p.name for p in NOTEBOOKS]
    for want in ("00_data", "01_autoencoder", "02_variant_I", "03_variant_II", "04_inference_and_evaluation",
                 "05_rendering", "06_silhouette", "07_published_model", "08_textured_meshes"):
        assert f"{want}.ipynb" in names
    dirty = {p.name: has_outputs(p) for p in NOTEBOOKS if has_outputs(p)}
    assert not dirty, f"notebooks with outputs (run lmnet.notebook.strip_outputs): {dirty}"


def test_notebooks_have_one_config_cell():
    import nbformat

    for p in NOTEBOOKS:
        code = [c.source for c in nbformat.read(str(p), as_version=4).cells if c.cell_type == "code"]
        cfg = [s for s in code if s.startswith("config = {")]
        assert len(cfg) == 1 and "config = with_overrides(config)" in cfg[0], p.name


def test_with_overrides(monkeypatch):

    monkeypatch.setenv("LMNET_NOTEBOOK_OVERRIDES", json.dumps({"a": 2, "?b": 3, "?zz": 1}))
    assert with_overrides({"a": 1, "b": 1, "c": 0}) == {"a": 2, "b": 3, "c": 0}
    # relative paths are the repository's (JupyterLab runs a notebook's kernel in notebooks/)
    REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout the tests run in: its project root

    monkeypatch.setenv("LMNET_NOTEBOOK_OVERRIDES", json.dumps({"?run_root": "runs/x"}))
    got = with_overrides({"data_root": "data/synthetic", "run_root": "runs", "user_images": ["a.png", "/b.png"]})
    assert got == {"data_root": str(REPO_ROOT / "data/synthetic"), "run_root": str(REPO_ROOT / "runs/x"),
                   "user_images": [str(REPO_ROOT / "a.png"), "/b.png"]}
    monkeypatch.setenv("LMNET_NOTEBOOK_OVERRIDES", json.dumps({"nope": 1}))
    with pytest.raises(ConfigError):
        with_overrides({"a": 1})
    monkeypatch.setenv("LMNET_NOTEBOOK_OVERRIDES", "[1]")
    with pytest.raises(ConfigError):
        with_overrides({"a": 1})


def test_run_notebook_inline_backend_and_cwd(tmp_path, monkeypatch):
    """The kernel gets the inline backend even under MPLBACKEND=Agg (as in CI), runs in the repo
    root, sees the overrides; a failing cell raises naming the notebook; the environment is restored."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout the tests run in: its project root

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = new_notebook(cells=[
        new_code_cell("from lmnet.notebook import with_overrides\nconfig = with_overrides({'x': 1})"),
        new_code_cell("import os, matplotlib\nprint(matplotlib.get_backend(), os.getcwd(), config['x'])"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1])")])
    src = tmp_path / "t.ipynb"
    nbformat.write(nb, str(src))
    run_notebook(src, tmp_path / "out.ipynb", overrides={"x": 5}, timeout=120)
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    text = out.cells[1].outputs[0]["text"]
    assert "inline" in text and str(REPO_ROOT) in text and text.strip().endswith("5")
    assert any("image/png" in o.get("data", {}) for o in out.cells[2].outputs)
    import os

    assert os.environ["MPLBACKEND"] == "Agg" and "LMNET_NOTEBOOK_OVERRIDES" not in os.environ
    nb.cells.append(new_code_cell("raise ValueError('boom')"))
    nbformat.write(nb, str(src))
    with pytest.raises(LmnetError, match="boom"):
        run_notebook(src, tmp_path / "out2.ipynb", timeout=120)
    assert (tmp_path / "out2.ipynb").is_file()
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("import time\ntime.sleep(60)")]), str(src))
    with pytest.raises(LmnetError) as exc:  # a cell over the limit: one line naming notebook, cell and limit
        run_notebook(src, tmp_path / "out3.ipynb", timeout=5)
    assert str(exc.value).startswith(f"notebook {src}: the cell starting 'import time' ran longer than 5 s")
    assert "\n" not in str(exc.value) and (tmp_path / "out3.ipynb").is_file()


@pytest.mark.notebooks
def test_all_notebooks_run_tiny(tmp_path):
    """All notebooks in order on a tiny synthetic set (CI budget: see the module docstring)."""
    overrides = {**TINY, "?data_root": str(tmp_path / "data"), "?run_root": str(tmp_path / "runs"),
                 "?figures_dir": str(tmp_path / "figures"), "?pix3d_root": str(tmp_path / "pix3d"),
                 "?cub_root": str(tmp_path / "cub")}
    times = {}
    for p in NOTEBOOKS:
        t0 = time.perf_counter()
        run_notebook(p, tmp_path / p.name, overrides=overrides, timeout=600)
        times[p.name] = round(time.perf_counter() - t0, 1)
    print("notebook times (s):", times)
    figs = {f.name for f in (tmp_path / "figures").iterdir()}
    assert {"autoencoder_reconstructions.png", "results_grid.png", "turntable.gif",
            "variant2_spread_vs_azimuth.png", "published_test.png", "pix3d_best_cases.png",
            "pix3d_worst_cases.png", "textured_turntable.gif"} <= figs
    for name in ("variant1_l1", "variant1_l2"):
        assert (tmp_path / "runs" / name / "eval_test.md").is_file()
