"""Fault injection, part 2: training runs, their outputs and interruptions.

Resumes with changed settings, kills between checkpoint writes, outputs written over earlier ones,
non-finite numbers, Ctrl-C and files left by a kill during a write. Part 1 is tests/test_faults.py.
"""

from __future__ import annotations

import pytest
import torch
from test_eval import tiny_project  # noqa: F401  (session fixture)
from conftest import ctrl_c_at_step, scripted_validation
from test_train import ae_config, assert_same_weights, state, write_tiny_shapenet

from lmnet.cli import main as cli_main
from lmnet.errors import ConfigError
from lmnet import runs
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.commands.train import resolve_cli_config
from lmnet import atomic_io
from lmnet.errors import NonFiniteError
from lmnet.methods.autoencoder import AutoencoderTrainer
from lmnet.data import image_cache as ic


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapenet")
    return root, write_tiny_shapenet(root)


# --------------------------------------------------------------------------------------------
# 4. a resume does what the run folder says
# --------------------------------------------------------------------------------------------
def test_changed_lr_on_resume_is_applied_and_recorded(tiny, tmp_path):
    run = train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=1, lr=5e-4, weight_decay=1e-4))
    train_autoencoder(ae_config(tiny, run, epochs=3, lr=1e-3, weight_decay=2e-4, beta1=0.8, grad_clip=5.0,
                                resume=True))
    assert [r["lr"] for r in runs.read_history(run)] == [5e-4, 1e-3, 1e-3]  # what the optimizer used
    groups = state(run)["optimizer"]["param_groups"]
    assert {g["lr"] for g in groups} == {1e-3} and {g["betas"][0] for g in groups} == {0.8}
    assert {g["weight_decay"] for g in groups} == {0.0, 2e-4}  # biases / BatchNorm keep none
    cfg = runs.read_run_config(run)
    assert cfg["lr"] == 1e-3 and cfg["weight_decay"] == 2e-4
    assert cfg["resume_changes"] == [{"from_epoch": 2, "key": k, "old": o, "new": n} for k, o, n in
                                     [("beta1", 0.9, 0.8), ("epochs", 1, 3), ("grad_clip", 0.0, 5.0),
                                      ("lr", 5e-4, 1e-3), ("weight_decay", 1e-4, 2e-4)]]
    # the saved config.json feeds back as a config (the record is metadata, not a setting)

    assert resolve_cli_config("ae", str(run / "config.json"), [])[1]["lr"] == 1e-3


def test_changes_that_cannot_hold_on_resume_are_refused(tiny, tmp_path, capsys):
    run = train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=1))
    before = (run / "config.json").read_text()
    with pytest.raises(ConfigError, match=r"chamfer_weights: \[1.0, 1.0\] -> \[1.0, 0.5\].*new run_dir"):
        train_autoencoder(ae_config(tiny, run, epochs=2, chamfer_weights=[1.0, 0.5], resume=True))
    assert (run / "config.json").read_text() == before and state(run)["epoch"] == 1
    cosine = train_autoencoder(ae_config(tiny, tmp_path / "cos", epochs=2, lr_schedule="cosine"))
    with pytest.raises(ConfigError, match="lr: 0.0005 -> 0.001.*lr_schedule='cosine'"):
        train_autoencoder(ae_config(tiny, cosine, epochs=2, lr=1e-3, lr_schedule="cosine", resume=True))


def test_num_workers_changed_on_resume_gives_the_same_weights(tiny, tmp_path):
    full = train_autoencoder(ae_config(tiny, tmp_path / "full", epochs=2, num_workers=0))
    part = train_autoencoder(ae_config(tiny, tmp_path / "part", epochs=1, num_workers=0))
    train_autoencoder(ae_config(tiny, part, epochs=2, num_workers=2, resume=True))
    assert_same_weights(state(full)["model"], state(part)["model"])
    assert [r["train_loss"] for r in runs.read_history(full)] == [r["train_loss"] for r in runs.read_history(part)]


# --------------------------------------------------------------------------------------------
# 5. best.pt is never lost
# --------------------------------------------------------------------------------------------
class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in lmnet catches it."""


def test_kill_between_checkpoint_writes_never_loses_best(tiny, tmp_path, monkeypatch):

    scripted_validation(monkeypatch, [3.0, 1.0, 1.0])  # epoch 2 is the best; the redo sees it again
    calls = []
    real_save = atomic_io.save_torch

    def save_then_die(obj, path):
        calls.append(path.name)
        if len(calls) == 3:  # the first checkpoint write of epoch 2, then the process dies
            real_save(obj, path)
            raise _Killed()
        real_save(obj, path)

    monkeypatch.setattr(atomic_io, "save_torch", save_then_die)
    with pytest.raises(_Killed):
        train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=2))
    monkeypatch.setattr(atomic_io, "save_torch", real_save)
    run = tmp_path / "run"
    last = state(run)
    if last["epoch"] == 2:  # a finished run must have its best.pt
        assert state(run, "best")["epoch"] == last["best_epoch"] == 2
    train_autoencoder(ae_config(tiny, run, epochs=2, resume=True))
    last, best = state(run), state(run, "best")
    assert last["epoch"] == 2 and best["epoch"] == last["best_epoch"] == 2
    assert_same_weights(best["model"], last["model"])


def test_resume_rebuilds_a_missing_or_mismatching_best(tiny, tmp_path, monkeypatch):
    scripted_validation(monkeypatch, [3.0, 1.0, 2.0])
    run = train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=2))
    runs.checkpoint_path(run, "best").unlink()
    train_autoencoder(ae_config(tiny, run, epochs=2, resume=True))  # nothing left to train: repair only
    last, best = state(run), state(run, "best")
    assert best["epoch"] == last["best_epoch"] == 2
    assert_same_weights(best["model"], last["model"])
    # an older best.pt (e.g. restored from a backup) is replaced too
    older = train_autoencoder(ae_config(tiny, tmp_path / "older", epochs=1))  # epoch 1's best (val 2.0)
    import shutil

    shutil.copy(runs.checkpoint_path(older, "best"), runs.checkpoint_path(run, "best"))
    train_autoencoder(ae_config(tiny, run, epochs=2, resume=True))
    assert state(run, "best")["epoch"] == 2
    assert_same_weights(state(run, "best")["model"], state(run)["model"])


# --------------------------------------------------------------------------------------------
# 6. outputs are never mixed
# --------------------------------------------------------------------------------------------
@pytest.fixture
def image_run(tiny_project, tmp_path):
    """A private copy (hard links) of the session's Variant I run: ``(data, run folder)``."""
    import os
    import shutil

    data, run, _ = tiny_project
    copy = tmp_path / "img_run"
    shutil.copytree(run, copy, copy_function=os.link, ignore=shutil.ignore_patterns("eval_*"))
    return data, copy


def _pngs(tmp_path, n):
    import numpy as np
    from PIL import Image

    paths = []
    for i in range(n):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_infer_refuses_a_non_empty_out_and_overwrite_clears_it(image_run, tmp_path, capsys):
    _, run = image_run
    out = tmp_path / "pred"
    base = ["infer", "--checkpoint", str(run), "--out", str(out), "--images"]
    assert cli_main(base + _pngs(tmp_path, 3)) == 0
    first = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert cli_main(base + _pngs(tmp_path, 1)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == first  # untouched
    assert cli_main(base + _pngs(tmp_path, 1) + ["--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.image.npy", "000000.input.png", "000000.pred.npy",
                                                     "index.csv"]
    assert len((out / "index.csv").read_text().splitlines()) == 2  # header + the one new image
    # files that lmnet did not write are never deleted, not even with --overwrite
    (out / "notes.txt").write_text("mine")
    assert cli_main(base + _pngs(tmp_path, 1) + ["--overwrite"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    assert (out / "index.csv").exists()


def test_eval_keeps_the_previous_report(image_run, capsys):
    _, run = image_run
    args = ["eval", "--run", str(run), "--split", "test", "--views", "0", "--no-icp", "--no-emd",
            "--no-baselines", "--workers", "1"]
    assert cli_main(args) == 0
    first = (run / "eval_test.md").read_text()
    assert "views: 0;" in first
    assert cli_main(args[:6] + ["0,1"] + args[7:]) == 0
    assert "kept the previous report as" in capsys.readouterr().out
    assert "views: 0,1;" in (run / "eval_test.md").read_text()
    kept = sorted(p.name for p in run.glob("eval_test*.md") if p.name != "eval_test.md")
    assert len(kept) == 1 and (run / kept[0]).read_text() == first
    assert len(list(run.glob("eval_test_pairs.*.csv"))) == 1 and len(list(run.glob("eval_test.*.csv"))) == 1


# --------------------------------------------------------------------------------------------
# 7. training stops on non-finite numbers
# --------------------------------------------------------------------------------------------
def _finite(sd):
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_non_finite_loss_stops_at_once_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):

    calls = []
    orig = AutoencoderTrainer.compute_losses

    def poisoned(self, batch):
        calls.append(1)
        out = orig(self, batch)
        if len(calls) == 4:  # epoch 2 (2 steps per epoch), step 2
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(AutoencoderTrainer, "compute_losses", poisoned)
    with pytest.raises(NonFiniteError, match=r"training loss nan at epoch 2, step 2 of 2.*last.pt \(after epoch 1\)"):
        train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=3))
    last = state(tmp_path / "run")
    assert last["epoch"] == 1 and _finite(last["model"]) and len(runs.read_history(tmp_path / "run")) == 1


def test_diverging_lr_is_stopped_with_a_clear_error(tiny, tmp_path, capsys):
    root, splits = tiny
    run = tmp_path / "run"
    args = ["train", "ae"] + [a for s in (f"data_root={root}", f"train_split={splits['train']}", "n_points=1024",
                                          "batch_size=2", "epochs=2", "num_workers=0", "progress=False",
                                          f"run_dir={run}", "lr=1e30") for a in ("--set", s)]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "epoch 1, step" in err and "Traceback" not in err
    assert not runs.checkpoint_path(run, "last").exists()  # nothing non-finite was ever saved


def test_non_finite_validation_stops_naming_the_epoch(tiny, tmp_path, monkeypatch):

    scripted_validation(monkeypatch, [3.0, float("inf")])
    with pytest.raises(NonFiniteError, match=r"validation val_chamfer_x100 at epoch 2 \(validation\)"):
        train_autoencoder(ae_config(tiny, tmp_path / "run", epochs=2))
    assert state(tmp_path / "run")["epoch"] == 1


def test_eval_and_infer_refuse_non_finite_predictions(image_run, tmp_path, capsys):
    _, run = image_run
    path = runs.checkpoint_path(run, "best")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if k.startswith("encoder") and v.is_floating_point())
    ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    path.unlink()  # a hard link to the session's run: write a new file, do not modify the shared one
    torch.save(ckpt, path)
    assert cli_main(["eval", "--run", str(run), "--split", "test", "--views", "0", "--no-emd", "--no-baselines",
                     "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite points for" in err and "Traceback" not in err
    assert not list(run.glob("eval_*"))
    assert cli_main(["infer", "--checkpoint", str(run), "--out", str(tmp_path / "p"), "--images",
                     *_pngs(tmp_path, 1)]) == 2
    assert "NaN or infinite points" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# 10. Ctrl-C and kills during a write
# --------------------------------------------------------------------------------------------
def _temporaries(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob(".*tmp*"))


def test_ctrl_c_prints_one_line_and_leaves_no_temporary_files(tiny, tmp_path, monkeypatch, capsys):

    root, splits = tiny
    run = tmp_path / "run"
    ctrl_c_at_step(monkeypatch, 3)  # the first step of epoch 2
    sets = (f"data_root={root}", f"train_split={splits['train']}", f"val_split={splits['val']}", "n_points=1024",
            "batch_size=2", "epochs=2", "num_workers=0", "progress=False", f"run_dir={run}")
    args = ["train", "ae"] + [a for s in sets for a in ("--set", s)]
    assert cli_main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"interrupted after epoch 1; resume with --set resume=true --set run_dir={run}"
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in err)
    assert _temporaries(tmp_path) == [] and state(run)["epoch"] == 1
    assert cli_main(args + ["--set", "resume=true"]) == 0
    assert state(run)["epoch"] == 2


KILL_SCRIPT = """
import os, signal, sys
from lmnet import atomic_io
real_fsync = os.fsync

def fsync_then_die(fd):
    if ".last.pt." in os.readlink(f"/proc/self/fd/{{fd}}") and os.environ.get("KILL_AT_LAST_PT"):
        os.kill(os.getpid(), signal.SIGKILL)  # a kill in the middle of writing last.pt
    real_fsync(fd)

atomic_io.os.fsync = fsync_then_die
from lmnet.methods.autoencoder import train_autoencoder
train_autoencoder({config!r})
"""


def test_sigkill_during_a_checkpoint_write_leaves_nothing_after_resume(tiny, tmp_path):
    import os
    import subprocess
    import sys

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to find the file being written")
    run = tmp_path / "run"
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(config=ae_config(tiny, run, epochs=1)))
    env = {**os.environ, "KILL_AT_LAST_PT": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9
    left = _temporaries(run)
    assert len(left) == 1 and left[0].startswith("checkpoints/.last.pt.")  # what a kill used to leave forever
    train_autoencoder(ae_config(tiny, run, epochs=1, resume=True))
    assert _temporaries(run) == [] and state(run)["epoch"] == 1


def test_killed_image_cache_build_is_cleaned_on_the_next_build(tmp_path):
    from conftest import write_tiny_shapenet as write_data


    data = write_data(tmp_path / "data", synsets=("03001627",), n_models=1, pointclouds=False)
    models = data.models["03001627"]
    final = ic.cache_path(ic.default_cache_root(data.root), "03001627", models)
    final.parent.mkdir(parents=True)
    dead = final.parent / f".tmp-{final.name}-999999999-abcd"  # no such process
    dead.mkdir()
    live = final.parent / f".tmp-{final.name}-{__import__('os').getpid()}-efgh"  # a build in progress
    live.mkdir()
    ic.open_or_build(data.root, "03001627", models, ic.default_cache_root(data.root), progress=False)
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize("argv, patch, line", [
    (["download", "--root", "R", "--what", "renderings", "--url", "http://127.0.0.1:9/x.tgz"],
     "lmnet.data.download.download_renderings", "interrupted; the partial download is kept"),
    (["infer", "--checkpoint", "R", "--images", "a.png", "--out", "O"], "lmnet.infer.predict_images",
     "interrupted; O holds a partial result without index.csv"),
])
def test_ctrl_c_in_download_and_infer_is_one_line(monkeypatch, capsys, argv, patch, line):
    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(patch, ctrl_c)
    assert cli_main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(line) and "Traceback" not in err
