"""Official TensorFlow checkpoints: lmnet's TF-free reader and converter against TensorFlow itself.

TensorFlow (test-only dependency, ``requirements-test.txt``) builds a ``tf.compat.v1`` graph
with exactly the variable names and shapes of the official ``lm`` checkpoint
(``tests/data/official_tf_lm_checkpoint_variables.json``; ``plm`` adds the log σ² head
``FullyConnected_1``), saves it with ``tf.compat.v1.train.Saver`` into tmp_path, and computes the
forward pass with TF ops (conv2d SAME + bias + ReLU, NHWC reshape, matmul, BN on moving statistics).
``lmnet import-weights official-tf`` then converts the files and ``load_model`` must reproduce
TF's outputs to a relative error of 1e-5 (max |Δ| / max |TF|).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from lmnet import load_model  # noqa: E402
from lmnet.cli import main as cli_main  # noqa: E402
from lmnet.errors import CorruptFileError, DataError  # noqa: E402
from lmnet.models.image_encoder import CONV_LAYOUT  # noqa: E402
from lmnet.weights import official_tf, tf_checkpoint  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "official_tf_lm_checkpoint_variables.json"
AE = "pointnet_ae/pointnet_ae"
TOL = 1e-5


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def reference_variables() -> dict[str, list[int]]:
    return json.loads(REFERENCE.read_text())["variables"]


def _value(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Weights that keep a 16-layer ReLU net on 0–255 inputs in a sane range (He-scaled)."""
    if name == "is_training":
        return np.array(False)
    if name.endswith(("/Adam", "/Adam_1")):
        return np.full(shape, 0.5, np.float32)
    if not shape:
        return rng.uniform(0, 1, shape).astype(np.float32)
    if name.endswith("/W"):
        fan_in = int(np.prod(shape[:-1]))
        return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    if name.endswith("moving_variance"):
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if name.endswith("gamma"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (rng.normal(size=shape) * 0.1).astype(np.float32)


def _tf_forward(v, images_nhwc, points, probabilistic: bool):
    """The official graph, written with TF ops on the variables ``v`` (name → tf.Variable)."""
    h = tf.constant(images_nhwc)
    for i, (_, s, _) in enumerate(CONV_LAYOUT):
        name = "psgn_vars/Conv2D" + (f"_{i}" if i else "")
        h = tf.nn.relu(tf.nn.conv2d(h, v[f"{name}/W"], strides=[1, s, s, 1], padding="SAME") + v[f"{name}/b"])
    feat = tf.reshape(h, [-1, 4 * 4 * 512])  # NHWC flatten
    mu = tf.matmul(feat, v["psgn_vars/FullyConnected/W"]) + v["psgn_vars/FullyConnected/b"]
    logvar = (tf.matmul(feat, v["psgn_vars/FullyConnected_1/W"]) + v["psgn_vars/FullyConnected_1/b"]
              if probabilistic else None)

    def bn(x, name):
        b = f"{AE}/{name}_bnorm"
        return tf.nn.batch_normalization(x, v[f"{b}/moving_mean"], v[f"{b}/moving_variance"], v[f"{b}/beta"],
                                         v[f"{b}/gamma"], 1e-5)

    def decode(z):
        for i in range(2):
            z = tf.nn.relu(bn(tf.matmul(z, v[f"{AE}/decoder_fc_{i}/W"]) + v[f"{AE}/decoder_fc_{i}/b"], f"decoder_fc_{i}"))
        return tf.reshape(tf.matmul(z, v[f"{AE}/decoder_fc_2/W"]) + v[f"{AE}/decoder_fc_2/b"], [-1, 2048, 3])

    p = tf.constant(points)[:, None]  # (B, 1, N, 3): the per-point MLP as 1x1 convs
    for i in range(5):
        name = f"encoder_conv_layer_{i}"
        p = tf.nn.relu(bn(tf.nn.conv2d(p, v[f"{AE}/{name}/W"], strides=1, padding="VALID") + v[f"{AE}/{name}/b"], name))
    latent = tf.reduce_max(p[:, 0], axis=1)
    return {"pred": decode(mu), "mu": mu, "logvar": logvar, "ae": decode(latent), "ae_latent": latent}


def write_tf_checkpoint(exp_dir: Path, variables: dict, probabilistic: bool, seed: int):
    """Save ``variables`` (name → shape) with tf.compat.v1.train.Saver at ``exp_dir/best/best`` and
    return (images NCHW, points, TF outputs)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (2, 128, 128, 3)).astype(np.float32)
    points = rng.uniform(-0.5, 0.5, (2, 700, 3)).astype(np.float32)
    (exp_dir / "best").mkdir(parents=True)
    g = tf.Graph()
    with g.as_default():
        v = {n: tf.compat.v1.get_variable(n, initializer=_value(n, s, rng)) for n, s in sorted(variables.items())}
        out = _tf_forward(v, images, points, probabilistic)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(exp_dir / "best" / "best"))
            got = sess.run({k: t for k, t in out.items() if t is not None})
    return images.transpose(0, 3, 1, 2).copy(), points, got


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """The lm checkpoint with every reference variable (Adam slots, beta powers, is_training too),
    saved at one path and then moved (its ``checkpoint`` file names the old absolute path)."""
    tf.compat.v1.disable_eager_execution()
    tmp = tmp_path_factory.mktemp("tf_lm")
    images, points, out = write_tf_checkpoint(tmp / "saved_here", reference_variables(), False, seed=0)
    shutil.move(tmp / "saved_here", tmp / "lm")
    return tmp / "lm", images, points, out


@pytest.fixture(scope="module")
def plm(tmp_path_factory):
    tf.compat.v1.disable_eager_execution()
    tmp = tmp_path_factory.mktemp("tf_plm")
    variables = {n: s for n, s in reference_variables().items() if not n.endswith(("/Adam", "/Adam_1"))}
    variables.update({"psgn_vars/FullyConnected_1/W": [8192, 512], "psgn_vars/FullyConnected_1/b": [512]})
    images, points, out = write_tf_checkpoint(tmp / "plm", variables, True, seed=1)
    return tmp / "plm", images, points, out


def test_reference_list_is_what_the_converter_reads():
    ref = {n: tuple(s) for n, s in reference_variables().items()}
    wanted = {**official_tf.image_shapes("l1"), **official_tf.ae_shapes()}
    assert all(ref[n] == s for n, s in wanted.items())
    ignored = set(ref) - set(wanted)
    assert ignored and all(n in ("beta1_power", "beta2_power", "is_training") or n.endswith(("/Adam", "/Adam_1"))
                           for n in ignored)


def test_reader_matches_tensorflow_values(lm):
    exp, *_ = lm
    names = ["psgn_vars/Conv2D_15/W", "pointnet_ae/pointnet_ae/decoder_fc_2/b", "is_training", "beta1_power"]
    ours = tf_checkpoint.read_checkpoint(exp, names=names)
    reader = tf.train.load_checkpoint(str(exp / "best" / "best"))
    for n in names:
        assert np.array_equal(ours[n], reader.get_tensor(n)), n
    assert tf_checkpoint.list_variables(exp) == {n: tuple(s) for n, s in sorted(reference_variables().items())}
    prefix = exp / "best" / "best"
    assert tf_checkpoint.resolve_prefix(exp) == tf_checkpoint.resolve_prefix(exp / "best") == prefix
    assert tf_checkpoint.resolve_prefix(prefix) == tf_checkpoint.resolve_prefix(f"{prefix}.index") == prefix


def test_lm_imports_as_variant1_and_reproduces_tensorflow(lm, tmp_path):
    exp, images, points, out = lm
    assert cli_main(["import-weights", "official-tf", "--checkpoint", str(exp), "--out", str(tmp_path / "lm"),
                     "--ae-out", str(tmp_path / "ae")]) == 0
    model, config = load_model(tmp_path / "lm")
    assert config["variant"] == "l1" and config["arch"] == "official" and config["image_input"] == "stored_rgb"
    assert config["weight_decay_conv"] == 0.0 and config["source"]["format"] == "official-tf"
    assert config["source"]["files"]["best.index"] and config["ae_run"] == str(tmp_path / "ae")
    with torch.no_grad():
        x = torch.from_numpy(images)
        mu, logvar = model.encode_image(x)
        pred = model(x)
    assert logvar is None
    assert rel_err(mu, out["mu"]) <= TOL and rel_err(pred, out["pred"]) <= TOL
    ae, ae_cfg = load_model(tmp_path / "ae")
    assert ae_cfg["kind"] == "autoencoder"
    with torch.no_grad():
        assert rel_err(ae.encode(torch.from_numpy(points)), out["ae_latent"]) <= TOL
        assert rel_err(ae(torch.from_numpy(points)), out["ae"]) <= TOL
    assert (tmp_path / "lm" / "checkpoints" / "best.pt").is_file() and (tmp_path / "lm" / "config.json").is_file()


def test_plm_imports_as_variant2_with_mu_and_logvar(plm, tmp_path):
    exp, images, _, out = plm
    assert cli_main(["import-weights", "official-tf", "--checkpoint", str(exp / "best"),
                     "--out", str(tmp_path / "plm")]) == 0
    model, config = load_model(tmp_path / "plm")
    assert config["variant"] == "probabilistic" and model.probabilistic and config["ae_run"] is None
    with torch.no_grad():
        mu, logvar = model.encode_image(torch.from_numpy(images))
        pred = model(torch.from_numpy(images))
    assert rel_err(mu, out["mu"]) <= TOL and rel_err(logvar, out["logvar"]) <= TOL
    assert rel_err(pred, out["pred"]) <= TOL


# -- bad input ---------------------------------------------------------------------------------------
@pytest.fixture()
def small(tmp_path):
    """A small TF checkpoint (three variables) at tmp_path/small/best."""
    tf.compat.v1.disable_eager_execution()
    g = tf.Graph()
    rng = np.random.default_rng(3)
    with g.as_default():
        for name, shape in (("a/W", (30, 40)), ("b", (7,)), ("is_training", ())):
            tf.compat.v1.get_variable(name, initializer=_value(name, shape, rng))
        saver = tf.compat.v1.train.Saver()
        (tmp_path / "small").mkdir()
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "small" / "best"))
    return tmp_path / "small" / "best"


def test_truncated_data_and_wrong_crc_are_named(small):
    data = Path(f"{small}.data-00000-of-00001")
    good = data.read_bytes()
    assert tf_checkpoint.read_checkpoint(small)["a/W"].shape == (30, 40)
    data.write_bytes(good[:-100])
    with pytest.raises(CorruptFileError, match="truncated.*'a/W'"):
        tf_checkpoint.read_checkpoint(small)
    entries = tf_checkpoint.read_index(f"{small}.index")[1]
    flipped = bytearray(good)
    flipped[entries["a/W"]["offset"] + 5] ^= 0x40
    data.write_bytes(bytes(flipped))
    with pytest.raises(CorruptFileError, match=r"crc32c.*'a/W'") as exc:
        tf_checkpoint.read_checkpoint(small)
    assert str(data) in str(exc.value)
    data.write_bytes(good)
    index = Path(f"{small}.index")
    raw = bytearray(index.read_bytes())
    raw[10] ^= 0x01  # inside the first data block
    index.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="checksum mismatch in the block"):
        tf_checkpoint.read_checkpoint(small)
    index.write_bytes(bytes(raw[:30]))
    with pytest.raises(CorruptFileError, match="truncated"):
        tf_checkpoint.read_checkpoint(small)


def test_missing_variables_are_all_listed_and_shapes_checked(small, tmp_path):
    with pytest.raises(CorruptFileError, match=r"78 variable\(s\) missing.*psgn_vars/Conv2D/W.*decoder_fc_2/b"):
        official_tf.import_official(small, tmp_path / "out")
    with pytest.raises(CorruptFileError, match=r"'a/W' has shape \[30, 40\], expected \[40, 30\]"):
        tf_checkpoint.read_checkpoint(small, names=["a/W"], shapes={"a/W": (40, 30)})
    assert not (tmp_path / "out").exists()


def test_v1_checkpoint_is_refused_clearly(tmp_path):
    tf.compat.v1.disable_eager_execution()
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.get_variable("a", initializer=np.arange(6, dtype=np.float32))
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "model.ckpt"))
    for path in (tmp_path, tmp_path / "model.ckpt"):
        with pytest.raises(CorruptFileError, match="V1 checkpoint"):
            tf_checkpoint.resolve_prefix(path)
    with pytest.raises(DataError, match="not found"):
        tf_checkpoint.resolve_prefix(tmp_path / "nothing")
