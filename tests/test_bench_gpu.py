"""The GPU benchmark: without CUDA it says so and exits 0 writing nothing; its sections run (on the
CPU, tiny sizes) so the first run on a GPU does not fail on a slip in the benchmark itself."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

TINY = {"chamfer": [(2, 64)], "emd_approx": (2, 48), "emd_exact": (2, 48), "train_batch": 2,
        "train_steps": 1, "repeats": 1, "data_models": 1, "workers": (0,), "eval_pairs": 4,
        "emd_repeats": 1, "eval_workers": 1, "train_warmup": 0}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_topic_without_cuda_exits_cleanly(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "gpu", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device" in proc.stdout
    assert not out.exists()  # nothing measured, nothing written


def test_sections_run_on_cpu():
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench_gpu

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows, notes = bench_gpu.measure(torch.device("cpu"), TINY)
    finally:
        torch.set_num_threads(before)
    assert not [n for n in notes if "failed" in n], notes
    cases = " ".join(r["case"] for r in rows)
    for what in ("chamfer", "approx EMD", "exact EMD", "ae_step", "image_step", "DataLoader",
                 "eval full protocol", "one epoch"):
        assert what in cases, what
    grads = [r["value"] for r in rows if r["metric"] == "max |grad - ours|"]
    assert grads and max(grads) < 1e-5  # the matmul KNN finds the same neighbours
    assert all(r["value"] >= 0 for r in rows)
