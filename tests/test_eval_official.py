"""``lmnet eval --protocol official`` on a tiny run: released pair order and streams, the released
CSV layout, protocol names in the table headers, Variant II sample vs --plm-mean."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from lmnet.eval import official
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.splits import load_split
from lmnet.registry import load_model
from lmnet.cli import main
from lmnet.eval.run import evaluate_run
from lmnet.eval.official_run import released_order


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import write_tiny_shapenet
    from test_eval import make_runs

    base = tmp_path_factory.mktemp("official_project")
    data = write_tiny_shapenet(base / "data", n_views=2, point_counts=(1024, 2048))
    return data, make_runs(base / "l1", data), make_runs(base / "prob", data, variant="probabilistic")


def _direct_official(run, data, views=(0, 1)):
    """The model's official per-pair CD computed here: predictions in split order x views, one
    evaluate_pairs call per category (seeded once)."""

    model, _ = load_model(run)
    split = run.parent.parent / "splits" / "tiny_test_models.json"
    ds = ShapeNetDataset(data.root, split=split, views=list(views), n_points=1024, image_cache=False)
    index = {ds.item_key(i): i for i in range(len(ds))}
    out = {}
    for s, keys in sorted(load_split(split).items()):
        items = [ds[index[(k, v)]] for k in keys for v in views]
        with torch.no_grad():
            preds = model(torch.stack([it["image"] for it in items])).numpy()
        res = official.evaluate_pairs(preds, np.stack([it["points"].numpy() for it in items]), with_emd=False)
        for it, cd in zip(items, res["cd"]):
            out[f"{it['key']}/{it['view']:02d}"] = cd
    return out


def test_cli_official_writes_released_layout(project, capsys):

    data, run, _ = project
    assert main(["eval", "--run", str(run), "--protocol", "official", "--views", "0,1", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "protocol: official" in out and "released auction schedule" in out
    md = (run / "eval_test_official.md").read_text()
    assert md.splitlines()[0] == "# Evaluation on split 'test' — protocol: official"
    assert all("official protocol" in ln for ln in md.splitlines() if ln.startswith("## "))
    with open(run / "eval_test_official.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["protocol"] for r in rows} == {"official"}
    assert {"cd_x100", "emd_auction_x100", "emd_x100"} <= set(rows[0])
    with open(run / "eval_test_official_pairs.csv") as fh:
        pairs = [r for r in csv.DictReader(fh) if r["method"] == "model"]
    # the model's pairs equal the official evaluation of the same predictions in the released order
    direct = _direct_official(run, data)
    assert {p["key"] for p in pairs} == set(direct)
    for p in pairs:
        assert float(p["cd"]) == pytest.approx(direct[p["key"]], abs=1e-6)
        assert float(p["emd_auction"]) >= float(p["emd"]) - 1e-7
    # released per-category CSV: header and the category means of the model's pairs (raw units)
    for name in ("airplane", "chair"):
        lines = (run / "eval_test_official" / f"{name}.csv").read_text().splitlines()
        assert lines[0] == "Chamfer, Fwd, Bwd, Emd"
        cd, fwd, bwd, emd = (float(x) for x in lines[1].split(","))
        mine = [p for p in pairs if p["category"] == {"airplane": "02691156", "chair": "03001627"}[name]]
        assert cd == pytest.approx(np.mean([float(p["cd"]) for p in mine]), abs=1e-7)
        assert cd == pytest.approx(fwd + bwd, abs=1e-7)
        assert emd == pytest.approx(np.mean([float(p["emd_auction"]) for p in mine]), abs=1e-7)
    # lmnet's tables are untouched by the official run, and name their protocol too
    assert main(["eval", "--run", str(run), "--views", "0", "--workers", "1", "--no-emd", "--no-baselines"]) == 0
    assert (run / "eval_test.md").read_text().splitlines()[0] == "# Evaluation on split 'test' — protocol: lmnet"


def test_official_rejects_switched_off_steps(project, capsys):

    run = project[1]
    assert main(["eval", "--run", str(run), "--protocol", "official", "--no-icp"]) == 2
    assert "always scales and runs ICP" in capsys.readouterr().err


def test_variant_ii_sample_or_mean(project):

    run = project[2]
    proto = official.OfficialProtocol(emd=False)
    sampled = evaluate_run(run, views=[0], workers=1, protocol=proto, baselines=False)
    mean = evaluate_run(run, views=[0], workers=1, protocol=proto, baselines=False, plm_mean=True)
    assert any("one sample z = μ + σ·ε per image" in n for n in sampled["notes"])
    assert any("μ of Variant II (--plm-mean" in n for n in mean["notes"])
    a = [r["cd"] for r in sampled["records"]["model"]]
    b = [r["cd"] for r in mean["records"]["model"]]
    assert a != b
    again = evaluate_run(run, views=[0], workers=1, protocol=proto, baselines=False)
    assert [r["cd"] for r in again["records"]["model"]] == a  # the sample is seeded


def test_released_order_follows_the_split_file(tmp_path):
    """Categories sorted, then models in the split file's (unsorted) order, then views ascending."""
    import json


    split = tmp_path / "s.json"
    split.write_text(json.dumps({"03001627": ["03001627/zz", "03001627/aa"], "02691156": ["02691156/mm"]}))
    items = [("03001627/aa", 1), ("03001627/zz", 1), ("02691156/mm", 0), ("03001627/aa", 0), ("03001627/zz", 0)]
    got = [items[i] for i in released_order(items, split)]
    assert got == [("02691156/mm", 0), ("03001627/zz", 0), ("03001627/zz", 1), ("03001627/aa", 0), ("03001627/aa", 1)]
    # without a file: sorted model ids
    assert [items[i] for i in released_order(items, None)][1] == ("03001627/aa", 0)
