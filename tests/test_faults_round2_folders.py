"""Fault injection, round 2: run and output folders (lmnet.runs.guard).

Each case of the hostile probe either leaves the earlier folder exactly as it was (bytes and
mtimes compared) or is refused with exit code 2 and one line: training over an imported run or a
run without last.pt, two writers on one folder, --overwrite / --force in folders lmnet did not
write, --out and --ae-out the same folder, a config.json that is no JSON object, a file given as a
folder. Locks held by another process are refused; locks of a process that is gone are taken over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ctrl_c_at_step
from test_import_port import REFERENCE, make_state
from test_train import write_tiny_shapenet

from lmnet import load_model, runs
from lmnet.cli import main as cli_main
from lmnet.errors import CorruptFileError, FolderInUseError
from lmnet.methods.autoencoder import AutoencoderTrainer
from lmnet.registry import get_method
from lmnet.runs import guard
from lmnet.runs.predictions import PARTIAL_MARKER, PredictionWriter
from lmnet.train import loop as train_loop
from lmnet.weights import pretrained


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapenet")
    return root, write_tiny_shapenet(root)


@pytest.fixture(scope="module")
def port_files(tmp_path_factory):
    """The port's two .pth files (random weights with its exact keys): ``{"ae", "img"}``."""
    folder = tmp_path_factory.mktemp("port")
    paths = {"ae": folder / "ae.pth", "img": folder / "img.pth"}
    torch.save(make_state(REFERENCE["autoencoder"], 0), paths["ae"])
    torch.save(make_state(REFERENCE["image_encoder_normal"], 1), paths["img"])
    return paths


def import_args(port_files, out, ae_out=None, *extra):
    args = ["import-weights", "port", "--autoencoder", str(port_files["ae"]), "--image-encoder",
            str(port_files["img"]), "--variant", "l1", "--out", str(out)]
    return args + (["--ae-out", str(ae_out)] if ae_out is not None else []) + list(extra)


@pytest.fixture(scope="module")
def image_template(port_files, tmp_path_factory):
    run = tmp_path_factory.mktemp("imported") / "img"
    assert cli_main(import_args(port_files, run)) == 0
    return run


@pytest.fixture
def image_run(image_template, tmp_path):
    """A private copy (hard links: nothing here modifies a file in place) of an imported image run."""
    copy = tmp_path / "img_run"
    shutil.copytree(image_template, copy, copy_function=os.link)
    return copy


def train_args(tiny, run, *extra):
    root, splits = tiny
    sets = (f"data_root={root}", f"train_split={splits['train']}", f"val_split={splits['val']}", "n_points=1024",
            "batch_size=2", "epochs=1", "num_workers=0", "progress=False", f"run_dir={run}", *extra)
    return ["train", "ae"] + [a for s in sets for a in ("--set", s)]


def pngs(folder: Path, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"in{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (but the lock file): relative path -> (bytes, mtime_ns)."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != guard.LOCK_FILE}


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines, err
    assert lines[-1].startswith(f"lmnet {command}: error: ") and len(lines) == 1, err
    return lines[-1]


def trained_run(tiny, run: Path, capsys) -> Path:
    assert cli_main(train_args(tiny, run)) == 0
    capsys.readouterr()
    return run


# --------------------------------------------------------------------------------------------
# training never writes over a run it cannot continue
# --------------------------------------------------------------------------------------------
def test_training_over_an_imported_run_is_refused_and_keeps_it(tiny, port_files, tmp_path, capsys):
    # an autoencoder run written by `lmnet pretrained download` (the import code), the same kind as `train ae`
    run = pretrained.download("port-autoencoder", tmp_path / "tm", from_file=port_files["ae"])["autoencoder"]
    before = snapshot(run)
    assert cli_main(train_args(tiny, run)) == 2
    assert "already holds a run (an imported run of kind 'autoencoder'" in one_line_error(capsys, "train")
    assert cli_main(train_args(tiny, run, "resume=true")) == 2
    assert f"no {runs.checkpoint_path(run, 'last')} to continue from" in one_line_error(capsys, "train")
    assert snapshot(run) == before and "source" in runs.read_run_config(run)


def test_resume_without_last_pt_never_starts_over(tiny, tmp_path, capsys):
    run = trained_run(tiny, tmp_path / "run", capsys)
    runs.checkpoint_path(run, "last").unlink()
    before = snapshot(run)
    assert cli_main(train_args(tiny, run, "resume=true", "epochs=2")) == 2
    assert "a run whose last.pt was removed" in one_line_error(capsys, "train")
    assert snapshot(run) == before  # best.pt of epoch 1 is not rolled back to a new run's


def test_run_dir_with_files_lmnet_did_not_write_is_refused(tiny, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine")
    assert cli_main(train_args(tiny, folder)) == 2
    assert "not an lmnet run folder (no config.json): it holds thesis.tex" in one_line_error(capsys, "train")
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]


# --------------------------------------------------------------------------------------------
# one writer per folder
# --------------------------------------------------------------------------------------------
def test_a_second_trainer_on_one_run_dir_is_refused(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    with guard.lock_folder(run, "run_dir", "lmnet train autoencoder (the first one)"):
        assert cli_main(train_args(tiny, run)) == 2
        msg = one_line_error(capsys, "train")
        assert f"is in use by lmnet train autoencoder (the first one) (process {os.getpid()}" in msg
        assert [p.name for p in run.iterdir()] == [guard.LOCK_FILE]  # nothing written
    assert not run.exists()  # the holder created it and leaves nothing behind
    # two trainers that both passed the early check (started together): the lock in fit() decides
    root, splits = tiny
    config = get_method("autoencoder").resolve({"data_root": str(root), "train_split": splits["train"], "n_points": 1024,
                             "batch_size": 2, "epochs": 1, "num_workers": 0, "progress": False, "run_dir": str(run)})
    trainer = AutoencoderTrainer(config)
    with guard.lock_folder(run, "run_dir", "lmnet train autoencoder (the first one)"):
        with pytest.raises(FolderInUseError, match="in use by lmnet train autoencoder"):
            trainer.fit()
        assert not (run / runs.CONFIG_FILE).exists()


def test_a_second_infer_into_one_out_is_refused(image_run, tmp_path, capsys):
    out = tmp_path / "pred"
    base = ["infer", "--checkpoint", str(image_run), "--out", str(out), "--overwrite", "--images"]
    assert cli_main(base + pngs(tmp_path / "a", 2)) == 0
    capsys.readouterr()  # the first run's own warnings and notes
    before = snapshot(out)
    with guard.lock_folder(out, "--out", "lmnet infer (the first one)"):
        assert cli_main(base + pngs(tmp_path / "b", 1)) == 2
        assert "--out" in (msg := one_line_error(capsys, "infer")) and "in use by lmnet infer (the first one)" in msg
    assert snapshot(out) == before and not (out / guard.LOCK_FILE).exists()


HOLD_LOCK = """
import sys
from lmnet.runs import guard
with guard.lock_folder(sys.argv[1], "--out", "lmnet infer (another process)"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_lock_of_a_killed_process_is_taken_over(image_run, tmp_path, capsys):
    out = tmp_path / "pred"
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        args = ["infer", "--checkpoint", str(image_run), "--out", str(out), "--images", *pngs(tmp_path / "in", 1)]
        assert cli_main(args) == 2
        assert f"in use by lmnet infer (another process) (process {holder.pid}" in one_line_error(capsys, "infer")
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release it
        holder.wait(timeout=30)
    assert (out / guard.LOCK_FILE).is_file()
    assert cli_main(args) == 0
    err = capsys.readouterr().err
    assert f"took over the lock of {out} left by lmnet infer (another process) (process {holder.pid}" in err
    assert sorted(p.name for p in out.iterdir()) == ["000000.image.npy", "000000.input.png", "000000.pred.npy",
                                                     "index.csv"]


def test_a_stale_lock_file_does_not_block_training(tiny, tmp_path, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    run = tmp_path / "run"
    run.mkdir()
    lock = {"pid": gone.pid, "host": socket.gethostname(), "pid_start": None,
            "command": "lmnet train autoencoder", "since": "2020-01-01T00:00:00+00:00", "token": "dead"}
    (run / guard.LOCK_FILE).write_text(json.dumps(lock))
    assert cli_main(train_args(tiny, run)) == 0
    assert f"(process {gone.pid} on" in capsys.readouterr().err
    assert not (run / guard.LOCK_FILE).exists() and runs.checkpoint_path(run, "last").is_file()


def test_an_unreadable_lock_is_busy_until_it_is_old(tmp_path):
    lock = tmp_path / guard.LOCK_FILE
    lock.write_text("")  # a writer between its O_EXCL create and its write
    with pytest.raises(FolderInUseError, match="unreadable lock file"):
        guard.check_unlocked(tmp_path, "--out")
    old = lock.stat().st_mtime - 2 * guard.UNREADABLE_LOCK_GRACE_S
    os.utime(lock, (old, old))
    guard.check_unlocked(tmp_path, "--out")
    with guard.lock_folder(tmp_path, "--out", "test"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_the_lock_is_released_on_errors_and_ctrl_c(tiny, tmp_path, capsys, monkeypatch):
    assert cli_main(train_args(tiny, tmp_path / "nan", "lr=1e30")) == 2  # non-finite: an error mid-epoch
    assert not (tmp_path / "nan" / guard.LOCK_FILE).exists()
    ctrl_c_at_step(monkeypatch, 3)  # the first step of epoch 2
    assert cli_main(train_args(tiny, tmp_path / "cc", "epochs=2")) == 130
    assert not (tmp_path / "cc" / guard.LOCK_FILE).exists()
    monkeypatch.undo()
    capsys.readouterr()
    assert cli_main(train_args(tiny, tmp_path / "cc", "epochs=2", "resume=true")) == 0


# --------------------------------------------------------------------------------------------
# --overwrite / --force clear exactly what lmnet wrote
# --------------------------------------------------------------------------------------------
def test_infer_overwrite_never_deletes_in_a_folder_lmnet_did_not_write(image_run, tmp_path, capsys):
    out = tmp_path / "theirs"
    out.mkdir()
    for name in ("000000.pred.npy", "000001.image.npy", ".cache.tmp"):  # lmnet's names, not lmnet's files
        (out / name).write_bytes(b"not ours")
    before = snapshot(out)
    assert cli_main(["infer", "--checkpoint", str(image_run), "--out", str(out), "--overwrite", "--images",
                     *pngs(tmp_path / "in", 1)]) == 2
    assert "is not an lmnet infer output (no index.csv)" in one_line_error(capsys, "infer")
    assert snapshot(out) == before


def test_an_interrupted_infer_is_marked_and_can_be_overwritten(image_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "pred"
    args = ["infer", "--checkpoint", str(image_run), "--out", str(out), "--batch-size", "1", "--images",
            *pngs(tmp_path / "in", 3)]
    orig = PredictionWriter.add

    def ctrl_c_at_the_second(self, *a, **kw):
        if len(self.rows) == 1:
            raise KeyboardInterrupt
        return orig(self, *a, **kw)

    monkeypatch.setattr(PredictionWriter, "add", ctrl_c_at_the_second)
    assert cli_main(args) == 130
    assert sorted(p.name for p in out.iterdir()) == [PARTIAL_MARKER, "000000.image.npy", "000000.input.png",
                                                     "000000.pred.npy"]
    monkeypatch.undo()
    assert cli_main(args + ["--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.{kind}" for i in range(3) for kind in
                                                     ("image.npy", "input.png", "pred.npy")] + ["index.csv"]


def test_import_out_and_ae_out_may_not_be_the_same_folder(port_files, tmp_path, capsys):
    same = tmp_path / "X"
    assert cli_main(import_args(port_files, same, same, "--force")) == 2
    assert "are the same folder" in one_line_error(capsys, "import-weights")
    assert not same.exists()
    assert cli_main(import_args(port_files, same / "img", same, "--force")) == 2
    assert "lie inside one another" in one_line_error(capsys, "import-weights")
    # over an existing autoencoder run: it keeps its own files (no ae_run pointing at itself)
    assert cli_main(import_args(port_files, tmp_path / "img", same)) == 0
    before = snapshot(same)
    assert cli_main(import_args(port_files, same, same, "--force")) == 2
    assert "are the same folder" in one_line_error(capsys, "import-weights")
    assert snapshot(same) == before


def test_import_force_over_a_trained_run_replaces_exactly_its_files(tiny, port_files, tmp_path, capsys):
    run = trained_run(tiny, tmp_path / "ae", capsys)
    (run / "notes.txt").write_text("mine")
    (run / "eval_test.md").write_text("a report of the trained weights")
    (run / runs.CHECKPOINT_DIR / "mine.pt").write_bytes(b"mine")
    before = snapshot(run)
    assert cli_main(import_args(port_files, tmp_path / "img", run)) == 2
    assert "already holds a run (history.csv" in one_line_error(capsys, "import-weights")
    assert snapshot(run) == before and not (tmp_path / "img").exists()
    assert cli_main(import_args(port_files, tmp_path / "img", run, "--force")) == 0
    left = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert left == ["checkpoints/best.pt", "checkpoints/mine.pt", "config.json", "notes.txt"]
    assert (run / "notes.txt").read_text() == "mine" and (run / "checkpoints" / "mine.pt").read_bytes() == b"mine"
    cfg = runs.read_run_config(run)
    assert cfg["kind"] == "autoencoder" and cfg["source"]["part"] == "autoencoder"
    assert runs.read_run_config(tmp_path / "img")["ae_run"] == str(run)


def test_pretrained_download_keeps_a_trained_run_without_force(tiny, port_files, tmp_path, capsys):
    run = trained_run(tiny, tmp_path / "tm" / "port-autoencoder", capsys)
    before = snapshot(run)
    args = ["pretrained", "download", "port-autoencoder", "--out", str(tmp_path / "tm"), "--from-file",
            str(port_files["ae"])]
    assert cli_main(args) == 2
    assert "holds a trained autoencoder run, not an imported one" in one_line_error(capsys, "pretrained")
    assert snapshot(run) == before
    assert cli_main(args + ["--force"]) == 0
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()) == [
        "checkpoints/best.pt", "config.json"]
    assert not (tmp_path / "tm" / guard.LOCK_FILE).exists()


# --------------------------------------------------------------------------------------------
# one line, before any work
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content, expected", [(b"[1, 2]", "expected a JSON object (a run's config), got a JSON list"),
                                               (b'{"kind": "\xff"}', "not UTF-8 text (byte 10)")])
def test_a_config_json_that_is_no_json_object_is_one_line(tiny, image_run, tmp_path, capsys, content, expected):
    (image_run / runs.CONFIG_FILE).unlink()  # a hard link: replace, do not modify
    (image_run / runs.CONFIG_FILE).write_bytes(content)
    assert cli_main(["infer", "--checkpoint", str(image_run), "--out", str(tmp_path / "p"), "--images",
                     *pngs(tmp_path / "in", 1)]) == 2
    assert f"{image_run / runs.CONFIG_FILE}: {expected}" in one_line_error(capsys, "infer")
    assert cli_main(["eval", "--run", str(image_run), "--split", "test"]) == 2
    assert f"{image_run / runs.CONFIG_FILE}: {expected}" in one_line_error(capsys, "eval")
    with pytest.raises(CorruptFileError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_model(image_run)
    run = trained_run(tiny, tmp_path / "ae", capsys)
    (run / runs.CONFIG_FILE).write_bytes(content)
    assert cli_main(train_args(tiny, run, "resume=true", "epochs=2")) == 2
    assert expected in one_line_error(capsys, "train")


def test_a_file_as_a_folder_is_refused_before_any_work(tiny, image_run, port_files, tmp_path, capsys, monkeypatch):
    def no_work(*a, **kw):
        raise AssertionError("work started before the folder was checked")

    afile = tmp_path / "afile"
    afile.write_text("a file")
    monkeypatch.setattr(train_loop, "build_dataset", no_work)
    assert cli_main(train_args(tiny, afile)) == 2
    assert f"run_dir {afile} is a file, expected a folder" in one_line_error(capsys, "train")
    assert cli_main(train_args(tiny, afile / "run")) == 2
    assert f"cannot be a folder: {afile} is a file" in one_line_error(capsys, "train")
    monkeypatch.setattr("lmnet.infer.load_model", no_work)
    assert cli_main(["infer", "--checkpoint", str(image_run), "--out", str(afile), "--images",
                     *pngs(tmp_path / "in", 1)]) == 2
    assert f"--out {afile} is a file" in one_line_error(capsys, "infer")
    monkeypatch.setattr("lmnet.weights.port.load_state_dict", no_work)
    assert cli_main(import_args(port_files, afile)) == 2
    assert f"--out {afile} is a file" in one_line_error(capsys, "import-weights")
    assert afile.read_text() == "a file"
