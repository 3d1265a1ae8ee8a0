"""List, download and import the published 3D-LMNet weights (the official TensorFlow lm / plm
models and the PyTorch port's six .pth files) as lmnet run folders.

Downloads come from Google Drive (gdown, resumable); offline, fetch the file by hand and pass it
with --from-file. Every file is checked (zip CRCs, the TensorFlow tensors' CRC-32C, the port's
keys and shapes) and imported with `lmnet import-weights`.

Examples:
  lmnet pretrained list
  lmnet pretrained download official-lm --out trained_models/
  lmnet pretrained download port-l1 --out trained_models/ --from-file ~/Downloads/model_final.pth \\
      --ae-from-file ~/Downloads/model_autoencoder_final.pth
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import positive_float

HELP = "list / download + import the published 3D-LMNet models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the published files, their Google Drive ids and what they hold")
    d = sub.add_parser("download", help="download (or take --from-file) and import one published model")
    d.add_argument("name", help="a name from `lmnet pretrained list`")
    d.add_argument("--out", default="trained_models", help="folder for the files and runs (default trained_models/)")
    d.add_argument("--from-file", default=None, help="use this file (fetched by hand) instead of downloading")
    d.add_argument("--ae-from-file", default=None,
                   help="port image models: the port's autoencoder file (default: download port-autoencoder)")
    d.add_argument("--force", action="store_true", help="import again even if the runs exist")
    d.add_argument("--timeout", type=positive_float, default=5.0, help="connection timeout in seconds (default 5)")


def run(args) -> int:
    from lmnet.weights import pretrained

    if args.action == "list":
        for item in pretrained.CATALOGUE.values():
            print(f"{item.name:17s} {item.gdrive_id}  {item.filename:28s} {item.about}")
        return 0
    written = pretrained.download(args.name, args.out, from_file=args.from_file, ae_from_file=args.ae_from_file,
                                  force=args.force, timeout=args.timeout)
    for part, folder in written.items():
        print(f"{part} run: {folder}")
    return 0
