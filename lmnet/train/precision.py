"""Training precision: what ``amp`` means on the machine a run runs on.

``amp`` (a training-config key) is ``"auto"`` (the default), ``True`` or ``False``:

- ``False``: float32 everywhere.
- ``"auto"``: whatever is fast here.
  - CUDA: bfloat16 autocast where the GPU supports it (Ampere and later), else float16 autocast
    with a ``GradScaler``.
  - CPU: bfloat16 autocast only where the CPU computes bfloat16 natively (x86 AVX512-BF16 or
    AMX-BF16, Arm BF16), otherwise float32. Without native support oneDNN emulates bfloat16, and an
    image-encoder step became 19-25x *slower* than float32 (AMD EPYC with AVX2 only, measured;
    ``python -m benchmarks.bench_train`` shows the ratio on your machine).
  - other devices (MPS, ...): float32.
- ``True``: mixed precision even where it is slow (bfloat16 on any CPU; on CUDA as ``"auto"``). On
  a CPU without native bfloat16 a one-line warning gives the slowdown measured by a tiny probe.

The CPU decision is a capability check, not a timing, so it is the same on a busy machine: the CPU
flags (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS) must list a bfloat16 instruction set, and
oneDNN, which runs PyTorch's CPU convolutions, must be allowed to use it (``ONEDNN_MAX_CPU_ISA``
capped below ``AVX512_CORE_BF16`` switches it off, which is also how a bf16 CPU can be made to
behave like one without). Where neither source can be read, a timed probe decides. Every answer is
cached per process. The resolved precision is logged at the start of training and written to the
run's ``config.json`` (key ``precision``).
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass

import torch

from lmnet.runs.config import AMP_CHOICES


# x86 / Arm CPU flags that mean bfloat16 arithmetic in hardware.
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
ARM_BF16_FLAGS = ("bf16",)
# ONEDNN_MAX_CPU_ISA values (oneDNN's names) that keep oneDNN off its bfloat16 instructions.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")


@dataclass(frozen=True)
class Precision:
    """What a training run computes in: ``autocast_dtype`` None = float32."""

    device_type: str
    autocast_dtype: torch.dtype | None
    grad_scaler: bool
    reason: str

    @property
    def enabled(self) -> bool:
        return self.autocast_dtype is not None

    @property
    def name(self) -> str:
        """``"float32"``, ``"bfloat16 autocast"`` or ``"float16 autocast + GradScaler"``."""
        if self.autocast_dtype is None:
            return "float32"
        name = f"{str(self.autocast_dtype).removeprefix('torch.')} autocast"
        return name + (" + GradScaler" if self.grad_scaler else "")

    def describe(self) -> str:
        """One line for logs and ``config.json``: ``"bfloat16 autocast (cpu: ...)"``."""
        return f"{self.name} ({self.device_type}: {self.reason})"


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags, lower case; None where they cannot be read."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip().lower() in ("flags", "features"):
                        return set(value.lower().split())
        except OSError:
            return None
        return None
    if sys.platform == "darwin":
        key = "hw.optional.arm.FEAT_BF16" if platform.machine() == "arm64" else "hw.optional.avx512bf16"
        try:
            out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return set()  # the key does not exist on this CPU: no such feature
        return {"bf16"} if out.stdout.strip() == "1" else set()
    return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _onednn_allows_bf16() -> bool:
    """False when ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) caps oneDNN below
    its bfloat16 instructions, or when oneDNN reports no bfloat16 support at all."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if cap in ONEDNN_ISAS_WITHOUT_BF16:
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # no oneDNN query in this build: the CPU flags decide


@functools.cache
def cpu_bf16_support() -> tuple[bool, str]:
    """``(native, how it was decided)``: whether this CPU computes bfloat16 in hardware and PyTorch's
    CPU kernels may use it. Cached per process."""
    flags = _cpu_flags()
    if flags is None:
        slowdown = measure_cpu_bf16_slowdown()
        return slowdown < 1.0, f"CPU flags unreadable; timed probe: bfloat16 {slowdown:.2f}x the float32 time"
    found = sorted(flags & set(X86_BF16_FLAGS + ARM_BF16_FLAGS))
    if not found:
        return False, "no native bfloat16 (CPU flags list no avx512_bf16 / amx_bf16 / bf16)"
    if not _onednn_allows_bf16():
        return False, f"CPU has {', '.join(found)} but oneDNN is not allowed to use it (ONEDNN_MAX_CPU_ISA)"
    return True, f"native bfloat16 ({', '.join(found)})"


@functools.cache
def measure_cpu_bf16_slowdown(repeats: int = 2) -> float:
    """Time of a forward + backward in bfloat16 autocast divided by its float32 time (best of
    ``repeats`` each, after a warm-up) through the image encoder's first four convolutions at
    batch 2, 128x128, on the CPU: above 1 means bfloat16 is slower. About 1 s where bfloat16 is
    native, a few seconds where it is emulated (7x slower there, 25x for a whole encoder step).
    Cached."""
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(64, 64, 3, padding=1))
    x = torch.rand(2, 3, 128, 128, generator=gen) * 255

    def best(autocast: bool) -> float:
        times = []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                y = net(x)
            y.float().sum().backward()
            if i:  # the first call is the warm-up
                times.append(time.perf_counter() - t0)
        return min(times)

    return best(True) / max(best(False), 1e-9)


def resolve_precision(amp, device: torch.device | str, *, warn=None) -> Precision:
    """The :class:`Precision` that ``amp`` (``"auto"``, True or False) gives on ``device``.

    ``warn(message)`` receives the one-line warning for ``amp=True`` on a CPU without native
    bfloat16 (default: print to stderr)."""
    if amp not in AMP_CHOICES or not isinstance(amp, (bool, str)):
        raise ValueError(f"amp must be one of 'auto', true, false; got {amp!r}")
    device = torch.device(device)
    kind = device.type
    if amp is False:
        return Precision(kind, None, False, "amp=false")
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(kind, torch.bfloat16, False, f"amp={amp}, the GPU supports bfloat16")
        return Precision(kind, torch.float16, True, f"amp={amp}, the GPU has no bfloat16")
    if kind != "cpu":
        return Precision(kind, None, False, f"amp={amp}: no mixed precision on {kind}")
    native, why = cpu_bf16_support()
    if native:
        return Precision(kind, torch.bfloat16, False, f"amp={amp}, {why}")
    if amp == "auto":
        return Precision(kind, None, False, f"amp=auto, {why}")
    factor = measure_cpu_bf16_slowdown()
    message = (f"warning: amp=true forces bfloat16 autocast on a CPU without native bfloat16 ({why}): "
               f"measured {factor:.1f}x slower than float32 on a probe (4 encoder convolutions); "
               f"amp='auto' or false trains in float32")
    (warn or (lambda m: print(m, file=sys.stderr)))(message)
    return Precision(kind, torch.bfloat16, False, f"amp=true, {why}; {factor:.1f}x slower than float32 (probe)")
