"""Made the run folders under tests/data/old_runs/ with lmnet at commit 599d46e (the layout before
lmnet/methods/): a 1-epoch run of each kind on 2 synthetic chairs, then every weight tensor of
best.pt replaced by seeded values (so the folder is small: the tensors are not kept, only their
names, shapes and dtypes) and the output of the old load_model on a fixed input recorded."""
import json, shutil, sys
from pathlib import Path
import torch
from lmnet.synthetic import generate_dataset
from lmnet.train import train
from lmnet.registry import load_model

out = Path(sys.argv[1]); data = out / "_data"
info = generate_dataset(data, categories="chair", n_models=3, seed=0, workers=1, progress=False)
common = {"data_root": str(data), "train_split": None, "val_split": None, "epochs": 1,
          "batch_size": 2, "num_workers": 0, "progress": False, "max_train_items": 2}

def seeded_state(state):
    g = torch.Generator().manual_seed(0); new = {}
    for k in sorted(state):
        t = state[k]
        if not t.is_floating_point(): new[k] = torch.zeros_like(t)
        elif k.endswith("running_var"): new[k] = torch.rand(t.shape, generator=g) + 0.5
        else: new[k] = torch.randn(t.shape, generator=g) * 0.05
    return new

runs = {}
runs["autoencoder"] = train("autoencoder", {**common, "run_dir": str(out / "autoencoder")})
runs["image"] = train("image", {**common, "run_dir": str(out / "image"), "ae_run": str(out / "autoencoder"), "views": [0]})
runs["silhouette"] = train("silhouette", {**common, "run_dir": str(out / "silhouette"), "pose": "unknown", "n_views": 2})
g = torch.Generator().manual_seed(1)
inputs = {"autoencoder": torch.rand(2, 2048, 3, generator=g) - 0.5, "image": torch.rand(2, 3, 128, 128, generator=g) * 255}
for kind, run in runs.items():
    run = Path(run)
    ckpt = torch.load(run / "checkpoints/best.pt", weights_only=True)
    ckpt["model"] = seeded_state(ckpt["model"])
    torch.save(ckpt, run / "checkpoints/best.pt")
    (run / "checkpoints/last.pt").unlink()
    meta = {k: v for k, v in ckpt.items() if k != "model"}
    meta["model"] = {k: [list(t.shape), str(t.dtype)] for k, t in ckpt["model"].items()}
    model, cfg = load_model(run)
    x = inputs["autoencoder" if kind == "autoencoder" else "image"]
    with torch.no_grad():
        y = model(x)
    meta["fingerprint"] = {"loaded_kind": cfg["kind"], "train_kind": cfg.get("train_kind"), "model_class": type(model).__name__,
                           "output_shape": list(y.shape), "output_sum": float(y.double().sum()),
                           "output_abs_sum": float(y.double().abs().sum()), "output_first": y.flatten()[:8].tolist()}
    (run / "checkpoint.json").write_text(json.dumps(meta, indent=1, default=str))
    (run / "checkpoints/best.pt").unlink(); (run / "checkpoints").rmdir()
    for extra in ("loss_curve.png",):
        (run / extra).unlink(missing_ok=True)
shutil.rmtree(data)
