"""Turn published 3D-LMNet weights into lmnet run folders that `lmnet infer`, `lmnet eval`, the
notebooks and `lmnet.load_model` use like trained runs.

official-tf: the official TensorFlow checkpoints (read without TensorFlow, checksums verified).
  --checkpoint is the extracted lm / plm folder, its best/ folder or the `best` prefix. lm becomes
  a Variant I run, plm a Variant II run (mu and log sigma^2 heads), arch "official".
port: the PyTorch port's .pth state dicts (autoencoder + one image encoder), arch "port".
Both take the published input convention: the PNG's RGB as stored, alpha ignored, 0-255.
convmesh: a convmesh / Zubić & Liò checkpoint (checkpoint_<epoch>.pth) becomes a meshrecon run
  (a reconstruction checkpoint: lmnet infer --images, lmnet pseudogt) or a meshgan run (a GAN
  checkpoint, release files stripped to the EMA generator too: lmnet generate, lmnet eval fid);
  read with weights_only (no code runs).

Examples:
  lmnet import-weights official-tf --checkpoint trained_models/lm --out runs/official-lm --ae-out runs/official-ae
  lmnet import-weights port --autoencoder model_autoencoder_final.pth --image-encoder model_final.pth \\
      --variant l1 --out runs/port-l1
  lmnet import-weights convmesh --checkpoint checkpoints_recon/pretrained_reconstruction_cub/checkpoint_latest.pth \\
      --out runs/convmesh-cub
"""

from __future__ import annotations

import argparse

HELP = "import published weights (official TensorFlow, the PyTorch port, convmesh) as lmnet runs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    tf = sub.add_parser("official-tf", help="official TensorFlow lm / plm checkpoint")
    tf.add_argument("--checkpoint", required=True, help="the lm / plm folder, its best/ folder or the best prefix")
    tf.add_argument("--variant", choices=("l1", "probabilistic"), default=None,
                    help="default: detected (plm has a second head -> probabilistic)")
    port = sub.add_parser("port", help="PyTorch port .pth files")
    port.add_argument("--autoencoder", required=True, help="the port's autoencoder state dict (.pth)")
    port.add_argument("--image-encoder", required=True, help="the port's image-encoder state dict (.pth)")
    port.add_argument("--variant", required=True, choices=("l1", "l2", "probabilistic"))
    for q in (tf, port):
        q.add_argument("--out", required=True, help="image run folder to write")
        q.add_argument("--ae-out", default=None, help="also write the autoencoder as a run folder here")
    cm = sub.add_parser("convmesh", help="convmesh reconstruction or GAN checkpoint (.pth)")
    cm.add_argument("--checkpoint", required=True, help="checkpoints_recon/<name>/ or checkpoints_gan/<name>/"
                                                        "checkpoint_<epoch>.pth")
    cm.add_argument("--dataset", choices=("cub", "p3d"), default=None,
                    help="the dataset it was trained on, when the checkpoint's args do not say")
    cm.add_argument("--out", required=True, help="run folder to write (meshrecon or meshgan)")
    for q in (tf, port, cm):
        q.add_argument("--force", action="store_true", help="overwrite runs already in the output folder(s)")


def run(args) -> int:
    if args.source == "convmesh":
        from lmnet.weights.convmesh import import_convmesh

        written = import_convmesh(args.checkpoint, args.out, dataset=args.dataset, overwrite=args.force)
    elif args.source == "official-tf":
        from lmnet.weights.official_tf import import_official

        written = import_official(args.checkpoint, args.out, ae_out=args.ae_out, variant=args.variant,
                                  overwrite=args.force)
    else:
        from lmnet.weights.port import import_port

        written = import_port(args.autoencoder, args.image_encoder, args.variant, args.out, ae_out=args.ae_out,
                              overwrite=args.force)
    for part, folder in written.items():
        print(f"{part} run: {folder}")
    return 0
