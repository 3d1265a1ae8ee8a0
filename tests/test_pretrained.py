"""``lmnet pretrained``: the catalogue, a clear and fast failure offline (gdown pointed at a refused
loopback proxy: no real network), and the automatic import of files given with --from-file — an
official zip built with lmnet's NumPy checkpoint writer, the port's .pth files. The writer's output
is also read by TensorFlow itself."""

from __future__ import annotations

import collections
import time
import zipfile

import numpy as np
import pytest
import torch
from test_import_port import REFERENCE, make_state

from lmnet import load_model
from lmnet.cli import main as cli_main
from lmnet.errors import DownloadError
from lmnet.weights import official_tf, pretrained, tf_checkpoint
from lmnet.weights.tf_writer import write_checkpoint


def test_list_names_all_eight_files(capsys):
    assert cli_main(["pretrained", "list"]) == 0
    out = capsys.readouterr().out
    assert len(pretrained.CATALOGUE) == 8
    for item in pretrained.CATALOGUE.values():
        assert item.name in out and item.gdrive_id in out


def test_offline_download_fails_fast_naming_the_id_and_from_file(tmp_path, monkeypatch):
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # the discard port: connection refused
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as exc:
        pretrained.download("official-lm", tmp_path / "tm", progress=False)
    assert time.monotonic() - t0 < 10.0
    msg = str(exc.value)
    assert "1nl30z1CJL5WZn8svFllHkVLvS4GWiAxf" in msg and "--from-file" in msg
    assert not (tmp_path / "tm" / "official-lm").exists()


def test_official_zip_from_file_is_extracted_and_imported(tmp_path):
    exp = tmp_path / "built" / "lm" / "best"
    write_checkpoint(exp / "best", official_tf.random_variables("l1", seed=0))
    (exp / "best.meta").write_bytes(b"graph (unused)")
    archive = tmp_path / "lm.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(exp.iterdir()):
            zf.write(f, f"lm/best/{f.name}")
    assert cli_main(["pretrained", "download", "official-lm", "--out", str(tmp_path / "tm"),
                     "--from-file", str(archive)]) == 0
    model, config = load_model(tmp_path / "tm" / "official-lm")
    assert config["arch"] == "official" and config["source"]["format"] == "official-tf"
    ae, _ = load_model(tmp_path / "tm" / "official-lm-ae")
    assert model(torch.zeros(1, 3, 128, 128)).shape == (1, 2048, 3) and ae(torch.zeros(1, 10, 3)).shape == (1, 2048, 3)
    # already imported: skipped without touching the (now missing) file
    archive.unlink()
    assert pretrained.download("official-lm", tmp_path / "tm")["image"] == tmp_path / "tm" / "official-lm"


def test_port_files_from_file_are_imported(tmp_path):
    torch.save(make_state(REFERENCE["autoencoder"], 0), tmp_path / "model_autoencoder_final.pth")
    torch.save(make_state(REFERENCE["image_encoder_normal"], 1), tmp_path / "model_final.pth")
    written = pretrained.download("port-l1", tmp_path / "tm", from_file=tmp_path / "model_final.pth",
                                  ae_from_file=tmp_path / "model_autoencoder_final.pth")
    model, config = load_model(written["image"])
    assert config["arch"] == "port" and config["variant"] == "l1" and written["autoencoder"].name == "port-autoencoder"
    ae_only = pretrained.download("port-autoencoder", tmp_path / "tm2",
                                  from_file=tmp_path / "model_autoencoder_final.pth")
    assert load_model(ae_only["autoencoder"])[1]["kind"] == "autoencoder"


def test_writer_round_trip_and_tensorflow_reads_it(tmp_path):
    tensors = collections.OrderedDict([("psgn_vars/Conv2D/W", np.random.default_rng(0).random((3, 3, 3, 32),
                                                                                               dtype=np.float32)),
                                       ("is_training", np.array(False)), ("beta1_power", np.float32(0.9)),
                                       ("steps", np.arange(4, dtype=np.int64))])
    prefix = write_checkpoint(tmp_path / "best", tensors)
    ours = tf_checkpoint.read_checkpoint(tmp_path)
    assert all(np.array_equal(ours[k], v) and ours[k].shape == np.shape(v) for k, v in tensors.items())
    tf = pytest.importorskip("tensorflow")
    reader = tf.train.load_checkpoint(str(prefix))
    assert reader.get_variable_to_shape_map() == {k: list(np.shape(v)) for k, v in tensors.items()}
    assert all(np.array_equal(reader.get_tensor(k), v) for k, v in tensors.items())
