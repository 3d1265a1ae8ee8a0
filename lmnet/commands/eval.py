"""Evaluate a trained image run with the 3D-LMNet protocol (docs/evaluation.md): GT pointcloud_1024,
prediction subsampled to 1024, per-cloud bounding-box normalisation, rigid ICP onto the GT,
Chamfer (Euclidean, sum of the two mean NN distances), exact EMD and F-score at 1 % / 2 % of the
size, per category ×100, plus the mean-shape and nearest-training-shape baselines, the floor (each
shape's own GT pointcloud_2048), the AE ceiling and the share of the baseline-to-floor gap closed
(CD, EMD). Writes eval_<split>.csv, eval_<split>.md and
eval_<split>_pairs.csv into the run folder; a previous report there is kept, renamed with the
time it was written (eval_<split>.<YYYYmmdd-HHMMSS>.md ...).

``--protocol pix3d | meshrcnn | p2m`` evaluates with another paper's protocol instead (the Pix3D
benchmark's CD / EMD; Mesh R-CNN's scale-normalised Chamfer-L2 and F1, or its Pixel2Mesh protocol,
in each view's camera frame) and writes ``eval_<split>_<protocol>.{csv,md}`` and its pairs file.

``--protocol official`` reproduces the released 3D-LMNet evaluation instead (scale before the
seeded subsample, ICP moving the GT, the auction EMD next to the exact one; a Variant II run is
evaluated on one sample per image unless ``--plm-mean``) and also writes the released per-category
CSV files (``Chamfer, Fwd, Bwd, Emd``). ``--dataset pix3d --root DIR`` evaluates on Pix3D's real
photographs (chair, sofa, table) instead of ShapeNet renderings.

``lmnet eval fid --run GANRUN (--inception-weights FILE | --proxy)`` scores a textured-mesh GAN run
(``lmnet train meshgan``) instead: FID and KID of its renders under each training image's pose and
class against the pseudo-GT crops, Full / Texture / Mesh variants, a mean-texture row and the
split-half real-vs-real floor; written to RUN/eval_fid.md (lmnet.eval.textured_fid). The table names
its features: Inception-v3 with the weights file given, or lmnet's offline proxy.

Examples:  lmnet eval --run runs/image-l1 --split test --views all
           lmnet eval --run runs/image-l1 --split test --protocol official
           lmnet eval --run runs/image-l1 --split test --protocol meshrcnn
           lmnet eval --run runs/image-l1 --dataset pix3d --root data/pix3d --categories chair,sofa,table
           lmnet eval fid --run runs/gan-birds --inception-weights inception_v3_google-0cc3c7bd.pth
           lmnet eval fid --run runs/gan-birds --proxy --untrained
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "evaluate a run (CD/EMD x100 per category; lmnet, official, pix3d, meshrcnn or p2m protocol; ShapeNet or Pix3D)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", choices=("fid",), help="fid: score a meshgan run (FID / KID) instead")
    p.add_argument("--run", required=True, help="image run folder (config.json + checkpoints/); a meshgan run with fid")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-file", help="explicit split file (overrides the one resolved from the run)")
    p.add_argument("--data-root", help="dataset root (default: the run's data_root)")
    p.add_argument("--views", default="all", help="'all' (24 per shape, the paper) or indices like 0 or 0,5")
    p.add_argument("--categories", default=None, help="names or synsets, comma separated (default: the run's)")
    p.add_argument("--which", "--which-epoch", dest="which", default="best", choices=("best", "last"),
                   help="checkpoint (default best: lowest best_metric; a meshgan run's lowest FID in training)")
    p.add_argument("--no-icp", action="store_true", help="switch ICP off (the table says so)")
    p.add_argument("--no-normalize", action="store_true", help="switch per-cloud normalisation off")
    p.add_argument("--no-emd", action="store_true", help="skip EMD (the expensive step)")
    p.add_argument("--no-baselines", action="store_true", help="only the model's rows (no baselines, floor, AE ceiling or gap closed)")
    p.add_argument("--workers", type=non_negative_int, default=2, help="evaluation processes (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-items", type=non_negative_int, default=0, help="first N (shape, view) items only (0 = all)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="subsampling seed (default 0 for lmnet and pix3d, 1024 for official as released)")
    p.add_argument("--protocol", default="lmnet",
                   help="lmnet (corrected, default), official (the released 3D-LMNet computation), pix3d (the "
                        "Pix3D benchmark's CD/EMD), meshrcnn (Mesh R-CNN's scale-normalised Chamfer-L2 / F1) or "
                        "p2m (Mesh R-CNN's Pixel2Mesh protocol); meshrcnn and p2m need ShapeNet views")
    p.add_argument("--plm-mean", action="store_true",
                   help="official protocol, Variant II run: evaluate μ instead of one sample per image")
    p.add_argument("--dataset", default="shapenet", choices=("shapenet", "pix3d"),
                   help="shapenet (renderings, default) or pix3d (real photographs; needs --root)")
    p.add_argument("--root", help="Pix3D root (pix3d.json, img/, mask/, model/ [, pix3d_pointclouds/])")
    fid = p.add_argument_group("fid (meshgan runs)")
    fid.add_argument("--inception-weights", help="Inception-v3 weights: torchvision's inception_v3_google-*.pth "
                                                 "(convmesh's FID) or pytorch-fid's pt_inception-*.pth (TF-FID)")
    fid.add_argument("--proxy", action="store_true", help="offline proxy features (comparable only with proxy numbers)")
    fid.add_argument("--limit", type=non_negative_int, default=0, help="first N images of the cache (0 = all)")
    fid.add_argument("--untrained", action="store_true", help="also score the same generator with fresh weights")


def _protocol(args):
    from lmnet.errors import ConfigError
    from lmnet.eval.official import SEED, OfficialProtocol
    from lmnet.eval.protocol import Protocol
    from lmnet.eval.protocols import PAPER_PROTOCOLS, check_protocol_name, paper_protocol

    if check_protocol_name(args.protocol) in PAPER_PROTOCOLS:
        if args.no_icp or args.no_normalize:
            raise ConfigError(f"--protocol {args.protocol} has no ICP and always normalises as its paper does; "
                              "drop --no-icp / --no-normalize or use --protocol lmnet")
        proto = paper_protocol(args.protocol, seed=args.seed, emd=not args.no_emd)
        if proto.camera_frame and args.dataset != "shapenet":
            raise ConfigError(f"--protocol {args.protocol} needs each pair's R2N2 view (rendering_metadata.txt); "
                              f"--dataset {args.dataset} has none: use --protocol lmnet, official or pix3d")
        return proto
    if args.protocol == "official":
        if args.no_icp or args.no_normalize:
            raise ConfigError("--protocol official always scales and runs ICP (as released); "
                              "drop --no-icp / --no-normalize or use --protocol lmnet")
        return OfficialProtocol(seed=SEED if args.seed is None else args.seed, emd=not args.no_emd)
    return Protocol(seed=0 if args.seed is None else args.seed, normalize=not args.no_normalize,
                    icp=not args.no_icp, emd=not args.no_emd)


def _source(args):
    """The dataset half of the evaluation (:class:`lmnet.eval.runner.Source`)."""
    from lmnet.errors import ConfigError

    if args.dataset == "pix3d":
        from lmnet.eval.pix3d_run import Pix3DSource

        if not args.root:
            raise ConfigError("--dataset pix3d needs --root DIR (the folder with pix3d.json)")
        return Pix3DSource(args.root, categories=args.categories)
    from lmnet.eval.run import ShapeNetSource

    return ShapeNetSource(args.split, args.views, args.categories, split_file=args.split_file,
                          data_root=args.data_root)


def _fid(args) -> int:
    from pathlib import Path

    from lmnet import atomic_io
    from lmnet.eval.textured_fid import format_fid_table, textured_fid

    result = textured_fid(args.run, inception_weights=args.inception_weights, proxy=args.proxy, which=args.which,
                          limit=args.limit, batch_size=args.batch_size, seed=args.seed or 0, device=args.device,
                          data_root=args.data_root, untrained=args.untrained)
    text = format_fid_table(result, args.run)
    print(text)
    if Path(args.run).is_dir():   # a run folder (not a bare .pt): the report goes beside its checkpoints
        atomic_io.write_text(Path(args.run) / "eval_fid.md", text)
        print(f"md: {Path(args.run) / 'eval_fid.md'}")
    return 0


def run(args) -> int:
    if args.what == "fid":
        return _fid(args)
    from lmnet.eval.runner import EvalOptions, evaluate

    options = EvalOptions(which=args.which, protocol=_protocol(args), baselines=not args.no_baselines,
                          workers=args.workers, batch_size=args.batch_size, device=args.device,
                          max_items=args.max_items, plm_mean=args.plm_mean)
    res = evaluate(_source(args), args.run, options)
    print(res["paths"]["md"].read_text())
    for k, v in res["paths"].items():
        print(f"{k}: {v}")
    for name, path in res.get("released_csvs", {}).items():
        print(f"released csv ({name}): {path}")
    for p in res.get("kept", []):
        print(f"kept the previous report as {p}")
    return 0
