"""Fault injection, round 2: imports check what they import, and values a user sets are range-checked.

Each test reproduces a case of a hostile probe that used to end in a silent wrong result (a plm
checkpoint imported as Variant I without its log σ² head, NaN or integer weights imported with exit
code 0, an imported run switching input convention, a background of 300, a dropped ``--set`` key,
empty val/test splits) or in a traceback (``--ratios nan``, ``--seed -1``), and asserts the clear
error (one line, exit code 2) or the right result that replaced it. Checkpoints are built in the
published formats with lmnet's own writers (the TF one: :mod:`lmnet.weights.tf_writer`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image
import torch
from test_import_port import REFERENCE, make_state
from test_methods import _materialise

from lmnet import registry
from lmnet.cli import main as cli_main
from lmnet.data import splits
from lmnet.data.inputs import run_background
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.infer import reconstruct
from lmnet.weights import official_tf, port
from lmnet.weights.tf_writer import write_checkpoint

AE_SCOPE = official_tf.AE_SCOPE


def _one_line_error(capsys, argv, *needles) -> str:
    """``lmnet argv`` ends with exit code 2 and one stderr line (no traceback) holding every needle."""
    assert cli_main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert re.search(needle, err), (needle, err)
    return err


def _usage_error(capsys, argv, match) -> None:
    """argparse refuses ``argv`` naming the option (exit code 2, no traceback)."""
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and re.search(match, err) and "Traceback" not in err, err


@pytest.fixture(scope="module")
def tf_checkpoints(tmp_path_factory):
    """The official lm and plm checkpoints (stand-in weights, published names and shapes)."""
    root = tmp_path_factory.mktemp("official")
    for name, variant in (("lm", "l1"), ("plm", "probabilistic")):
        write_checkpoint(root / name / "best" / "best", official_tf.random_variables(variant, seed=0))
    return root


@pytest.fixture(scope="module")
def port_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("port")
    for name, key, seed in (("ae", "autoencoder", 0), ("normal", "image_encoder_normal", 1),
                            ("variational", "image_encoder_variational", 2)):
        torch.save(make_state(REFERENCE[key], seed), root / f"{name}.pth")
    return root


# --------------------------------------------------------------------------------------------
# 1. the variant asked for must be the one in the file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["tf-plm-as-l1", "tf-lm-as-probabilistic", "pretrained-plm-as-official-lm",
                                  "port-variational-as-l1", "port-normal-as-probabilistic",
                                  "pretrained-variational-as-port-l2"])
def test_a_variant_that_does_not_match_the_heads_is_refused_naming_both(case, tf_checkpoints, port_files, tmp_path,
                                                                        capsys):
    out = tmp_path / "out"
    v1, v2 = "Variant I", "Variant II"
    if case == "tf-plm-as-l1":  # used to import as `experiment: lm`, the log σ² head dropped
        argv = ["import-weights", "official-tf", "--checkpoint", str(tf_checkpoints / "plm"), "--variant", "l1",
                "--out", str(out)]
        needles = ["plm/best/best.index", f"holds {v2}", f"--variant l1 asks for {v1}", "drop its log sigma"]
    elif case == "tf-lm-as-probabilistic":
        argv = ["import-weights", "official-tf", "--checkpoint", str(tf_checkpoints / "lm"), "--variant",
                "probabilistic", "--out", str(out)]
        needles = ["lm/best/best.index", f"holds {v1}", f"asks for {v2}", "import it as variant 'l1'"]
    elif case == "pretrained-plm-as-official-lm":
        archive = tmp_path / "lm.zip"  # a plm checkpoint in a zip given as the lm download
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
            for f in sorted((tf_checkpoints / "plm" / "best").iterdir()):
                zf.write(f, f"lm/best/{f.name}")
        argv = ["pretrained", "download", "official-lm", "--out", str(out), "--from-file", str(archive)]
        needles = [f"holds {v2}", f"official-lm .*asks for {v1}", "official-plm"]
    elif case == "port-variational-as-l1":
        argv = ["import-weights", "port", "--autoencoder", str(port_files / "ae.pth"), "--image-encoder",
                str(port_files / "variational.pth"), "--variant", "l1", "--out", str(out)]
        needles = ["variational.pth", f"holds a {v2}", f"--variant l1 asks for a {v1}", "drop its log sigma"]
    elif case == "port-normal-as-probabilistic":
        argv = ["import-weights", "port", "--autoencoder", str(port_files / "ae.pth"), "--image-encoder",
                str(port_files / "normal.pth"), "--variant", "probabilistic", "--out", str(out)]
        needles = ["normal.pth", f"holds a {v1}", f"asks for a {v2}", "missing keys: mu.weight"]
    else:
        argv = ["pretrained", "download", "port-l2", "--out", str(out), "--from-file",
                str(port_files / "variational.pth"), "--ae-from-file", str(port_files / "ae.pth")]
        needles = [f"holds a {v2}", f"port-l2 .*asks for a {v1}", "port-prob-5.5"]
    _one_line_error(capsys, argv, *needles)
    assert not (out / "config.json").exists() and not (out / "official-lm" / "config.json").exists()
    assert not (out / "port-l2").exists()


def test_matching_variants_still_import(tf_checkpoints, tmp_path):
    """The check refuses only mismatches: a plm with the detected or the right variant imports as Variant II."""
    for variant in (None, "probabilistic"):
        out = tmp_path / f"plm-{variant}"
        official_tf.import_official(tf_checkpoints / "plm", out, variant=variant)
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["variant"] == "probabilistic" and cfg["source"]["experiment"] == "plm"


# --------------------------------------------------------------------------------------------
# 2. every imported tensor is floating point and finite
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, match", [
    ("psgn_vars/Conv2D_3/W", np.nan, r"variable 'psgn_vars/Conv2D_3/W' holds 1 NaN or infinite value"),
    (f"{AE_SCOPE}/decoder_fc_2/b", np.inf, r"variable 'pointnet_ae/pointnet_ae/decoder_fc_2/b' holds 1 NaN or inf"),
    ("psgn_vars/FullyConnected/b", "int32", r"variable 'psgn_vars/FullyConnected/b' has dtype int32; weights must"),
    (f"{AE_SCOPE}/encoder_conv_layer_1_bnorm/moving_variance", -1.0, r"BatchNorm variance and holds 1 negative"),
])
def test_official_tensors_that_are_not_usable_weights_are_refused(name, value, match, tmp_path, capsys):
    v = official_tf.random_variables("l1", seed=0)
    if value == "int32":
        v[name] = np.arange(v[name].size, dtype=np.int32).reshape(v[name].shape)
    else:
        v[name].flat[0] = value
    write_checkpoint(tmp_path / "bad" / "best", v)
    _one_line_error(capsys, ["import-weights", "official-tf", "--checkpoint", str(tmp_path / "bad"), "--out",
                             str(tmp_path / "out"), "--ae-out", str(tmp_path / "ae")],
                    re.escape(str(tmp_path / "bad" / "best.data-00000-of-00001")), match)
    assert not (tmp_path / "out").exists() and not (tmp_path / "ae").exists()


@pytest.mark.parametrize("part, key, change, match", [
    ("image", "base.1.weight", "nan", r"key 'base.1.weight' holds 1 NaN or infinite value"),
    ("ae", "decoder.fc3.bias", "inf", r"key 'decoder.fc3.bias' holds 1 NaN or infinite value"),
    ("image", "latent.bias", "int", r"key 'latent.bias' has dtype torch.int64; weights must be floating point"),
    ("ae", "encoder.bn2.running_var", "negative", r"key 'encoder.bn2.running_var' is a BatchNorm variance"),
    ("ae", "encoder.bn1.num_batches_tracked", "float", r"'encoder.bn1.num_batches_tracked' is a counter"),
])
def test_port_tensors_that_are_not_usable_weights_are_refused(part, key, change, match, port_files, tmp_path,
                                                             capsys):
    src = port_files / ("normal.pth" if part == "image" else "ae.pth")
    sd = torch.load(src, weights_only=True)
    if change == "int":
        sd[key] = sd[key].long()
    elif change == "float":
        sd[key] = sd[key].float()
    else:
        sd[key].view(-1)[0] = {"nan": float("nan"), "inf": float("inf"), "negative": -0.5}[change]
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    files = {"ae": port_files / "ae.pth", "image": port_files / "normal.pth", part: bad}
    _one_line_error(capsys, ["import-weights", "port", "--autoencoder", str(files["ae"]), "--image-encoder",
                             str(files["image"]), "--variant", "l1", "--out", str(tmp_path / "out")],
                    re.escape(str(bad)), match)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# 3. a run's input convention never switches silently
# --------------------------------------------------------------------------------------------
def _without(run, *keys):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k not in keys}))


def test_imported_run_without_image_input_keeps_the_stored_rgb_input(tf_checkpoints, tmp_path):
    """Right result: imports were only ever written with ``stored_rgb`` (they record it since the
    first import), so an imported run whose config lost the key still gets the PNG's RGB as stored,
    not the white composite (its input mean was 26.5, the composite's 217.3)."""
    run = tmp_path / "lm"
    official_tf.import_official(tf_checkpoints / "lm", run)
    rng = np.random.default_rng(0)
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[32:96, 32:96, :3] = rng.integers(0, 256, (64, 64, 3))
    rgba[32:96, 32:96, 3] = 255  # an object on a transparent background
    before = reconstruct([rgba], run)
    keyless = tmp_path / "keyless"
    shutil.copytree(run, keyless)
    _without(keyless, "image_input")
    _, cfg = registry.load_model(keyless)
    assert "image_input" not in cfg and run_background(cfg) is None
    np.testing.assert_array_equal(reconstruct([rgba], keyless), before)
    composite = tmp_path / "composite"  # the convention it used to switch to gives another prediction
    shutil.copytree(run, composite)
    cfg = json.loads((composite / "config.json").read_text())
    (composite / "config.json").write_text(json.dumps({**cfg, "image_input": "composite"}))
    assert np.abs(reconstruct([rgba], composite) - before).max() > 1e-4


def test_trained_run_without_image_input_is_refused_and_old_runs_keep_composite(tmp_path, capsys):
    """A run with ``arch`` was written with ``image_input`` (both keys came in one commit), so one
    without it had its config edited: refused naming the key and the file. A run from before both
    keys composited over its background, and still does."""
    edited = tmp_path / "edited"
    _materialise("image", edited)
    _without(edited, "image_input")
    with pytest.raises(ConfigError, match=r"edited/config.json: key 'image_input' is missing.*'lmnet'"):
        registry.load_model(edited)
    photo = tmp_path / "photo.png"  # a real image: the image header is checked before the model loads
    Image.new("RGB", (16, 16), (90, 120, 150)).save(photo)
    _one_line_error(capsys, ["infer", "--checkpoint", str(edited), "--images", str(photo), "--out",
                             str(tmp_path / "o")], "key 'image_input' is missing")
    older = tmp_path / "older"
    _materialise("image", older)
    _without(older, "image_input", "arch")
    assert run_background(registry.load_model(older)[1]) == 255.0
    for bad, match in (({"image_input": "rgba"}, r"'image_input' must be one of \['composite', 'stored_rgb'\]"),):
        cfg = json.loads((older / "config.json").read_text())
        (older / "config.json").write_text(json.dumps({**cfg, **bad}))
        with pytest.raises(ConfigError, match=match):
            registry.load_model(older)


# --------------------------------------------------------------------------------------------
# 4. values a user sets are range-checked where their meaning is defined
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, key, value, valid", [
    ("image", "background", 300.0, r"in \[0, 255\]"),
    ("image", "background", -1.0, r"in \[0, 255\]"),
    ("image", "lambda_div", -5.0, ">= 0"),
    ("image", "lambda_div", float("nan"), ">= 0"),
    ("image", "alpha", -0.2, ">= 0"),
    ("image", "theta_deg", float("inf"), "> 0"),
    ("image", "logvar_head_lr", float("nan"), "None or a finite number > 0"),
    ("image", "weight_decay_logvar", float("inf"), "None or a finite number >= 0"),
    ("silhouette", "background", 256.0, r"in \[0, 255\]"),
    ("silhouette", "weight_chamfer", float("nan"), ">= 0"),
    ("silhouette", "weight_mask_coverage", -1.0, ">= 0"),
    ("silhouette", "decoder_init_scale", float("inf"), ">= 0"),
    ("silhouette", "sigma_start", float("inf"), "> 0"),
])
def test_out_of_range_config_values_are_refused_naming_key_value_and_range(kind, key, value, valid):
    overrides = {"ae_run": "x", "variant": "probabilistic"} if kind == "image" else {}
    with pytest.raises(ConfigError) as exc:
        registry.resolve_train_config(kind, {**overrides, key: value})
    msg = str(exc.value)
    assert f"'{key}'" in msg and re.search(valid, msg) and f"got {value!r}" in msg, msg


def test_chamfer_weights_must_be_finite_and_train_something():
    with pytest.raises(ConfigError, match=r"'chamfer_weights' \(loss weights\) must be two finite non-negative"):
        registry.resolve_train_config("autoencoder", {"chamfer_weights": [1.0, float("inf")]})
    with pytest.raises(ConfigError, match=r"'chamfer_weights' is \[0.0, 0.0\].*nothing to train"):
        registry.resolve_train_config("autoencoder", {"chamfer_weights": [0, 0]})


@pytest.mark.parametrize("sets, needle", [
    (["background=300"], r"'background' \(grey level of the composite background\) must be a finite number in "
                         r"\[0, 255\], got 300.0"),
    (["lambda_div=-5"], r"'lambda_div' \(weight of the diversity loss\) must be a finite number >= 0, got -5.0"),
])
def test_train_cli_refuses_out_of_range_values_in_one_line(sets, needle, capsys):
    argv = ["train", "variant2", "--print-config", "--set", "ae_run=x"]
    for s in sets:
        argv += ["--set", s]
    _one_line_error(capsys, argv, needle)


def test_demo_set_with_a_misspelt_key_is_an_error_listing_the_valid_keys(tmp_path, capsys):
    err = _one_line_error(capsys, ["demo", "--out", str(tmp_path / "demo"), "--set", "ae_epoch=5"],
                          r"--set ae_epoch: no notebook the demo runs has this key; valid keys are: ")
    assert "ae_epochs" in err and "spread_items" in err
    assert not (tmp_path / "demo").exists()  # refused before anything is written


def test_synth_with_too_few_models_names_the_empty_splits(tmp_path, capsys, caplog):
    """Decision: a warning, not an error (a 1-model set is a fine format check); it names each empty
    split, the counts per category and the 3 models per category the 60/20/20 split needs, and the
    summary marks the empty split files."""
    with caplog.at_level(logging.WARNING, logger="lmnet.data"):
        assert cli_main(["synth", "--out", str(tmp_path), "--categories", "chair", "--models", "2", "--workers",
                         "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"split val .*\(0 models: EMPTY\)", out) and re.search(r"split test .*\(0 models: EMPTY\)", out)
    for name in ("val", "test"):
        assert re.search(rf"split '{name}' \(ratio 0.2\) has no model of 03001627 \(2 models: train 2, val 0, "
                         rf"test 0\); with ratios 0.6/0.2/0.2 every split needs at least 3 models per category",
                         caplog.text), caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lmnet.data"):
        s = splits.make_splits({"03001627": ["a", "b", "c"]})
    assert all(s[n] for n in splits.SPLIT_NAMES) and not caplog.text
    assert splits.min_models((0.8, 0.2, 0.0)) == 3 and splits.min_models((0.6, 0.2, 0.2)) == 3


@pytest.mark.parametrize("ratios", ["nan,0.2,0.2", "inf,1,1", "1,-1,1"])
def test_split_ratios_that_are_not_finite_proportions_are_one_line(ratios, tmp_path, capsys):
    (tmp_path / "models.txt").write_text("03001627/a\n03001627/b\n03001627/c\n")
    _one_line_error(capsys, ["split", "--models", str(tmp_path / "models.txt"), "--out", str(tmp_path / "s"),
                             "--ratios", ratios], r"ratios must be three finite non-negative numbers with a "
                                                 r"positive sum, got \(")
    assert not (tmp_path / "s").exists()
    with pytest.raises(DataError, match="seed must be a whole number >= 0, got -1"):
        splits.make_splits({"03001627": ["a"]}, seed=-1)


@pytest.mark.parametrize("argv, match", [
    (["split", "--root", "r", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["synth", "--out", "o", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["synth", "--out", "o", "--models", "0"], "--models: must be >= 1, got 0"),
    (["synth", "--out", "o", "--format", "pix3d", "--photos", "0"], "--photos: must be >= 1, got 0"),
    (["synth", "--out", "o", "--workers", "0"], "--workers: must be >= 1, got 0"),
    (["pretrained", "download", "official-lm", "--timeout", "-1"], "--timeout: must be a finite number > 0"),
])
def test_out_of_range_command_numbers_are_usage_errors(argv, match, capsys):
    _usage_error(capsys, argv, match)


def test_port_key_lists_are_capped(port_files, tmp_path):
    """An image-encoder file given as the autoencoder: the error names the first keys and how many more."""
    with pytest.raises(CorruptFileError, match=r"missing keys: encoder.conv1.weight, .* \(and 43 more\); "
                                               r"unexpected keys: base.0.0.weight, .* \(and 26 more\)$"):
        port.import_port(port_files / "normal.pth", port_files / "normal.pth", "l1", tmp_path / "out")
