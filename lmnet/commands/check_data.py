"""Check a ShapeNet dataset root (or one split of it) before training or evaluating.

Decodes every PNG, parses every rendering_metadata.txt and reads every point cloud of the models
in --split (default: everything under --root), prints a per-category table (models with all 24
views, with valid metadata, with each point-cloud size) and names every missing or corrupt file.
Exit code 0 only when every requested model is usable; 1 otherwise.

``--dataset pix3d`` checks a Pix3D root instead: every pix3d.json entry's keys, and for every
photograph the paper uses (chair/sofa/table, not truncated or occluded) its image, mask, bbox and
ground truth (official pcl_1024 file, else model.obj).

``--dataset cub`` / ``--dataset p3d`` checks a CUB-200-2011 / Pascal3D+ tree in CMR's layout: the id
lists or keypoint and label files, and per split (``--split train``; default: every split) the
annotation and SfM ``.mat`` files (every struct field by name, equal counts), each rel_path inside
the images folder, and each photograph (present, decodable, the size of its mask).
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int

HELP = "check that a ShapeNet root/split is complete and readable (names every bad file)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="folder holding ShapeNetRendering/ and ShapeNet_pointclouds/ "
                                                 "(or, with --dataset pix3d, pix3d.json)")
    p.add_argument("--dataset", default="shapenet", choices=("shapenet", "pix3d", "cub", "p3d"))
    p.add_argument("--split", help="split file (official JSON or text list); default: everything on disk. "
                                   "With --dataset cub|p3d: a split name (cub: train, testval; p3d: train, val)")
    p.add_argument("--categories", default="all", help="names or synset ids, comma separated (default: all)")
    p.add_argument("--n-points", default="1024,2048,16384",
                   help="point-cloud sizes a model must have to be usable (default: 1024,2048,16384)")
    p.add_argument("--no-images", action="store_true", help="check point clouds only (autoencoder data); "
                                                               "with --dataset cub|p3d: photographs exist, not decoded")
    p.add_argument("--workers", type=non_negative_int, default=2, help="decoding threads (default: 2)")
    p.add_argument("--max-problems", type=non_negative_int, default=200, help="problems listed in full (default: 200)")
    p.add_argument("--json", dest="json_out", help="also write the full report as JSON to this file")


def _finish(report, args) -> int:
    """Print ``report``'s table, write its JSON when asked; exit code 0 when it is ok."""
    from lmnet import atomic_io

    print(report.table(max_problems=args.max_problems))
    if args.json_out:
        atomic_io.write_json(args.json_out, report.to_dict())
    return 0 if report.ok else 1


def run(args) -> int:
    from lmnet.data.check import check_data
    from lmnet.errors import DataError

    if args.dataset == "pix3d":
        from lmnet.data.pix3d_check import check_pix3d

        return _finish(check_pix3d(args.root, categories=args.categories), args)
    if args.dataset in ("cub", "p3d"):
        from lmnet.data.cmr_check import check_cmr

        return _finish(check_cmr(args.root, args.dataset, splits=[args.split] if args.split else None,
                                 images=not args.no_images), args)
    try:
        n_points = [int(x) for x in str(args.n_points).split(",") if x.strip()]
    except ValueError:
        raise DataError(f"--n-points expects sizes like 1024,2048, got {args.n_points!r}") from None
    report = check_data(args.root, split=args.split, categories=args.categories, n_points=n_points,
                        images=not args.no_images, workers=max(0, args.workers), progress=True)
    return _finish(report, args)
