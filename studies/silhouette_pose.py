"""Masks-only training with known and unknown poses: shape and pose as DPC reports them (issue #30).

For each category and pose mode this trains a silhouette run (``lmnet train silhouette``, the recipe
of ``studies/results/silhouette.md``: all 24 input views per epoch, 4 supervising views of 64² masks,
32 depth bins, batch 8, lr 3e-4, bf16 where native) with a step budget, then evaluates it with
:func:`lmnet.eval.silhouette_pose.evaluate_silhouette_run`: Chamfer ×100 (lmnet protocol) of the run
and of the medoid mean shape on the test split, and for ``unknown`` the student's pose accuracy
within 30° and median angular error after the best global rotation (symmetric categories: each
view's best symmetry, ``--symmetry``). One category and mode is one run folder, ``RUNS/<category>_<mode>``.

    python -m studies.silhouette_pose --data /tmp/tab200 --categories table chair --modes known unknown \\
        --steps 2880

Writes (merging with what is there, so categories can be run one at a time) into ``--out``
(default ``studies/results``): ``silhouette_pose.json`` (:mod:`lmnet.analysis.pose_study` names the
keys), ``silhouette_pose_errors.npz`` (per-view pose errors, for the histogram of notebook 06) and
``silhouette_pose.md``. ``minutes`` is the training time (the sum of the run's epoch times). The step
budget is rounded to whole epochs (the printed line says how many steps ran).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lmnet import registry
from lmnet.analysis.pose_study import ERRORS_FILE, FIGURES_FILE, pose_study_markdown, write_pose_study
from lmnet.atomic_io import write_text
from lmnet.config import parse_set_args
from lmnet.eval.silhouette_pose import evaluate_silhouette_run
from lmnet.losses.pose import symmetry_group
from lmnet.methods.silhouette.data import build_multiview_dataset
from lmnet.runs.folder import read_history

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: the known-pose recipe that beat the mean shape on tables (studies/results/silhouette.md)
RECIPE = {"views": None, "n_views": 4, "batch_size": 8, "lr": 3e-4, "silhouette_size": 64, "depth_bins": 32,
          "amp": "auto", "num_workers": 0}
#: rectangular tables look the same turned by 180° about the up axis; the other procedural shapes do not
DEFAULT_SYMMETRY = {"table": "up180"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m studies.silhouette_pose", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a data root with splits/synthetic_{train,val,test}_models.json")
    p.add_argument("--categories", nargs="+", default=["chair", "table"])
    p.add_argument("--modes", nargs="+", choices=("known", "unknown"), default=["known", "unknown"])
    p.add_argument("--steps", type=int, default=2880, help="optimiser-step budget per run (rounded to whole epochs)")
    p.add_argument("--runs", default="/tmp/silhouette_pose", help="folder of the run folders")
    p.add_argument("--out", default=str(RESULTS), help="folder for the json / npz / md")
    p.add_argument("--symmetry", nargs="*", default=None, metavar="CATEGORY=NAME",
                   help=f"object symmetries (none, up180, up90); default {DEFAULT_SYMMETRY}")
    p.add_argument("--max-eval-items", type=int, default=0, help="evaluate only the first N (shape, view) pairs (0 = all)")
    p.add_argument("--workers", type=int, default=2, help="evaluation worker processes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more training config overrides")
    a = p.parse_args(argv)
    a.symmetry = {**DEFAULT_SYMMETRY, **dict(s.split("=", 1) for s in (a.symmetry or []))}
    for name in a.symmetry.values():
        symmetry_group(name)  # refuses an unknown name now, not after an hour of training
    return a


def entry_command(a, category: str, mode: str) -> str:
    """The study command that reproduces one (category, mode) entry, every setting spelled out."""
    words = ["python", "-m", "studies.silhouette_pose", "--data", a.data, "--categories", category, "--modes", mode,
             "--steps", str(a.steps), "--runs", a.runs, "--out", a.out, "--max-eval-items", str(a.max_eval_items),
             "--symmetry", *(f"{c}={n}" for c, n in sorted(a.symmetry.items()))]
    for s in a.set:
        words += ["--set", s]
    return " ".join(shlex.quote(w) for w in words)


def train_config(a, category: str, mode: str) -> dict:
    """The run's config: the recipe, the data, the pose mode, ``--set``, and epochs for the step budget."""
    root = Path(a.data)
    cfg = {**RECIPE, "data_root": str(root), "train_split": str(root / "splits" / "synthetic_train_models.json"),
           "val_split": str(root / "splits" / "synthetic_val_models.json"), "categories": [category], "pose": mode,
           "run_dir": str(Path(a.runs) / f"{category}_{mode}"), **parse_set_args(a.set)}
    resolved = registry.resolve_train_config("silhouette", dict(cfg))
    per_epoch = max(1, len(build_multiview_dataset(resolved, "train")) // resolved["batch_size"])
    return {**cfg, "epochs": max(1, round(a.steps / per_epoch))}, per_epoch


def run_one(a, category: str, mode: str) -> tuple[dict, dict]:
    """Train and evaluate one (category, mode) → ``(entry, {"<category>.<mode>": errors})``."""
    cfg, per_epoch = train_config(a, category, mode)
    print(f"{category}/{mode}: {cfg['epochs']} epochs × {per_epoch} steps = {cfg['epochs'] * per_epoch} steps "
          f"(budget {a.steps})", flush=True)
    run = registry.train("silhouette", cfg)
    minutes = sum(r["epoch_time_s"] or 0.0 for r in read_history(run)) / 60.0
    sym = {category: symmetry_group(a.symmetry.get(category, "none"))}
    res = evaluate_silhouette_run(run, "test", symmetries=sym, workers=a.workers, max_items=a.max_eval_items)
    print(res["markdown"], flush=True)
    (row,) = [r for r in res["rows"] if r["category"] == category]
    entry = {"pose_accuracy_30": row["pose_accuracy_30"], "pose_median_deg": row["pose_median_deg"],
             "cd": row["cd"], "cd_medoid": row["cd_medoid"], "minutes": minutes, "command": entry_command(a, category, mode)}
    errors = {f"{category}.{mode}": res["pose_errors_deg"][category]} if category in res["pose_errors_deg"] else {}
    return entry, errors


def to_markdown(figures: dict) -> str:
    lines = ["# Masks-only training, known and unknown poses (`python -m studies.silhouette_pose`, issue #30)", "",
             "Chamfer ×100 (lmnet protocol: prediction subsampled to 1024, per-cloud normalisation, ICP, mean "
             "Euclidean NN distance both ways) on the test split, the run against the medoid training shape on the "
             "same pairs. Pose (unknown mode only; known mode is given the cameras): the student's (azimuth, "
             "elevation) of every test view as a camera rotation, aligned to the true cameras by the one rotation "
             "that best fits all the category's views (L1 rotation average, `lmnet.losses.pose`), then the "
             "fraction of views within 30° and the median angle (DPC's measures). Training minutes: the sum of "
             "the run's epoch times. Per-view errors: `silhouette_pose_errors.npz`; histogram: notebook 06.", "",
             pose_study_markdown(figures), "Commands, one per row:", ""]
    for cat in sorted(figures):
        for mode in sorted(figures[cat]):
            lines.append(f"- {cat} / {mode}: `{figures[cat][mode]['command']}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    figures, errors = {}, {}
    for category in a.categories:
        for mode in a.modes:
            entry, errs = run_one(a, category, mode)
            figures.setdefault(category, {})[mode] = entry
            errors.update(errs)
            study = write_pose_study(a.out, figures, errors)  # after each run: an hour's figures are never lost
            write_text(Path(a.out) / "silhouette_pose.md", to_markdown(study.figures))
    print(f"wrote {Path(a.out) / FIGURES_FILE}, {ERRORS_FILE}, silhouette_pose.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
