"""Serve a web page that turns a photo into a 3D point cloud with an image run (trained or imported):
upload a photo or pick an example, see its mask and the network input, turn the cloud in a 3D
viewer, slide through Variant II samples, download .ply / .glb / .obj. Needs the app extra
(pip install lmnet[app]). Listens on 127.0.0.1 unless --host says otherwise; Ctrl-C stops it.

Examples:
  lmnet app --run runs/image-l1
  lmnet app --run trained_models/official-lm --examples photos/ --port 8080
  lmnet app --run runs/image-prob --samples 10
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "web app: upload a photo, see and download its 3D point cloud (needs pip install lmnet[app])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="image run folder (config.json + checkpoints/best.pt) or a .pt")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=7860, help="port (default 7860)")
    p.add_argument("--examples", metavar="DIR", help="a folder of photos offered as examples")
    p.add_argument("--samples", type=non_negative_int, default=8,
                   help="Variant II samples per photo, shown with a slider (default 8; Variant I runs: none)")
    p.add_argument("--device", default="cpu")


def run(args) -> int:
    from lmnet.app import serve

    print(f"lmnet app: loading {args.run}", flush=True)
    serve(args.run, host=args.host, port=args.port, examples=args.examples, samples=args.samples,
          device=args.device)
    return 0
