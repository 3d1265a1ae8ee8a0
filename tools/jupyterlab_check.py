"""Check in a real JupyterLab that a notebook runs and the ipywidgets browser renders.

Starts JupyterLab on 127.0.0.1 (random port, token auth) in a temporary folder, opens a notebook
in headless Chromium (Debian ``chromium``; driven over the DevTools protocol with
``websocket-client``), runs its cells from the front end (JupyterLab's Run All Cells command, so
outputs and widgets are rendered by JupyterLab itself), waits for an ipywidgets view holding the
browser's image, and saves a screenshot.

    .venv/bin/python tools/jupyterlab_check.py --out runs/lab_check.png
    .venv/bin/python tools/jupyterlab_check.py --notebook runs/demo/notebooks/05_rendering.ipynb --out x.png

Without ``--notebook`` a small self-contained notebook is used (a few procedural clouds in
``lmnet.render.browser.browse``). Needs: ``apt-get install -y chromium``,
``pip install jupyterlab websocket-client``. Exit code 0 when the widget rendered, 1 otherwise.

Cells are run with JupyterLab's own ``notebook:run-all-cells`` command (Run > Run All Cells), through
the application object that ``--LabApp.expose_app_in_browser`` puts on ``window.jupyterapp``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHECK_CELLS = [
    "import numpy as np\nfrom lmnet.render.browser import browse\n"
    "rng = np.random.default_rng(0)\n"
    "def blob(sx, sy, sz):\n"
    "    p = rng.normal(size=(2048, 3)); p /= np.linalg.norm(p, axis=1, keepdims=True)\n"
    "    return (p * [sx, sy, sz] * 0.4).astype(np.float32)\n"
    "records = [{'category': c, 'model_id': f'demo{i}', 'gt': blob(*s), 'prediction': blob(*s) + 0.02 * rng.normal(size=(2048, 3)).astype(np.float32)}\n"
    "           for i, (c, s) in enumerate([('chair', (1, .6, .6)), ('airplane', (.3, 1, .9)), ('car', (.5, .6, 1))])]",
    "browser = browse(records, cell=200)",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class CDP:
    """Minimal Chrome DevTools protocol client over one page target."""

    def __init__(self, port: int):
        import websocket

        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    def wait_js(self, expr: str, timeout: float, every: float = 0.5):
        t0 = time.time()
        while time.time() - t0 < timeout:
            v = self.js(expr)
            if v:
                return v
            time.sleep(every)
        return None


# The notebook panel(s) of the lab, as JavaScript: every code cell's execution count and outputs.
_CELLS_JS = """(() => {
  const out = [];
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (!w.content || !w.content.model || !w.sessionContext) continue;
    const cells = w.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
      const c = cells.get(i);
      if (c.type !== 'code') continue;
      const outs = c.outputs.toJSON();
      out.push({count: c.executionCount, errors: outs.filter(o => o.output_type === 'error')
                .map(o => o.ename + ': ' + o.evalue)});
    }
  }
  return out;
})()"""
_KERNEL_IDLE_JS = """(() => { for (const w of window.jupyterapp.shell.widgets('main')) {
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (k && k.status === 'idle') return true; } return false; })()"""
_WIDGET_IMAGE_JS = """(() => { const v = document.querySelector('.jupyter-widgets .widget-image, .jupyter-widgets img');
  return v && v.naturalWidth > 0 ? [v.naturalWidth, v.naturalHeight] : null; })()"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", help="notebook to open and run (default: a small browser check notebook)")
    ap.add_argument("--overrides", help="JSON object passed to the kernel as $LMNET_NOTEBOOK_OVERRIDES "
                    "(lmnet.notebook.with_overrides), e.g. a tiny configuration")
    ap.add_argument("--out", default="runs/lab_check.png", help="screenshot PNG to write")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the cells to finish")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args(argv)

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    work = Path(tempfile.mkdtemp(prefix="lmnet-lab-"))
    root = work / "lab"   # JupyterLab's file browser root: only the notebook
    root.mkdir()
    if args.notebook:
        nb = nbformat.read(args.notebook, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
    else:
        nb = new_notebook(cells=[new_code_cell(s) for s in CHECK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    name = Path(args.notebook).name if args.notebook else "browser_check.ipynb"
    nbformat.write(nb, str(root / name))
    n_code = sum(c.cell_type == "code" for c in nb.cells)

    # user settings: no "get notified about Jupyter news?" toast over the screenshot
    news = work / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    lab_port, cdp_port, token = _free_port(), _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("MPLBACKEND", None)
    if args.overrides:
        json.loads(args.overrides)  # fail here, not in the kernel
        env["LMNET_NOTEBOOK_OVERRIDES"] = args.overrides
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                            f"--port={lab_port}", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False", "--allow-root",
                            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                            "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={work / 'settings'}"],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "lab.log", "w"))
    chrome = None
    ok = False
    t0 = time.time()
    try:
        try:
            _wait_http(f"http://127.0.0.1:{lab_port}/api?token={token}", 90)
        except RuntimeError:
            print((work / "lab.log").read_text()[-3000:], file=sys.stderr)
            raise
        chrome = subprocess.Popen([args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                   f"--remote-debugging-port={cdp_port}", "--window-size=1400,1000",
                                   f"--user-data-dir={work / 'chrome'}", "about:blank"],
                                  stdout=subprocess.DEVNULL, stderr=open(work / "chrome.log", "w"))
        _wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 30)
        cdp = CDP(cdp_port)
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=f"http://127.0.0.1:{lab_port}/lab/tree/{name}?token={token}")
        # JupyterLab exposes its application object (--LabApp.expose_app_in_browser): the cells are
        # run with its own command, the menu's Run > Run All Cells.
        if not cdp.wait_js("!!window.jupyterapp && !!document.querySelector('.jp-Notebook .jp-Cell')", 120):
            print("JupyterLab did not show the notebook", file=sys.stderr)
            return 1
        if not cdp.wait_js(_KERNEL_IDLE_JS, 120):
            print("the notebook's kernel did not start", file=sys.stderr)
            return 1
        cdp.js("document.querySelectorAll('.jp-Dialog-button.jp-mod-reject').forEach(b => b.click())")
        cdp.js("(() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; })()")

        def finished():  # every code cell has run (or one failed: run-all stops there)
            cells = cdp.js(_CELLS_JS) or []
            done = len(cells) == n_code and all(c["count"] is not None for c in cells)
            failed = any(c["errors"] for c in cells)
            return cells if (done or failed) and cdp.js(_KERNEL_IDLE_JS) else None

        cells = cdp.wait_js(f"({_CELLS_JS}).length", 5) and None
        deadline = time.time() + args.timeout
        while cells is None and time.time() < deadline:
            time.sleep(1.0)
            cells = finished()
        cells = cells or cdp.js(_CELLS_JS) or []
        image = cdp.wait_js(_WIDGET_IMAGE_JS, 30)
        errors = [e for c in cells for e in c["errors"]]
        counts = [c["count"] for c in cells]
        # scroll the widget into view before the screenshot
        cdp.js("(() => { const v = document.querySelector('.jupyter-widgets .widget-image, .jupyter-widgets img'); "
               "const c = v && (v.closest('.jp-Cell') || v); if (c) c.scrollIntoView(); return true; })()")
        time.sleep(1.0)
        shot = cdp.call("Page.captureScreenshot", format="png")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        ran = sum(c is not None for c in counts)
        print(f"notebook: {args.notebook or 'built-in browser check'}: {ran} of {n_code} code cells executed "
              f"in JupyterLab (execution counts {counts}) in {time.time() - t0:.0f} s")
        print(f"ipywidgets browser image rendered: {image or 'NO'}")
        for e in errors:
            print(f"cell error: {e}")
        print(f"screenshot: {out}")
        ok = bool(image) and not errors and ran == n_code
    finally:
        for p in (chrome, lab):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
