"""The README's picture of a coloured result (docs/photo_colour.png), made with lmnet's own commands.

A coloured synthetic shape (``lmnet synth --colors``, one model of a category) is rendered in
colour, composited over a plain light background and saved as a JPEG, so the "photo" has no alpha;
then, as a user would:

    lmnet infer --checkpoint RUN --images photo.jpg --color --out preds/
    lmnet render --points preds/000000.pred.npy --colors preds/000000.colors.npy --view ... --out view.png

The picture: the photo, the network input the front end made of it (``000000.input.png``), and the
coloured prediction from two views. Usage (RUN: an image run, e.g. ``make demo``'s Variant I run):

    python tools/photo_figure.py --run runs/demo/runs/variant1_l1 --out docs/photo_colour.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lmnet.cli import main as lmnet
from lmnet.data import layout
from lmnet.render import grids
from lmnet.synthetic.generator import generate_model

CELL = 256  #: side of each picture cell
VIEWS = ("r2n2:30,25,0.55", "r2n2:210,25,0.55")  #: the two views of the coloured prediction


def make_photo(work: Path, category: str, index: int, view: int) -> Path:
    """A JPEG (no alpha) of coloured synthetic ``category`` model ``index``'s render ``view`` over a
    light warm-grey background, enlarged 3× as a photo would be larger than the network input."""
    synset, mid, _ = generate_model(work / "data", category, index, colors=True)
    with Image.open(layout.image_path(work / "data", synset, mid, view)) as im:
        big = im.convert("RGBa").resize((im.width * 3, im.height * 3), Image.LANCZOS).convert("RGBA")
    rgba = np.asarray(big, dtype=np.float64) / 255
    a = rgba[..., 3:]
    rgb = rgba[..., :3] * a + np.array([0.93, 0.92, 0.89]) * (1 - a)
    path = work / "photo.jpg"
    Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an image run folder (trained or imported)")
    ap.add_argument("--out", default="docs/photo_colour.png")
    ap.add_argument("--category", default="chair")
    ap.add_argument("--index", type=int, default=30,
                    help="which synthetic model of the category (default 30: make demo trains on 0–23)")
    ap.add_argument("--view", type=int, default=4, help="which of its 24 renders is the photo")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photo = make_photo(work, args.category, args.index, args.view)
        if lmnet(["infer", "--checkpoint", args.run, "--images", str(photo), "--color", "--out", str(work / "preds")]):
            return 1
        views = []
        for k, view in enumerate(VIEWS):
            views.append(work / f"view{k}.png")
            if lmnet(["render", "--points", str(work / "preds" / "000000.pred.npy"), "--colors",
                      str(work / "preds" / "000000.colors.npy"), "--view", view, "--size", str(CELL),
                      "--out", str(views[-1])]):
                return 1
        cells = [Image.open(p).convert("RGB") for p in (photo, work / "preds" / "000000.input.png", *views)]
        titles = ["photo (JPEG, no alpha)", "network input", "coloured prediction", "turned 180°"]
        grids.save_image(args.out, grids.compose([cells], CELL, titles))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
