"""The rendering notebook in a real JupyterLab: started on 127.0.0.1, opened in headless Chromium,
every cell run from the front end (Run All Cells), the ipywidgets browser rendered
(``tools/jupyterlab_check.py``). Skipped where Debian's ``chromium`` or JupyterLab is missing;
``.ci/run`` installs both."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmnet.notebook import TINY_OVERRIDES as TINY

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.notebooks
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install -y chromium)")
@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None or importlib.util.find_spec("websocket") is None,
                    reason="jupyterlab / websocket-client not installed")
def test_rendering_notebook_runs_in_jupyterlab(tmp_path):
    overrides = {**TINY, "?data_root": str(tmp_path / "data"), "?run_root": str(tmp_path / "runs"),
                 "?figures_dir": str(tmp_path / "figures")}
    shot = tmp_path / "lab.png"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "jupyterlab_check.py"),
                           "--notebook", str(REPO / "notebooks" / "05_rendering.ipynb"),
                           "--overrides", json.dumps(overrides), "--out", str(shot), "--timeout", "400"],
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ipywidgets browser image rendered: [" in proc.stdout
    assert "cell error" not in proc.stdout
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size[0] == 1400 and im.size[1] > 500
        # the page is not blank: the widget's rendered clouds and the lab's chrome give many colours
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 200
    assert (tmp_path / "figures" / "turntable.gif").is_file()  # the kernel ran the notebook's cells
