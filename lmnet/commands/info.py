"""Print what lmnet will run on here: versions, devices, CPU threads and what amp="auto" picks (the
CPU's bfloat16 support decides whether training uses bfloat16 autocast or float32, and so how long
`make demo` takes: see docs/results.md).

Example:  lmnet info
"""

from __future__ import annotations

import argparse

HELP = "show versions, devices and the training precision amp='auto' picks on this machine"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--probe", action="store_true",
                   help="also time bfloat16 against float32 on a few encoder convolutions (a few seconds)")


def run(args) -> int:
    import platform

    import torch

    import lmnet
    from lmnet.train.precision import cpu_bf16_support, cpu_name, measure_cpu_bf16_slowdown, resolve_precision

    print(f"lmnet {lmnet.__version__}, torch {torch.__version__}, Python {platform.python_version()}")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} torch threads, "
          f"kernels {torch.backends.cpu.get_cpu_capability()}")
    native, why = cpu_bf16_support()
    print(f"CPU bfloat16: {why}")
    print(f"training with amp='auto' on cpu: {resolve_precision('auto', 'cpu').name}")
    if args.probe:
        print(f"probe: bfloat16 autocast takes {measure_cpu_bf16_slowdown():.2f}x the float32 time "
              f"(below 1 = faster)")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            dev = torch.device("cuda", i)
            print(f"cuda:{i}: {torch.cuda.get_device_name(i)}; amp='auto': {resolve_precision('auto', dev).name}")
    else:
        print("CUDA: not available")
    return 0
