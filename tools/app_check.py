"""Check in a real browser that ``lmnet app`` shows a photo's point cloud in its 3D viewer.

Starts ``lmnet app --run RUN`` on 127.0.0.1 (a free port), opens the page in headless Chromium
(Debian ``chromium``, driven over the DevTools protocol with ``websocket-client``, as
``tools/jupyterlab_check.py`` does), uploads ``--photo`` through the page's file input (or, with
``--examples``, serves those photos and clicks the first), waits for the 3D viewer's canvas and the
status line, and saves a screenshot of the viewer (``--out``) and of the whole page (``--out`` with
``.page.png``). Prints the share of the viewer's pixels that are coloured
(the points) and their distinct colours.

    .venv/bin/python tools/app_check.py --run runs/image-l1 --photo chair.png --out runs/app_check.png
    .venv/bin/python tools/app_check.py --run runs/image-l1 --examples photos/   # click the first example

Exit code 0 when the viewer drew the cloud (over 0.2 % of its pixels coloured, in over 50 colours;
the label, buttons and background are grey or white), 1 otherwise. Chromium renders WebGL with SwiftShader (software), so no GPU is needed.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jupyterlab_check import CDP, _free_port, _wait_http  # noqa: E402  (the DevTools client)

REPO = Path(__file__).resolve().parent.parent
VIEWER = "#lmnet-model3d"
_READY_JS = ("(() => { const s = document.querySelector('#lmnet-status'); const c = document.querySelector("
             f"'{VIEWER} canvas'); return !!(s && c && s.innerText.includes('points predicted')); }})()")
_EXAMPLE_JS = ("(() => { const b = document.querySelector('.gallery-item, [class*=example] button, table.examples td');"
               " if (b) b.click(); return !!b; })()")
_RECT_JS = (f"(() => {{ const c = document.querySelector('{VIEWER} canvas'); c.scrollIntoView(); "
            "const r = c.getBoundingClientRect(); return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; })()")


def viewer_figures(png: bytes) -> tuple[int, float]:
    """A screenshot of the viewer → (distinct colours of its coloured pixels, fraction of its pixels
    that are coloured). Coloured: channels at least 30 apart, so the viewer's grey label, buttons and
    white background never count, only the drawn points (coloured from the photo, or by position)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    coloured = np.ptp(rgb, axis=-1) >= 30
    return len(np.unique(rgb[coloured], axis=0)), float(coloured.mean())


def _upload(cdp: CDP, photo: Path) -> None:
    root = cdp.call("DOM.getDocument", depth=-1, pierce=True)["root"]["nodeId"]
    node = cdp.call("DOM.querySelector", nodeId=root, selector="input[type=file]")["nodeId"]
    cdp.call("DOM.setFileInputFiles", nodeId=node, files=[str(photo.resolve())])


def check(cdp: CDP, url: str, photo: Path | None, out: Path, timeout: float) -> bool:
    """Open ``url``, upload ``photo`` (None: click the first example), screenshot the viewer into
    ``out``; True when it drew something."""
    cdp.call("Page.enable")
    cdp.call("DOM.enable")
    cdp.call("Page.navigate", url=url)
    if not cdp.wait_js("!!document.querySelector('input[type=file]')", 60):
        print("the page did not show its upload field", file=sys.stderr)
        return False
    if photo is None:
        cdp.wait_js(_EXAMPLE_JS, 30)
    else:
        _upload(cdp, photo)
    if not cdp.wait_js(_READY_JS, timeout):
        print("no 3D view: " + str(cdp.js("document.body.innerText.slice(0, 800)")), file=sys.stderr)
        return False
    time.sleep(3.0)  # the viewer loads the .glb and renders it (software WebGL)
    x, y, w, h = cdp.js(_RECT_JS)
    time.sleep(0.5)
    shot = base64.b64decode(cdp.call("Page.captureScreenshot", format="png", clip={
        "x": x, "y": y, "width": w, "height": h, "scale": 1})["data"])
    page = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(shot)
    out.with_suffix(".page.png").write_bytes(page)
    colours, drawn = viewer_figures(shot)
    status = cdp.js("document.querySelector('#lmnet-status').innerText")
    print(f"status: {status}")
    print(f"viewer: {int(w)}x{int(h)} px, {100 * drawn:.2f} % of its pixels coloured, in {colours} distinct colours")
    print(f"screenshot: {out}")
    return colours > 50 and drawn > 0.002


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="image run folder")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--photo", help="photo to upload")
    src.add_argument("--examples", metavar="DIR", help="serve these examples and click the first one")
    ap.add_argument("--out", default="runs/app_check.png", help="screenshot of the 3D viewer (PNG)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lmnet-app-check-"))
    app_port, cdp_port = _free_port(), _free_port()
    app_tmp = work / "app-tmp"  # the app's temporary folders: none may be left once it has stopped
    app_tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(app_tmp)}
    procs, ok = [], False
    try:
        examples = ["--examples", args.examples] if args.examples else []
        procs.append(subprocess.Popen([sys.executable, "-m", "lmnet", "app", "--run", args.run, "--port",
                                       str(app_port), *examples], env=env, stdout=open(work / "app.log", "w"),
                                      stderr=subprocess.STDOUT))
        _wait_http(f"http://127.0.0.1:{app_port}/", 120)
        procs.append(subprocess.Popen([args.chromium, "--headless=new", "--no-sandbox", "--use-angle=swiftshader",
                                       "--enable-unsafe-swiftshader", f"--remote-debugging-port={cdp_port}",
                                       "--window-size=1400,1200", f"--user-data-dir={work / 'chrome'}",
                                       "about:blank"], stdout=subprocess.DEVNULL,
                                      stderr=open(work / "chrome.log", "w")))
        _wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 30)
        photo = Path(args.photo) if args.photo else None
        ok = check(CDP(cdp_port), f"http://127.0.0.1:{app_port}/", photo, Path(args.out), args.timeout)
        if not ok:
            print((work / "app.log").read_text()[-3000:], file=sys.stderr)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        print(f"app stopped; its temporary folders left behind: {len(list(app_tmp.glob('lmnet-app-*')))}")
        shutil.rmtree(work, ignore_errors=True)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
