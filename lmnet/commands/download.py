"""Download ShapeNetRendering (3D-R2N2 renderings, ~12 GB tgz) and/or ShapeNet_pointclouds
(3D-LMNet ground truth, ~2.8 GB zip) into --root and extract them safely.

Renderings come over HTTP(S): each --url is tried in turn (default: the original cvgl link, often
dead, then the ftp.cs.stanford.edu mirror), partial downloads resume from a .part file. Point
clouds come from the published Google Drive file (another id with --gdrive-id or
LMNET_POINTCLOUDS_GDRIVE_ID) or from --url mirrors when given. An installed tree is skipped unless
--force. Check the result with `lmnet check-data --root DIR`.

Pix3D (the paper's real-photo test): ``--what pix3d`` fetches the Pix3D release zip by URL
(default http://pix3d.csail.mit.edu/data/pix3d.zip, or --url), ``--what pix3d-pointclouds``
3D-LMNet's Pix3D point clouds from Google Drive (or --url); both extract safely into --root. Check
with `lmnet check-data --dataset pix3d --root DIR`.

CUB-200-2011 and Pascal3D+ cars (the textured-mesh datasets): ``--dataset cub`` fetches the CUB
images (``--what images``) and CMR's annotation cache (``--what annotations``); ``--dataset p3d`` the
Pascal3D+ release (images), CMR's Pascal3D+ annotations and SfM poses (annotations) and convmesh's
``p3d_labels.csv`` (labels); ``--what all`` (the default) fetches every part. With several parts,
each ``--url`` goes to the part whose archive name it ends with. Check with
`lmnet check-data --dataset cub|p3d --root DIR`.
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import positive_float, positive_int

HELP = "download and safely extract the ShapeNet renderings and/or point clouds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="dataset root to install into (e.g. data/)")
    p.add_argument("--dataset", choices=("shapenet", "cub", "p3d"), default="shapenet",
                   help="shapenet (and Pix3D through --what), or the textured-mesh datasets cub / p3d")
    p.add_argument("--what", choices=("pointclouds", "renderings", "all", "pix3d", "pix3d-pointclouds", "images",
                                      "annotations", "labels"),
                   default="all", help="ShapeNet archives (pointclouds, renderings, all = both) or Pix3D; with "
                                       "--dataset cub|p3d: images, annotations, labels (p3d) or all")
    p.add_argument("--url", action="append", default=[],
                   help="mirror URL, tried in the order given (repeatable). With --what all, URLs "
                        "ending in .zip are used for point clouds, the others for renderings")
    p.add_argument("--gdrive-id", help="Google Drive file id of the point-cloud zip (with --dataset p3d: of CMR's "
                                       "Pascal3D+ annotation archive) "
                                       "(default: $LMNET_POINTCLOUDS_GDRIVE_ID, else the published 3D-LMNet file)")
    p.add_argument("--sha256", help="expected sha256 of the archive (only with a single --what)")
    p.add_argument("--size", type=positive_int, help="expected archive size in bytes (only with a single --what)")
    p.add_argument("--force", action="store_true", help="download and extract again even if installed")
    p.add_argument("--keep-archive", action="store_true", help="keep the archive after extraction")
    p.add_argument("--attempts", type=positive_int, default=5, help="connection attempts per URL (default 5)")
    p.add_argument("--timeout", type=positive_float, default=60.0, help="socket timeout in seconds (default 60)")


def _split_urls(what: str, urls: list[str]) -> dict[str, list[str]]:
    if what != "all":
        return {what: urls}
    return {"pointclouds": [u for u in urls if u.lower().split("?")[0].endswith(".zip")],
            "renderings": [u for u in urls if not u.lower().split("?")[0].endswith(".zip")]}


def run(args) -> int:
    import sys

    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C: the .part file and its record stay for the next run
        print("interrupted; the partial download is kept: run the same command again to resume "
              "(or add --force to start over)", file=sys.stderr)
        return 130


def _say_installed(what: str, out, folder) -> None:
    """``out``: the installed folder, or None when ``what`` was already installed in ``folder``."""
    if out is None:
        print(f"{what}: already installed in {folder} (use --force to download again)")
    else:
        print(f"{what}: installed in {out}")


def _run_cmr(args) -> int:
    """``--dataset cub|p3d``: every asset ``--what`` names, each ``--url`` to the asset it names."""
    from lmnet.data import cmr_download
    from lmnet.errors import DownloadError

    assets = cmr_download.assets_for(args.dataset, args.what)
    if len(assets) > 1 and (args.sha256 or args.size):
        raise DownloadError("--sha256/--size describe one file: use them with a single --what")
    urls: dict[str, list[str]] = {a.name: [] for a in assets}
    for url in args.url:
        owner = [a for a in assets if len(assets) == 1 or url.split("?")[0].endswith("/" + a.filename)]
        if not owner:
            raise DownloadError(f"--url {url}: its file name is none of {', '.join(a.filename for a in assets)}; "
                                f"with several parts each URL must end with its part's file name")
        urls[owner[0].name].append(url)
    for asset in assets:
        out = cmr_download.download(args.root, asset.name, urls=urls[asset.name] or None, gdrive_id=args.gdrive_id,
                                    force=args.force, keep_archive=args.keep_archive, size=args.size,
                                    sha256=args.sha256, max_attempts=max(1, args.attempts), timeout=args.timeout)
        _say_installed(asset.name, out, args.root)
    print(f"next: lmnet check-data --dataset {args.dataset} --root {args.root}")
    return 0


def _run(args) -> int:
    from lmnet.data import download as dl
    from lmnet.errors import DownloadError

    if args.dataset != "shapenet":
        return _run_cmr(args)
    if args.what in ("images", "annotations", "labels"):
        raise DownloadError(f"--what {args.what} is a part of --dataset cub or p3d, not of ShapeNet")
    if args.what == "all" and (args.sha256 or args.size):
        raise DownloadError("--sha256/--size describe one archive: use them with --what renderings "
                            "or --what pointclouds")
    if args.what.startswith("pix3d"):
        from lmnet.data import pix3d_download

        out = pix3d_download.download(args.root, args.what, urls=list(args.url) or None, gdrive_id=args.gdrive_id,
                                      force=args.force, keep_archive=args.keep_archive, size=args.size,
                                      sha256=args.sha256, max_attempts=max(1, args.attempts), timeout=args.timeout)
        _say_installed(args.what, out, pix3d_download.marker_path(args.root, args.what).parent)
        print(f"next: lmnet check-data --dataset pix3d --root {args.root}")
        return 0
    urls = _split_urls(args.what, list(args.url))
    common = dict(force=args.force, keep_archive=args.keep_archive, size=args.size, sha256=args.sha256,
                  max_attempts=max(1, args.attempts), timeout=args.timeout)
    todo = ["pointclouds", "renderings"] if args.what == "all" else [args.what]
    for what in todo:
        if what == "renderings":
            out = dl.download_renderings(args.root, urls=urls["renderings"] or None, **common)
        else:
            out = dl.download_pointclouds(args.root, gdrive_id=args.gdrive_id,
                                          urls=urls["pointclouds"] or None, **common)
        _say_installed(what, out, dl.marker_path(args.root, dl.ASSETS[what]).parent)
    print(f"next: lmnet check-data --root {args.root}")
    return 0
