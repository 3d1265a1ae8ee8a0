"""The learning study's report (studies/learning.py, issue #27): the gap closed, the AE ceiling's gap
closed and the acceptance lines are read from the evaluation tables as written, and the markdown
shows them. Built from hand-made tables: no training."""

from __future__ import annotations

import math

from lmnet.eval import baselines as bl
from lmnet.eval.gap import add_gap_columns, gap_closed
from studies import learning

FLOOR = "floor (own GT pointcloud_2048)"


def _rows(cd: float, emd: float) -> list[dict]:
    return [{"category": "chair", "n_pairs": 2, "cd_x100": cd, "emd_x100": emd, "fscore_1pct_x100": 10.0,
             "fscore_2pct_x100": 40.0},
            {"category": "mean", "n_pairs": 2, "cd_x100": cd, "emd_x100": emd, "fscore_1pct_x100": 10.0,
             "fscore_2pct_x100": 40.0}]


def _tables(model: tuple[float, float], ae: tuple[float, float]) -> dict:
    t = {"model": _rows(*model), bl.MEAN_LATENT_LABEL: _rows(8.0, 9.0), bl.NEAREST_LABEL: _rows(7.0, 10.0),
         FLOOR: _rows(3.0, 4.0), bl.AE_CEILING_LABEL: _rows(*ae)}
    add_gap_columns(t, baselines=[bl.MEAN_LATENT_LABEL, bl.NEAREST_LABEL], floor=FLOOR)
    return t


def _res(l1_model, l2_model, ae) -> dict:
    image = {name: {"tables": _tables(m, ae), "val_chamfer_x100_epoch1": 9.0, "val_chamfer_x100_last": 5.0,
                    "train_seconds": 60.0, "epochs": 1, "n_pairs": 2, "notes": []}
             for name, m in (("variant1_l1", l1_model), ("variant1_l2", l2_model))}
    return {"size": dict(learning.QUICK), "image": image, "commit": "abc", "date": "2026-12-07", "machine": "x",
            "total_minutes": 1.0,
            "autoencoder": {"val_chamfer_x100_epoch1": 9.0, "val_chamfer_x100_last": 4.0, "val_chamfer_x100_best": 4.0,
                            "epochs": 3, "ratio_last_to_epoch1": 4 / 9, "train_seconds": 30.0, "vs_mean_shape_val": []}}


def test_summary_reads_gap_closed_against_the_better_baseline():
    # B = 7 (retrieval) on CD, 9 (mean shape) on EMD; floor 3 / 4
    res = _res((5.0, 6.0), (6.0, 6.0), (4.0, 5.0))
    s = learning.summary(res)
    l1 = s["runs"]["variant1_l1"]
    assert math.isclose(l1["cd_gap_closed_pct"], gap_closed(7.0, 5.0, 3.0))  # 50 %
    assert math.isclose(l1["emd_gap_closed_pct"], gap_closed(9.0, 6.0, 4.0))  # 60 %
    assert math.isclose(l1["ae_cd_gap_closed_pct"], 75.0)
    assert math.isclose(l1["emd_over_cd"], 1.2)
    acc = s["acceptance"]
    assert acc["autoencoder closes >= 70 % of the CD gap"]
    # L2 closes 25 % of the CD gap: the Variant I line needs both
    assert not acc["Variant I (L1, L2) closes >= 50 % of the CD gap"]
    assert acc["Variant I (L1, L2) closes >= 30 % of the EMD gap"]
    assert acc["Variant I's EMD / CD <= 1.4"]


def test_markdown_shows_the_gap_and_reference_rows():
    res = _res((5.0, 6.0), (6.0, 6.0), (5.0, 8.0))
    res["summary"] = learning.summary(res)
    md = learning.to_markdown(res, "python -m studies.learning --out X")
    row = next(line for line in md.splitlines() if line.startswith("| variant1_l1 | 9.00"))
    assert "**50.0 %**" in row and "**60.0 %**" in row and "| 1.20 |" in row
    ref = next(line for line in md.splitlines() if line.startswith("| variant1_l1 | 8.00 / 9.00"))
    assert "3.00 / 4.00" in ref and "50.0 % / 20.0 %" in ref
    assert "- autoencoder closes >= 70 % of the CD gap: **not met**" in md
    assert "- Variant I (L1, L2) closes >= 50 % of the CD gap: **not met**" in md
