"""An installed lmnet knows nothing of the checkout it was built from: the wheel holds every
subpackage (the method folders included), and ``lmnet demo --help``, ``lmnet infer --help`` and the
registry work from another directory. (The full `pip install .` into a fresh virtual environment,
dependencies included, is the same build; docs/architecture.md.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_built_package_runs_from_elsewhere(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(site), str(REPO)], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LMNET_PROJECT_ROOT", None)

    def run(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=elsewhere,
                              env=env)

    probe = run("-c", "import lmnet, lmnet.registry; print(lmnet.__file__); print(sorted(lmnet.registry.METHODS))")
    assert probe.returncode == 0, probe.stderr
    where, methods = probe.stdout.splitlines()
    assert Path(where).is_relative_to(site) and methods == "['autoencoder', 'image', 'meshgan', 'meshrecon', 'silhouette']"
    for command in ("demo", "infer", "train"):
        res = run("-m", "lmnet", command, "--help")
        assert res.returncode == 0 and res.stdout.startswith(f"usage: lmnet {command}"), res.stderr
    # the demo needs the notebooks: without a checkout around, one clear line, no traceback
    res = run("-m", "lmnet", "demo", "--out", str(tmp_path / "demo"))
    assert res.returncode == 2 and "pass --notebooks DIR" in res.stderr and "Traceback" not in res.stderr
