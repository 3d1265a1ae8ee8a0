"""Issue #30's wiring: a silhouette run's shape and DPC-style pose in one table
(lmnet.eval.silhouette_pose), the study's files and their reader / histogram
(lmnet.analysis.pose_study), and the study's command line (studies/silhouette_pose.py)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from lmnet.analysis.pose_study import (ENTRY_KEYS, ERRORS_FILE, FIGURES_FILE, plot_pose_errors, pose_study_markdown,
                                       pose_study_report, read_pose_study, write_pose_study)
from lmnet.data.categories import name_of
from lmnet.errors import CorruptFileError
from lmnet.eval import silhouette_pose as sp
from lmnet.losses.pose import aligned_pose_errors, rotations_from_view_angles, symmetry_group
from lmnet.methods import silhouette as sil
from lmnet.methods.silhouette.evaluate import student_poses_of_split
from lmnet.registry import load_model
from lmnet.runs.latent_ood import LATENT_OOD_FILE, read_latent_ood
from studies import silhouette_pose as study


def _splits(tiny, folder):
    """``x_train_models.json`` (2 models per category) and ``x_test_models.json`` (the third)."""
    folder.mkdir()
    for name, pick in (("train", slice(0, 2)), ("test", slice(2, 3))):
        (folder / f"x_{name}_models.json").write_text(
            json.dumps({s: [f"{s}/{m}" for m in tiny.models[s][pick]] for s in tiny.synsets}))
    return str(folder / "x_train_models.json")


def test_unknown_pose_run_gets_pose_columns_next_to_cd(tiny_shapenet, tmp_path, monkeypatch):
    train = _splits(tiny_shapenet, tmp_path / "splits")
    run = sil.train_silhouette({"data_root": str(tiny_shapenet.root), "train_split": train, "val_split": None,
                                "epochs": 1, "batch_size": 2, "max_train_items": 2, "image_cache": False,
                                "num_workers": 0, "progress": False, "run_dir": str(tmp_path / "run"), "n_views": 2,
                                "silhouette_size": 16, "depth_bins": 16, "pose": "unknown", "n_pose_candidates": 2,
                                "pose_image_size": 16, "amp": False})
    res = sp.evaluate_silhouette_run(run, workers=0, symmetries={"chair": symmetry_group("up180")})
    assert len(res["rows"]) == 2 and "pose acc." in res["markdown"]
    model, config = load_model(run)
    poses = student_poses_of_split(model, config)
    for row in res["rows"]:
        assert row["n_pairs"] == 24 and row["n_views"] == 24 and row["cd"] > 0 and row["cd_medoid"] > 0
        # the same figure by hand: this category's views, predicted vs true, its symmetries
        pick = np.array([name_of(s) == row["category"] for s in poses["synset"]])
        want = aligned_pose_errors(rotations_from_view_angles(*poses["pred"][pick].T),
                                   rotations_from_view_angles(*poses["true"][pick].T),
                                   symmetry_group("up180") if row["category"] == "chair" else None)
        assert row["pose_accuracy_30"] == pytest.approx(want.accuracy_30)
        assert row["pose_median_deg"] == pytest.approx(want.median_deg)
        assert np.allclose(res["pose_errors_deg"][row["category"]], want.errors_deg)

    # the student replaced by the true cameras turned by a per-category azimuth: a perfect pose, after alignment
    def turned(model, config, split="test", **kw):
        true = poses["true"].copy()
        turn = np.where(poses["synset"] == poses["synset"][0], 90.0, 200.0)
        return {"synset": poses["synset"], "true": true, "pred": np.c_[(true[:, 0] + turn) % 360, true[:, 1]]}

    monkeypatch.setattr(sp, "student_poses_of_split", turned)
    monkeypatch.setattr(sp, "evaluate_run", lambda *a, **k: res["eval"])  # the Chamfer part is checked above
    res = sp.evaluate_silhouette_run(run)
    assert all(r["pose_accuracy_30"] == 1.0 and r["pose_median_deg"] < 1e-3 for r in res["rows"])


def test_known_pose_rows_say_no_pose():
    rows = [{"category": "table", "n_pairs": 48, "cd": 8.8, "cd_medoid": 12.7, "n_views": None,
             "pose_accuracy_30": None, "pose_median_deg": None},
            {"category": "chair", "n_pairs": 48, "cd": 9.0, "cd_medoid": 7.7, "n_views": 48,
             "pose_accuracy_30": 0.625, "pose_median_deg": 21.25}]
    md = sp.pose_table_markdown(rows)
    assert "| table | 48 | 8.800 | 12.700 | – | – | – |" in md and "| chair | 48 | 9.000 | 7.700 | 48 | 62.5 % | 21.2° |" in md


def _entry(cd, acc=None, med=None):
    return {"pose_accuracy_30": acc, "pose_median_deg": med, "cd": cd, "cd_medoid": 12.0, "minutes": 61.5,
            "command": "python -m studies.silhouette_pose ..."}


def test_study_files_merge_read_and_plot(tmp_path):
    assert read_pose_study(tmp_path) is None
    md, fig = pose_study_report(tmp_path)
    assert fig is None and "studies.silhouette_pose" in md and FIGURES_FILE in md
    write_pose_study(tmp_path, {"table": {"known": _entry(8.8)}}, {})
    errs = np.array([5.0, 10.0, 170.0])
    write_pose_study(tmp_path, {"table": {"unknown": _entry(9.5, 0.6, 12.0)}}, {"table.unknown": errs})
    got = read_pose_study(tmp_path)
    assert set(got.figures["table"]) == {"known", "unknown"} and set(got.figures["table"]["known"]) == set(ENTRY_KEYS)
    assert np.array_equal(got.errors["table.unknown"], errs)
    md = pose_study_markdown(got.figures)
    assert "| table | known | 8.800 | 12.000 | – | – | 61.5 |" in md and "| table | unknown | 9.500 | 12.000 | 60.0 % | 12.0° |" in md
    md, fig = pose_study_report(tmp_path)
    assert "unknown" in md and fig is not None
    assert len(fig.axes[0].patches) == 1  # one histogram, labelled with its views and median
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "table.unknown (3 views, median 10.0°)"
    assert plot_pose_errors({}).axes[0].get_xlim() == (0.0, 180.0)
    with pytest.raises(ValueError, match="expected"):
        write_pose_study(tmp_path, {"table": {"known": {"cd": 1.0}}}, {})
    (tmp_path / FIGURES_FILE).write_text(json.dumps({"table": {"known": {"cd": 1.0}}}))
    with pytest.raises(CorruptFileError, match="lacks keys"):
        read_pose_study(tmp_path)


def test_study_command_line_reproduces_each_entry(tmp_path):
    argv = ["--data", "/d", "--categories", "chair", "table", "--steps", "100", "--symmetry", "chair=up90",
            "--set", "lr=1e-3", "--out", str(tmp_path)]
    a = study.parse_args(argv)
    assert a.symmetry == {"table": "up180", "chair": "up90"}
    cmd = study.entry_command(a, "chair", "unknown")
    again = study.parse_args(shlex.split(cmd)[3:])
    assert (again.categories, again.modes, again.steps, again.symmetry, again.set) == (
        ["chair"], ["unknown"], 100, a.symmetry, ["lr=1e-3"])
    with pytest.raises(ValueError, match="unknown symmetry"):
        study.parse_args(["--data", "/d", "--symmetry", "chair=mirror"])


class _Boom:
    """Unpickling this would run code: the readers must refuse the file instead."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle executed')",))


def test_pickled_arrays_in_the_npz_files_are_refused_not_run(tmp_path):
    entry = dict.fromkeys(ENTRY_KEYS, 1.0)
    (tmp_path / FIGURES_FILE).write_text(json.dumps({"car": {"unknown": entry}}))
    evil = np.array([_Boom()], dtype=object)
    np.savez(tmp_path / ERRORS_FILE, **{"car.unknown": evil})
    with pytest.raises(CorruptFileError, match=ERRORS_FILE):
        read_pose_study(tmp_path)
    np.savez(tmp_path / LATENT_OOD_FILE, reference=evil, threshold=np.float64(1), percentile=np.float64(99))
    with pytest.raises(CorruptFileError, match=LATENT_OOD_FILE):
        read_latent_ood(tmp_path)
