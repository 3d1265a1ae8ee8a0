"""Split files: determinism, disjointness, holdout of the official test set, both file formats."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmnet.data import splits
from lmnet.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def _models(n_per=50):
    return {"03001627": [f"c{i:03d}" for i in range(n_per)], "02691156": [f"a{i:03d}" for i in range(n_per)]}


def test_make_splits_deterministic_disjoint_and_complete():
    a = splits.make_splits(_models(), seed=3)
    b = splits.make_splits(_models(), seed=3)
    assert a == b
    splits.assert_disjoint(a)
    all_keys = set().union(*(splits.split_keys(s) for s in a.values()))
    assert len(all_keys) == 100
    assert len(a["train"]["03001627"]) == 30 and len(a["val"]["03001627"]) == 10
    c = splits.make_splits(_models(), seed=4)
    assert c["train"] != a["train"]


def test_per_category_seeding_is_independent_of_other_categories():
    both = splits.make_splits(_models(), seed=0)
    only = splits.make_splits({"03001627": _models()["03001627"]}, seed=0)
    assert both["train"]["03001627"] == only["train"]["03001627"]


def test_order_of_input_does_not_matter():
    m = _models()
    rev = {s: list(reversed(v)) for s, v in m.items()}
    assert splits.make_splits(m, seed=1) == splits.make_splits(rev, seed=1)


def test_holdout_goes_to_test_only():
    held = {f"03001627/c{i:03d}" for i in range(10)}
    s = splits.make_splits(_models(), ratios=(0.8, 0.2, 0.0), seed=0, holdout=held)
    assert held <= splits.split_keys(s["test"])
    assert not held & (splits.split_keys(s["train"]) | splits.split_keys(s["val"]))
    splits.assert_disjoint(s)


def test_official_split_files_load_and_are_disjoint():
    train = splits.load_split(REPO / "splits" / "lmnet_official_train_models.json")
    val = splits.load_split(REPO / "splits" / "lmnet_official_val_models.json")
    assert sum(map(len, train.values())) == 35022 and sum(map(len, val.values())) == 8762
    assert len(train) == 13
    assert not splits.split_keys(train) & splits.split_keys(val)


def test_text_and_json_round_trip(tmp_path):
    s = splits.make_splits(_models(10), seed=0)["train"]
    splits.write_split(tmp_path / "a.json", s)
    splits.write_split(tmp_path / "a.txt", s)
    assert splits.load_split(tmp_path / "a.json") == splits.load_split(tmp_path / "a.txt") == s


def test_bad_split_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("not-a-key\n")
    with pytest.raises(DataError, match="bad.txt"):
        splits.load_split(bad)
    with pytest.raises(DataError, match="does not exist"):
        splits.load_split(tmp_path / "missing.json")


def test_assert_disjoint_names_the_model():
    with pytest.raises(DataError, match="03001627/x"):
        splits.assert_disjoint({"train": {"03001627": ["03001627/x"]}, "test": {"03001627": ["03001627/x"]}})


def test_create_split_files_script(tmp_path):
    root = tmp_path / "data"
    for s, ms in _models(5).items():
        for m in ms:
            (root / "ShapeNet_pointclouds" / s / m).mkdir(parents=True)
    out = tmp_path / "splits"
    res = subprocess.run([sys.executable, str(REPO / "create_split_files.py"), "--root", str(root),
                          "--out", str(out), "--prefix", "t", "--seed", "1"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    loaded = {n: splits.load_split(out / f"t_{n}_models.json") for n in ("train", "val", "test")}
    splits.assert_disjoint(loaded)
    assert sum(len(splits.split_keys(v)) for v in loaded.values()) == 10
    assert json.loads((out / "t_train_models.json").read_text())
