"""Training throughput: optimizer steps/s and samples/s of the autoencoder and the image encoder.

One step = forward, loss, then :func:`lmnet.train.step.optimizer_step` (the trainers' update), on synthetic
tensors already on the device (no data loading; see bench_data for that):

- ``ae_step``: PointAutoencoder on (B, 2048, 3) clouds, Chamfer loss (lmnet.losses, Euclidean);
  on CPU (full mode) also with ``backend="brute"`` (dense cdist) side by side;
- ``ae_step B=16 (encoder layout)``: the autoencoder step of the demo (batch 16, Chamfer), with
  lmnet's encoder (points as ``(B·N, C)`` rows, one GEMM per layer) against the same weights run
  as kernel-1 ``Conv1d`` on ``(B, C, N)`` (what the encoder did before), timed in turns, float32
  and (where native) bf16 autocast;
- ``ae_step B=16 (encoder_points)``: the same step with the encoder reading all 2048 points, or a
  random 1024- or 512-subset while the Chamfer compares with all 2048 (``encoder_points``), in turns;
- ``image_step``: Variant I — frozen AE encoder computes the latent target under no_grad, the
  ImageToPointCloud image encoder regresses it with L1 on (B, 3, 128, 128) raw 0–255 images.

Batch 32 (the official size) everywhere except the CPU image step in quick mode (batch 8, said in
the notes). On CUDA both fp32 and AMP (float16 autocast + GradScaler). Each figure is the median
over repeats of (steps timed / seconds).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import time

import torch

from lmnet.train.step import optimizer_step
from lmnet.losses.chamfer import chamfer_distance
from lmnet.models import PointAutoencoder
from lmnet.losses.latent import latent_loss
from lmnet.models import ImageToPointCloud, PointAutoencoder
from lmnet.train.precision import cpu_bf16_support, resolve_precision

try:
    from benchmarks._common import median_time, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, print_result

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(step, device, n_steps: int, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_steps):
            step()
        _sync(device)
        rates.append(n_steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def _raise(what: str) -> None:
    raise FloatingPointError(what)


def _ae_step(device, batch, amp, backend="auto"):

    torch.manual_seed(0)
    model = PointAutoencoder().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    pts = torch.rand(batch, 2048, 3, device=device) - 0.5

    def step():
        ctx = torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()
        with ctx:
            pred = model(pts)
        optimizer_step(chamfer_distance(pred.float(), pts, backend=backend), opt, scaler, on_non_finite=_raise)

    return step


def _conv1d_encode(encoder, points):
    """The reference layout of :class:`~lmnet.models.point_ae.PointEncoder`: its kernel-1 ``Conv1d``
    stack on ``(B, 3, N)``, then the max over N (the same weights and result)."""
    return encoder.mlp(points.transpose(1, 2)).max(dim=2).values


def _ae_layout_step(batch, dtype, conv1d: bool, encoder_points: int = 0):
    """One CPU autoencoder step at ``batch`` with autocast ``dtype`` (None = float32), the encoder
    run as rows (lmnet) or as ``Conv1d`` (``conv1d``); ``encoder_points`` k > 0: the encoder reads a
    random k-subset of the 2048 points and the Chamfer compares with all of them (the autoencoder
    config's ``encoder_points``)."""
    torch.manual_seed(0)
    model = PointAutoencoder().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pts = torch.rand(batch, 2048, 3) - 0.5

    def step():
        ctx = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        seen = pts[:, torch.randperm(2048)[:encoder_points]] if encoder_points else pts
        with ctx:
            z = _conv1d_encode(model.encoder, seen) if conv1d else model.encoder(seen)
            pred = model.decoder(z)
        optimizer_step(chamfer_distance(pred.float(), pts), opt, None, on_non_finite=_raise)

    return step


def _image_step(device, batch, amp, channels_last=False, compile=False):
    """One Variant I step; ``amp``: autocast dtype (None = float32); ``channels_last``: NHWC
    activations (model and images converted once); ``compile``: the image encoder through
    ``torch.compile`` (inductor; the first step compiles, it is the warm-up)."""

    torch.manual_seed(0)
    teacher = PointAutoencoder().to(device).eval()
    model = ImageToPointCloud("l1", decoder=teacher.decoder).to(device).train()
    images = torch.rand(batch, 3, 128, 128, device=device) * 255
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=5e-5)
    if compile:
        model.encoder = torch.compile(model.encoder)
    scaler = torch.amp.GradScaler("cuda") if amp is torch.float16 else None
    pts = torch.rand(batch, 2048, 3, device=device) - 0.5

    def step():
        with torch.no_grad():
            target = teacher.encode(pts)
        ctx = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        with ctx:
            mu, _ = model.encode_image(images)
        optimizer_step(latent_loss(mu.float(), target, "l1"), opt, scaler, on_non_finite=_raise)

    return step


def _interleaved(steps: dict, device, n_steps: int, repeats: int) -> dict:
    """Steps/s of each of ``steps`` ({name: step}), timed in turns (a, b, c, a, b, c, ...) so that a
    busy or throttling machine slows every variant alike; median over ``repeats`` turns."""
    for step in steps.values():
        step()  # warm-up: first-call allocations, oneDNN primitive creation
    _sync(device)
    rates = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(n_steps):
                step()
            _sync(device)
            rates[name].append(n_steps / (time.perf_counter() - t0))
    return {name: statistics.median(r) for name, r in rates.items()}


def run(quick: bool = False) -> dict:
    rows, notes = [], []
    repeats = 3 if quick else 5

    def add(case, impl, rate, batch):
        rows.append({"case": case, "impl": impl, "metric": "steps/s", "value": rate, "unit": "1/s"})
        rows.append({"case": case, "impl": impl, "metric": "samples/s", "value": rate * batch, "unit": "1/s"})

    cpu = torch.device("cpu")
    notes.append(f"CPU: torch {torch.__version__}, {torch.get_num_threads()} threads")
    ae_steps = 1 if quick else 3
    for backend in (("auto",) if quick else ("auto", "brute")):
        add("ae_step B=32", f"cpu fp32 chamfer={backend}",
            _time_steps(_ae_step(cpu, 32, False, backend), cpu, ae_steps, repeats), 32)
    native, why = cpu_bf16_support()
    layouts = {}  # (case, impl) -> step
    for dt_name, dt in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
        if dt is None or native:
            case = f"ae_step B=16 cpu {dt_name} (encoder layout)"
            layouts[(case, "ours (rows)")] = _ae_layout_step(16, dt, conv1d=False)
            layouts[(case, "Conv1d")] = _ae_layout_step(16, dt, conv1d=True)
            case = f"ae_step B=16 cpu {dt_name} (encoder_points)"
            layouts[(case, "all 2048 points (published)")] = _ae_layout_step(16, dt, conv1d=False)
            layouts[(case, "encoder_points=1024")] = _ae_layout_step(16, dt, conv1d=False, encoder_points=1024)
            layouts[(case, "encoder_points=512")] = _ae_layout_step(16, dt, conv1d=False, encoder_points=512)
    for (case, impl), rate in _interleaved(layouts, cpu, 2 if quick else 5, repeats).items():
        add(case, impl, rate, 16)
    img_batch = 8 if quick else 32
    if quick:
        notes.append("quick: CPU image step at batch 8 (batch 32 takes seconds per step on CPU); "
                     "no brute-force Chamfer comparison")

    notes.append(f"CPU bfloat16: {why}; amp='auto' trains in {resolve_precision('auto', cpu).name} here")
    # float32 and bfloat16 autocast (amp=True on CPU), each NCHW and channels_last, timed in turns
    variants = {"cpu fp32": (None, False), "cpu fp32 channels_last": (None, True),
                "cpu amp (bf16)": (torch.bfloat16, False), "cpu amp (bf16) channels_last": (torch.bfloat16, True)}
    steps = {name: _image_step(cpu, img_batch, dt, cl) for name, (dt, cl) in variants.items() if native or dt is None}
    if not quick and shutil.which(os.environ.get("CXX", "g++")):
        steps["cpu fp32 torch.compile"] = compiled = _image_step(cpu, img_batch, None, False, compile=True)
        t0 = time.perf_counter()
        compiled()
        notes.append(f"torch.compile (inductor): first step incl. compilation {time.perf_counter() - t0:.0f} s")
    rates = _interleaved(steps, cpu, 1, repeats)
    if not native:  # emulated bf16 takes minutes per step at batch 32: one timed step each
        notes.append("no native bf16: the bf16 rows are one timed step each (after a warm-up step)")
        for name, (dt, cl) in variants.items():
            if dt is not None:
                rates[name] = _time_steps(_image_step(cpu, img_batch, dt, cl), cpu, 1, 1)
    auto = f"cpu {'amp (bf16)' if native else 'fp32'} channels_last"
    for name, rate in rates.items():
        add(f"image_step B={img_batch}", ("ours (amp=auto): " if name == auto else "") + name, rate, img_batch)
    notes.append(f"bf16 / fp32 step time on this CPU: {rates['cpu fp32'] / rates['cpu amp (bf16)']:.2f}x "
                 f"(NCHW), {rates['cpu fp32 channels_last'] / rates['cpu amp (bf16) channels_last']:.2f}x "
                 "(channels_last); below 1 = bf16 faster")

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        notes.append(f"CUDA: {torch.cuda.get_device_name(dev)}")
        n = 10 if quick else 50
        for amp in (False, True):
            impl = "cuda amp" if amp else "cuda fp32"
            add("ae_step B=32", impl, _time_steps(_ae_step(dev, 32, amp), dev, n, repeats, warmup=3), 32)
            dtype = resolve_precision("auto", dev).autocast_dtype if amp else None
            add("image_step B=32", impl, _time_steps(_image_step(dev, 32, dtype), dev, n, repeats, warmup=3), 32)
    else:
        notes.append("no CUDA device here: GPU rows (fp32 / AMP) not measured")
    return {"topic": "train", "rows": rows, "notes": notes}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print_result(run(quick=parser.parse_args().quick))
