"""The notebooks' one shared config (``lmnet.notebook.defaults``), the autoencoder run they
share (a notebook asking for other ``ae_epochs`` gets its own run and says so), the environment
and JSON helpers the tools use. The notebooks themselves run in tests/test_notebooks.py."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from lmnet import atomic_io
from lmnet.cli import main as cli_main
from lmnet import notebook as nt
from lmnet.config import parse_json_object
from lmnet.data import check_data, layout
from lmnet.data.splits import load_split
from lmnet.envvars import environ
from lmnet.errors import ConfigError, DataError
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.runs import checkpoint_path, read_history

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_defaults_fresh_and_every_key_documented():
    a, b = nt.defaults(), nt.defaults()
    assert a == b
    a["categories"].append("x")
    a["val_views"].append(99)
    assert nt.defaults() == b, "defaults() must return a new dict (and new lists) on every call"
    doc = nt.defaults.__doc__
    undocumented = [k for k in b if f"``{k}``" not in doc]
    assert not undocumented, f"keys without a line in defaults()'s docstring: {undocumented}"


def test_every_config_cell_starts_from_the_defaults():
    """The cell starts from defaults() and says so, shows literal keys only, keeps the default's value
    for a default it shows (one place decides it), and every notebook reads only keys it has."""
    for p in NOTEBOOKS:
        code = [c.source for c in nbformat.read(str(p), as_version=4).cells if c.cell_type == "code"]
        cell = next(s for s in code if s.startswith("config = {"))
        assert "lmnet.notebook.defaults()" in cell.splitlines()[1], p.name
        node = ast.parse(cell).body[0].value
        assert isinstance(node, ast.Dict) and node.keys[0] is None, p.name
        assert ast.unparse(node.values[0]) == "defaults()", p.name
        shown = {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.keys[1:], node.values[1:])}
        config = {**nt.defaults(), **shown}
        other = sorted(k for k in shown if k in nt.defaults() and shown[k] != nt.defaults()[k])
        assert not other, f"{p.name} shows other values than defaults() for {other}"
        used = set(re.findall(r"""(?<!\w)config\[["'](\w+)["']\]""", "\n".join(code)))
        assert used <= set(config), f"{p.name} reads keys it does not have: {sorted(used - set(config))}"


def test_overrides_reach_notebook_configs(monkeypatch):
    monkeypatch.setenv(nt.ENV_VAR, json.dumps({"?ae_epochs": 5, "?losses": ["l2"], "?nope": 1}))
    cfg = nt.with_overrides({**nt.defaults(), "losses": ["l1"]})
    assert cfg["ae_epochs"] == 5 and cfg["losses"] == ["l2"] and "nope" not in cfg
    monkeypatch.setenv(nt.ENV_VAR, json.dumps({"nope": 1}))
    with pytest.raises(ConfigError, match="nope"):
        nt.with_overrides(nt.defaults())
    monkeypatch.setenv(nt.ENV_VAR, "[1]")
    with pytest.raises(ConfigError, match=r"\$LMNET_NOTEBOOK_OVERRIDES must hold a JSON object, got list"):
        nt.with_overrides(nt.defaults())


def _fake_run(folder: Path, epochs: int) -> None:
    atomic_io.write_json(folder / "config.json", {"kind": "autoencoder", "epochs": epochs, "run_dir": str(folder)})


def test_other_ae_epochs_get_their_own_run_and_say_so(tmp_path, capsys):
    cfg = {**nt.defaults(), "run_root": str(tmp_path), "ae_epochs": 3, "init_from_ae": True, "sil_epochs": 1,
           "sil_batch_size": 2, "sil_lr": 1e-4, "sil_views": None, "n_views": 2, "silhouette_size": 32,
           "depth_bins": 8, "pose": "known"}
    shared = tmp_path / "autoencoder"
    # no shared run yet, or one with the same epochs: it is the one, quietly
    assert nt.ae_config(cfg)["run_dir"] == str(shared)
    _fake_run(shared, 3)
    assert nt.ae_config(cfg)["run_dir"] == str(shared)
    assert capsys.readouterr().out == ""
    for asked in (5, 2):  # more epochs than the shared run has, and fewer
        c = {**cfg, "ae_epochs": asked}
        own = str(tmp_path / f"autoencoder_{asked}ep")
        ae = nt.ae_config(c)
        out = capsys.readouterr().out
        assert ae["run_dir"] == own and ae["epochs"] == asked
        assert f"ae_epochs={asked}" in out and f"{shared} has 3 epochs" in out and own in out
        assert "left as it is" in out and out.count("\n") == 1
        # the runs built on it use the same autoencoder and say so in their names, without repeating the line
        img = nt.image_config(c, "l1", "variant1_l1")
        assert img["ae_run"] == own and img["run_dir"] == str(tmp_path / f"variant1_l1_ae{asked}ep")
        sil = nt.silhouette_config(c)
        assert sil["init_ae_run"] == own and sil["run_dir"] == str(tmp_path / f"silhouette_known_ae{asked}ep")
        assert nt.silhouette_config({**c, "init_from_ae": False})["run_dir"] == str(tmp_path / "silhouette_known")
        assert capsys.readouterr().out == ""
    assert nt.image_config(cfg, "l1", "variant1_l1")["run_dir"] == str(tmp_path / "variant1_l1")
    assert json.loads((shared / "config.json").read_text())["epochs"] == 3


def _tiny_notebook_config(tiny_shapenet, tmp_path, **kw) -> dict:
    root = tiny_shapenet.root
    splits = {}
    for name, keys in (("train", tiny_shapenet.keys[:4]), ("val", tiny_shapenet.keys[4:])):
        split = {}
        for k in keys:
            split.setdefault(k.split("/")[0], []).append(k)
        splits[name] = root / f"{name}.json"
        splits[name].write_text(json.dumps(split))
    return {**nt.defaults(), "data_root": str(root), "synthetic_models": 0, "categories": ["chair", "airplane"],
            "train_split": str(splits["train"]), "val_split": str(splits["val"]), "test_split": str(splits["val"]),
            "run_root": str(tmp_path / "runs"), "device": "cpu", "ae_batch_size": 2, **kw}


def test_more_ae_epochs_never_extend_the_shared_run(tiny_shapenet, tmp_path, capsys):
    """Real training: with lr_schedule="none" the trainer itself would resume the shared run for the
    extra epochs (epochs may change on resume); the notebook config trains its own run instead."""

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    one = _tiny_notebook_config(tiny_shapenet, tmp_path, ae_epochs=1, lr_schedule="none")
    shared = train_autoencoder(nt.ae_config(one))
    before = checkpoint_path(shared, "last").read_bytes()
    two = {**one, "ae_epochs": 2}
    own = train_autoencoder(nt.ae_config(two))
    assert "the shared autoencoder run" in capsys.readouterr().out
    assert own != shared and [r["epoch"] for r in read_history(own)] == [1, 2]
    assert checkpoint_path(shared, "last").read_bytes() == before
    assert [r["epoch"] for r in read_history(shared)] == [1]
    assert train_autoencoder(nt.ae_config(one)) == shared          # the shared run is still the one for 1 epoch


def test_environ_sets_and_restores(monkeypatch):
    monkeypatch.setenv("LMNET_T_SET", "old")
    monkeypatch.delenv("LMNET_T_UNSET", raising=False)
    with pytest.raises(RuntimeError):
        with environ({"LMNET_T_SET": "new", "LMNET_T_UNSET": "1"}):
            assert os.environ["LMNET_T_SET"] == "new" and os.environ["LMNET_T_UNSET"] == "1"
            raise RuntimeError
    assert os.environ["LMNET_T_SET"] == "old" and "LMNET_T_UNSET" not in os.environ


def test_parse_json_object_names_the_source():
    assert parse_json_object('{"a": 1}', "x") == {"a": 1}
    with pytest.raises(ConfigError, match="^thing is not valid JSON"):
        parse_json_object("{", "thing")
    with pytest.raises(DataError, match=r"^split file s.json must hold \{synset\}, got list$"):
        parse_json_object("[]", "split file s.json", DataError, expected="{synset}")


def test_ae_shape_pool_is_written_by_ensure_data_and_trained_on_by_the_autoencoder(tmp_path):
    """``ae_shape_pool`` N > 0 on the synthetic set: ensure_data writes N point-cloud-only shapes per
    category under ``<data_root>/ae_shape_pool`` (invisible to the data checks of ``data_root``),
    and the autoencoder's config adds them (``extra_train_root``); 0, or real data, adds nothing."""
    cfg = {**nt.defaults(), "data_root": str(tmp_path / "data"), "synthetic_models": 1, "categories": ["chair"],
           "run_root": str(tmp_path / "runs"), "ae_shape_pool": 2}
    nt.ensure_data(cfg)
    pool = tmp_path / "data" / "ae_shape_pool"
    assert nt.ae_config(cfg)["extra_train_root"] == str(pool)
    assert len(list((pool / layout.POINTCLOUD_DIR / "03001627").iterdir())) == 2
    assert check_data(cfg["data_root"], categories=["chair"]).ok      # the pool is not a model of data_root
    assert nt.ae_config({**cfg, "ae_shape_pool": 0})["extra_train_root"] is None
    assert nt.ae_config({**cfg, "synthetic_models": 0})["extra_train_root"] is None


def test_synthetic_split_sets_the_split_files_of_the_synthetic_set(tmp_path):
    """``synthetic_split`` [train, val, test] proportions: ensure_data (and ``lmnet synth --ratios``)
    split each category's models by them, rewriting the split files; a bad value names the key
    before any model is generated."""
    cfg = {**nt.defaults(), "data_root": str(tmp_path / "data"), "synthetic_models": 10, "categories": ["chair"],
           "run_root": str(tmp_path / "runs")}
    counts = lambda root: {s: len(load_split(root / "splits" / f"synthetic_{s}_models.json").get("03001627", []))
                           for s in ("train", "val", "test")}
    nt.ensure_data(cfg)
    assert counts(tmp_path / "data") == {"train": 6, "val": 2, "test": 2}
    nt.ensure_data({**cfg, "synthetic_split": [0.8, 0.1, 0.1]})
    assert counts(tmp_path / "data") == {"train": 8, "val": 1, "test": 1}
    for bad in ([0.8, 0.1], "0.8,0.1,0.1", [0.8, float("nan"), 0.1], [0, 0, 0], [0.8, "a", 0.1]):
        with pytest.raises(ConfigError, match=r"config key 'synthetic_split' must be \[train, val, test\] proportions"):
            nt.ensure_data({**cfg, "data_root": str(tmp_path / "bad"), "synthetic_split": bad})
    assert not (tmp_path / "bad").exists()
    assert cli_main(["synth", "--out", str(tmp_path / "cli"), "--categories", "chair", "--models", "10",
                     "--ratios", "0.8,0.1,0.1", "--workers", "1", "--no-progress"]) == 0
    assert counts(tmp_path / "cli") == {"train": 8, "val": 1, "test": 1}
    assert cli_main(["synth", "--out", str(tmp_path / "cli2"), "--ratios", "1,nan,1", "--no-progress"]) == 2
    assert not (tmp_path / "cli2").exists()
