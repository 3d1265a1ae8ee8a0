#!/usr/bin/env bash
# The GPU check in one command, for a machine with an NVIDIA GPU (no network needed):
#   bash benchmarks/gpu_check.sh [--quick]
# 1. the CUDA tests (values and gradients against the CPU references, EMD inputs staying on the
#    device), 2. `python -m benchmarks --only gpu`. Everything it writes goes to $OUT (default
#    benchmarks/results/gpu-check): nvidia-smi.txt, env.txt, tests.txt, junit.xml, bench.txt and
#    the benchmark's gpu.json / gpu.md (plus the host report).
# Python: $PYTHON, else .venv/bin/python, else python3. It must already have a CUDA build of torch
# and lmnet's requirements (numpy, scipy, numba, Pillow, psutil, tqdm, pytest): this script
# installs nothing. lmnet is imported from this checkout (PYTHONPATH), installed or not.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu-check}"
mkdir -p "$OUT"
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
if ! "$PY" - > "$OUT/env.txt" 2>&1 <<'EOF'
import importlib, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda build", torch.version.cuda)
print("cuda available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
missing = [m for m in ("numpy", "scipy", "numba", "PIL", "psutil", "tqdm", "pytest")
           if importlib.util.find_spec(m) is None]
print("missing modules:", missing or "none")
sys.exit(0 if torch.cuda.is_available() and not missing else 3)
EOF
then
  cat "$OUT/env.txt"
  echo "gpu_check: $PY has no usable CUDA torch or lacks a module (see $OUT/env.txt); nothing run"
  exit 3
fi
cat "$OUT/env.txt"

# the CUDA tests (those marked 'needs CUDA' / 'no CUDA device') and the torch auction's CPU tests
"$PY" -m pytest -q -p no:xdist -p no:cacheprovider -rs --junitxml="$OUT/junit.xml" \
  tests/test_emd_torch.py tests/test_emd.py tests/test_chamfer.py tests/test_rasterizer.py \
  -k "cuda or torch or Torch" 2>&1 | tee "$OUT/tests.txt"
tests_rc=${PIPESTATUS[0]}

"$PY" -m benchmarks --only gpu $QUICK --out "$OUT" 2>&1 | tee "$OUT/bench.txt"
bench_rc=${PIPESTATUS[0]}

echo "gpu_check: tests rc=$tests_rc, benchmark rc=$bench_rc; outputs in $OUT"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
