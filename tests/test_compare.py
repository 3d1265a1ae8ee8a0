"""``lmnet compare``: two tiny runs and an imported published-format model under two protocols → one
CSV / Markdown table with the baselines and a per-category figure; a cell equals ``lmnet eval``'s."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_eval import make_runs
from test_import_port import REFERENCE, make_state

from lmnet.cli import main as cli_main
from lmnet.errors import ConfigError
from lmnet.eval.compare import run_labels
from lmnet.weights.port import import_port


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    from conftest import write_tiny_shapenet

    base = tmp_path_factory.mktemp("compare")
    data = write_tiny_shapenet(base / "data", n_views=2, point_counts=(1024, 2048))
    l1, l2 = make_runs(base / "a", data), make_runs(base / "b", data, variant="l2")
    torch.save(make_state(REFERENCE["autoencoder"], 0), base / "ae.pth")
    torch.save(make_state(REFERENCE["image_encoder_normal"], 1), base / "img.pth")
    import_port(base / "ae.pth", base / "img.pth", "l1", base / "published", ae_out=base / "published_ae")
    split = base / "test_split.json"
    split.write_text(json.dumps({s: [f"{s}/{m}" for m in ms[2:]] for s, ms in data.models.items()}))
    return data, [l1, l2, base / "published"], split


def test_compare_writes_one_table_and_a_figure(three_runs, tmp_path, capsys):
    data, runs, split = three_runs
    common = ["--data-root", str(data.root), "--split-file", str(split), "--views", "0", "--workers", "1"]
    out = tmp_path / "cmp"
    assert cli_main(["compare", "--runs", *map(str, runs), "--labels", "l1,l2,published",
                     "--protocols", "lmnet,official,meshrcnn", "--out", str(out), *common]) == 0
    rows = _rows(out / "compare.csv")
    assert {(r["protocol"], r["run"]) for r in rows} == {(p, r) for p in ("lmnet", "official", "meshrcnn")
                                                         for r in ("l1", "l2", "published")}
    methods = {r["method"] for r in rows if r["run"] == "l1"}
    assert "l1" in methods and any("nearest training shape" in m for m in methods)
    md = (out / "compare.md").read_text()
    assert "## Protocol: lmnet" in md and "## Protocol: official" in md and "ICP pred->GT: on" in md
    png = np.asarray(Image.open(out / "compare.png"))
    assert png.shape[0] > 400 and len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 10

    # one cell against `lmnet eval` under the same protocol
    assert cli_main(["eval", "--run", str(runs[1]), *common]) == 0
    ev = next(r for r in _rows(runs[1] / "eval_test.csv") if r["method"] == "model" and r["category"] == "mean")
    cell = next(r for r in rows if r["protocol"] == "lmnet" and r["method"] == "l2" and r["category"] == "mean")
    for col in ("cd_x100", "emd_x100"):
        assert float(cell[col]) == pytest.approx(float(ev[col]), rel=1e-6)

    # a second comparison into the same folder keeps the first one's files aside
    assert cli_main(["compare", "--runs", str(runs[0]), "--out", str(out), "--no-baselines", *common]) == 0
    assert len(list(out.glob("compare.*.csv"))) == 1 and {r["run"] for r in _rows(out / "compare.csv")} == {"img"}


def test_bad_arguments_are_one_line(three_runs, tmp_path, capsys):
    data, runs, _ = three_runs
    assert cli_main(["compare", "--runs", str(runs[0]), "--protocols", "lmnet,pixel", "--out", str(tmp_path)]) == 2
    assert "unknown protocol 'pixel'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="distinct"):
        run_labels(["a", "b"], ["x", "x"])
    assert run_labels(["runs/x/img", "more/y/img"]) == ["x/img", "y/img"]
