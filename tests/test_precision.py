"""amp="auto" / True / False: the precision decision, with the CPU capability mocked both ways."""

from __future__ import annotations

import json

import pytest
import torch

from lmnet.errors import ConfigError
from lmnet.train import precision
from lmnet.registry import resolve_train_config
from lmnet.train.precision import cpu_bf16_support, resolve_precision
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.cli import main


@pytest.fixture(autouse=True)
def _fresh_caches():
    cpu_bf16_support.cache_clear()
    precision.measure_cpu_bf16_slowdown.cache_clear()
    yield
    cpu_bf16_support.cache_clear()
    precision.measure_cpu_bf16_slowdown.cache_clear()


def mock_cpu(monkeypatch, *, flags, onednn=True, slowdown=19.3):
    """A CPU with these flags (None: unreadable), oneDNN bf16 support ``onednn`` and a probe that
    measures ``slowdown`` (recorded in ``calls``)."""
    calls = []
    monkeypatch.setattr(precision, "_cpu_flags", lambda: None if flags is None else set(flags))
    monkeypatch.setattr(precision, "_onednn_allows_bf16", lambda: onednn)

    def probe(repeats=2):
        calls.append(repeats)
        return slowdown

    monkeypatch.setattr(precision, "measure_cpu_bf16_slowdown", probe)
    return calls


def test_auto_on_cpu_with_native_bf16(monkeypatch):
    calls = mock_cpu(monkeypatch, flags={"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    p = resolve_precision("auto", "cpu")
    assert p.autocast_dtype is torch.bfloat16 and not p.grad_scaler and p.enabled
    assert p.describe().startswith("bfloat16 autocast (cpu: amp=auto, native bfloat16 (amx_bf16, avx512_bf16))")
    assert calls == []  # decided by the capability check, no timing


def test_auto_on_cpu_without_native_bf16(monkeypatch, capsys):
    calls = mock_cpu(monkeypatch, flags={"avx2", "fma", "avx512f"})
    p = resolve_precision("auto", "cpu")
    assert p.autocast_dtype is None and not p.enabled and p.name == "float32"
    assert "no native bfloat16" in p.reason
    assert calls == [] and capsys.readouterr().err == ""  # no probe, no warning


def test_onednn_capped_below_bf16_counts_as_without(monkeypatch):
    mock_cpu(monkeypatch, flags={"avx512_bf16"}, onednn=False)
    native, why = cpu_bf16_support()
    assert not native and "ONEDNN_MAX_CPU_ISA" in why
    assert resolve_precision("auto", "cpu").autocast_dtype is None


def test_onednn_isa_cap_from_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert precision._onednn_allows_bf16() is False
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert precision._onednn_allows_bf16() is True


def test_unreadable_flags_fall_back_to_the_probe(monkeypatch):
    calls = mock_cpu(monkeypatch, flags=None, slowdown=0.5)
    native, why = cpu_bf16_support()
    assert native and "timed probe" in why and calls
    cpu_bf16_support.cache_clear()
    mock_cpu(monkeypatch, flags=None, slowdown=4.0)
    assert cpu_bf16_support()[0] is False


def test_forced_amp_on_cpu_without_native_bf16_warns_with_the_factor(monkeypatch):
    calls = mock_cpu(monkeypatch, flags={"avx2"}, slowdown=19.3)
    messages = []
    p = resolve_precision(True, "cpu", warn=messages.append)
    assert p.autocast_dtype is torch.bfloat16  # does what was asked
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "amp=true" in messages[0] and "19.3x slower than float32" in messages[0]
    assert "19.3x slower" in p.describe() and calls


def test_forced_amp_warning_goes_to_stderr_by_default(monkeypatch, capsys):
    mock_cpu(monkeypatch, flags={"avx2"}, slowdown=7.0)
    resolve_precision(True, "cpu")
    assert "7.0x slower than float32" in capsys.readouterr().err


def test_forced_amp_on_native_cpu_is_silent(monkeypatch):
    calls = mock_cpu(monkeypatch, flags={"amx_bf16"})
    messages = []
    assert resolve_precision(True, "cpu", warn=messages.append).autocast_dtype is torch.bfloat16
    assert messages == [] and calls == []


@pytest.mark.parametrize("bf16, dtype, scaler", [(True, torch.bfloat16, False), (False, torch.float16, True)])
def test_auto_on_cuda(monkeypatch, bf16, dtype, scaler):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    for amp in ("auto", True):
        p = resolve_precision(amp, torch.device("cuda", 0))
        assert (p.autocast_dtype, p.grad_scaler) == (dtype, scaler)
    assert resolve_precision(False, "cuda").autocast_dtype is None


def test_other_devices_and_false_are_float32():
    assert resolve_precision("auto", "mps").autocast_dtype is None
    assert resolve_precision(False, "cpu").describe() == "float32 (cpu: amp=false)"
    with pytest.raises(ValueError, match="amp must be"):
        resolve_precision("yes", "cpu")


def test_probe_measures_a_ratio():
    factor = precision.measure_cpu_bf16_slowdown(repeats=1)
    assert 0 < factor < 1000


def test_config_accepts_auto_and_bools_only():
    assert resolve_train_config("autoencoder")["amp"] == "auto"
    assert resolve_train_config("autoencoder", {"amp": False})["amp"] is False
    assert resolve_train_config("autoencoder", {"amp": True})["amp"] is True
    for bad in ("yes", 1, None, 0.5):
        with pytest.raises(ConfigError, match="'amp' must be 'auto', true or false"):
            resolve_train_config("autoencoder", {"amp": bad})


def test_run_records_the_precision(monkeypatch, tiny_shapenet, tmp_path):

    mock_cpu(monkeypatch, flags={"avx2"})
    cfg = {"data_root": str(tiny_shapenet.root), "n_points": 1024, "batch_size": 4, "epochs": 1,
           "num_workers": 0, "progress": False, "device": "cpu", "run_dir": str(tmp_path / "run")}
    run = train_autoencoder(cfg)
    saved = json.loads((run / "config.json").read_text())
    assert saved["amp"] == "auto"
    assert saved["precision"].startswith("float32 (cpu: amp=auto, no native bfloat16")
    # the saved config feeds back as a config (precision is run metadata, not a setting)
    assert resolve_train_config("autoencoder", saved)["amp"] == "auto"


def test_info_command_says_what_auto_picks(monkeypatch, capsys):

    mock_cpu(monkeypatch, flags={"avx2"})
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "CPU bfloat16: no native bfloat16" in out and "amp='auto' on cpu: float32" in out
