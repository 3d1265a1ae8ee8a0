"""Training throughput: optimizer steps/s and samples/s of the autoencoder and the image encoder.

One step = forward, loss, backward, Adam update, on synthetic tensors already on the device (no
data loading; see bench_data for that):

- ``ae_step``: PointAutoencoder on (B, 2048, 3) clouds, Chamfer loss (lmnet.losses, Euclidean);
  on CPU (full mode) also with ``backend="brute"`` (dense cdist) side by side;
- ``image_step``: Variant I — frozen AE encoder computes the latent target under no_grad, the
  ImageToPointCloud image encoder regresses it with L1 on (B, 3, 128, 128) raw 0–255 images.

Batch 32 (the official size) everywhere except the CPU image step in quick mode (batch 8, said in
the notes). On CUDA both fp32 and AMP (float16 autocast + GradScaler). Each figure is the median
over repeats of (steps timed / seconds).
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch

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


def _ae_step(device, batch, amp, backend="auto"):
    from lmnet.losses import chamfer_distance
    from lmnet.models import PointAutoencoder

    torch.manual_seed(0)
    model = PointAutoencoder().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    pts = torch.rand(batch, 2048, 3, device=device) - 0.5

    def step():
        ctx = torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()
        with ctx:
            pred = model(pts)
        loss = chamfer_distance(pred.float(), pts, backend=backend)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return step


def _image_step(device, batch, amp, channels_last=False):
    from lmnet.models import ImageToPointCloud, PointAutoencoder, latent_loss

    torch.manual_seed(0)
    teacher = PointAutoencoder().to(device).eval()
    model = ImageToPointCloud("l1", decoder=teacher.decoder).to(device).train()
    opt = torch.optim.Adam(model.trainable_parameters(), lr=5e-5)
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    images = torch.rand(batch, 3, 128, 128, device=device) * 255
    if channels_last:  # NHWC activations and conv weights (faster convolutions on tensor cores)
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16  # as lmnet.train.loop
    pts = torch.rand(batch, 2048, 3, device=device) - 0.5

    def step():
        with torch.no_grad():
            target = teacher.encode(pts)
        ctx = torch.autocast(device.type, dtype=amp_dtype) if amp else contextlib.nullcontext()
        with ctx:
            mu, _ = model.encode_image(images)
        loss = latent_loss(mu.float(), target, "l1")
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return step


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
    img_batch = 8 if quick else 32
    if quick:
        notes.append("quick: CPU image step at batch 8 (batch 32 takes seconds per step on CPU); "
                     "no brute-force Chamfer comparison")
    add(f"image_step B={img_batch}", "cpu fp32", _time_steps(_image_step(cpu, img_batch, False), cpu, 1, repeats),
        img_batch)
    # amp=True on CPU = bfloat16 autocast (what lmnet.train does); compare with fp32 above
    add(f"image_step B={img_batch}", "ours: cpu amp (bf16)",
        _time_steps(_image_step(cpu, img_batch, True), cpu, 1, repeats), img_batch)

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        notes.append(f"CUDA: {torch.cuda.get_device_name(dev)}")
        n = 10 if quick else 50
        for amp in (False, True):
            impl = "cuda amp" if amp else "cuda fp32"
            add("ae_step B=32", impl, _time_steps(_ae_step(dev, 32, amp), dev, n, repeats, warmup=3), 32)
            add("image_step B=32", impl, _time_steps(_image_step(dev, 32, amp), dev, n, repeats, warmup=3), 32)
    else:
        notes.append("no CUDA device here: GPU rows (fp32 / AMP) not measured")
    return {"topic": "train", "rows": rows, "notes": notes}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print_result(run(quick=parser.parse_args().quick))
