"""The training loop every method shares.

:class:`Trainer` owns everything generic — device, seeding, DDP, optimizer, AMP, checkpoints,
resume, history, progress bars — and a method's subclass (``lmnet/methods/<name>/trainer.py``) says
what the model is and how a batch becomes a loss. It knows no method by name: a subclass sets
``spec``, its method's :class:`~lmnet.runs.config.ConfigSpec`, and the loop is handed a config
already resolved against it. ``Trainer(config).fit()`` runs epochs ``[start, epochs)`` and returns
the run folder; per epoch:

1. train: for each batch, ``train_step``: by default ``compute_losses`` → backward → (clip) → Adam step;
2. validate (every ``val_every`` epochs and at the last one): ``validation_sums`` over the val set,
   or, for a method that measures itself (``measures_itself``: a GAN's FID), ``measure()`` on rank 0;
3. record a history row, update the best metric (lower is better), and on rank 0 write
   ``checkpoints/last.pt`` (+ ``best.pt`` when improved), ``history.csv`` and ``loss_curve.png``.

Resume: ``last.pt`` carries model, optimizer, scheduler, AMP scaler, history, best metric and every
RNG state (Python, NumPy, torch CPU/CUDA, the loader's shuffling generator — one snapshot per rank),
taken at the very end of the epoch, so a resumed run follows the uninterrupted one bit for bit.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

import lmnet
from lmnet import atomic_io, runs
from lmnet.errors import ConfigError, DataError, Interrupted, LmnetError, NonFiniteError
from lmnet.runs import guard
from lmnet.runs.config import ConfigSpec, strip_meta
from lmnet.runs.folder import git_commit
from lmnet.train import resume
from lmnet.train.batchnorm import recalibrate_batch_norm
from lmnet.train.data import build_dataset, set_dataset_epoch, train_loader, val_loader
from lmnet.train.precision import resolve_precision
from lmnet.train.runtime import capture_rng, init_distributed, pick_device, restore_rng, seed_everything
from lmnet.train.step import optimizer_step


def default_run_dir(kind: str) -> str:
    return f"runs/{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


class Trainer(abc.ABC):
    """Generic loop; subclasses set ``spec``, ``uses_images``, ``train_columns`` and implement
    ``build_model``, ``model_config``, ``param_groups``, ``compute_losses``, ``validation_sums``
    (and may override ``trainable_module``, what DDP wraps)."""

    spec: ConfigSpec
    uses_images = False
    train_columns: tuple[str, ...] = ("train_loss",)
    #: True for a method without a validation set that measures its ``val_metrics`` itself (:meth:`measure`)
    measures_itself = False

    def __init__(self, config: dict, *, train_set: Dataset | None = None, val_set: Dataset | None = None):
        """``config``: resolved against :attr:`spec` (:meth:`lmnet.train.method.Method.resolve`).
        ``train_set`` / ``val_set`` replace the ShapeNetDatasets built from ``config`` (notebooks,
        tests); they must yield the same item dicts. With an injected ``train_set`` and no
        ``val_set`` there is no validation."""
        self.config = cfg = dict(config)
        self.dist = init_distributed(cfg["device"])
        self.device = pick_device(cfg["device"], self.dist.local_rank)
        # what amp ("auto", True, False) means on this device: lmnet.train.precision
        self.precision = resolve_precision(cfg["amp"], self.device, warn=self.log)
        self.amp, self.amp_dtype = self.precision.enabled, self.precision.autocast_dtype
        self.run_dir = Path(self.dist.broadcast_object(cfg["run_dir"] or default_run_dir(self.kind)))
        cfg["run_dir"] = str(self.run_dir)
        # refused before any work (datasets, image cache): a file, another process's folder, a run
        # that must not be trained over; fit() checks again under the folder's lock
        self._on_main(lambda: guard.check_unlocked(self.run_dir, "run_dir"))
        self._on_main(lambda: resume.check_run_dir(self.run_dir, cfg["resume"]))

        if train_set is None:
            train_set, val_set = self.build_datasets()
        self.train_set, self.val_set = train_set, val_set

        seed_everything(cfg["seed"])  # identical initial weights on every rank
        self.model = self.build_model().to(self.device)
        # NHWC activations for the image encoder: faster convolutions on CPU (benchmarks/bench_train.py)
        self.channels_last = bool(cfg.get("channels_last", False)) and self.uses_images
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        net = self.trainable_module()
        if self.dist.enabled:
            net = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                          find_unused_parameters=self.ddp_find_unused_parameters())
        self.net = net
        # float betas: torch's Adam refuses an int (a --set beta1=0)
        betas = (float(cfg["beta1"]), float(cfg["beta2"]))
        self.optimizer = torch.optim.Adam(self.param_groups(cfg), lr=cfg["lr"], betas=betas, foreach=True)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg["epochs"])
                          if cfg["lr_schedule"] == "cosine" else None)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision.grad_scaler else None
        self.generator = torch.Generator()
        self.generator.manual_seed(cfg["seed"])
        seed_everything(cfg["seed"] + self.dist.rank)  # per-rank streams (e.g. Variant II's ε)

        validates = self.val_set is not None or self.measures_itself
        self.val_columns = list(self.spec.val_metrics) if validates else []
        self.columns = ["epoch", *self.train_columns, *self.val_columns, "lr", "epoch_time_s"]
        self.best_metric_name = cfg["best_metric"] if validates else "train_loss"
        if self.best_metric_name != cfg["best_metric"]:
            self.log(f"no validation set: best.pt tracks {self.best_metric_name} instead of {cfg['best_metric']}")
        self.best_metric, self.best_epoch = math.inf, 0
        self.history: list[dict] = []
        self._change_log: list[dict] = []  # config.json "resume_changes"

    @property
    def kind(self) -> str:
        """The run kind this trainer writes (its method's name)."""
        return self.spec.name

    # -- provided by subclasses ------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    @abc.abstractmethod
    def model_config(self) -> dict:
        raise NotImplementedError

    @abc.abstractmethod
    def param_groups(self, config: dict) -> list[dict]:
        """Adam parameter groups (weight decay per group) under ``config`` (the run's, or on resume
        the saved one, to map the saved optimizer state onto changed groups)."""
        raise NotImplementedError

    @abc.abstractmethod
    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Training losses of one batch; ``"loss"`` is optimised, every key becomes ``train_<key>``."""
        raise NotImplementedError

    @abc.abstractmethod
    def validation_sums(self, batch: dict) -> dict[str, float]:
        """Per-batch *sums* over samples of every validation column (divided by the count later)."""
        raise NotImplementedError

    def train_step(self, batch: dict, on_non_finite) -> dict[str, torch.Tensor]:
        """One training step on ``batch``; returns the losses to record (each key becomes the
        per-epoch mean ``train_<key>``, over the steps that returned it). By default
        ``compute_losses`` → one optimizer step on its ``"loss"``. A method with another schedule
        (a GAN's alternating generator / discriminator steps) overrides it; ``on_non_finite(what)``
        raises :class:`NonFiniteError` for this step (hand it to :func:`~lmnet.train.step.optimizer_step`)."""
        losses = self.compute_losses(batch)
        optimizer_step(losses["loss"], self.optimizer, self.scaler, grad_clip=self.config["grad_clip"],
                       on_non_finite=on_non_finite)
        return losses

    def measure(self) -> dict[str, float]:
        """The ``val_metrics`` of the current model, measured by the method itself (when
        ``measures_itself``: no validation set), every ``val_every`` epochs and at the last one, on
        rank 0 only (the values reach every rank). Must not draw from the training's random streams."""
        raise NotImplementedError(f"{type(self).__name__} sets measures_itself but has no measure()")

    def trainable_module(self) -> nn.Module:
        return self.model

    def finish(self) -> None:
        """Called once, on the main process, after the last epoch's files are written: what a
        method stores in the run folder beside the checkpoints (nothing by default)."""

    def finish_done(self) -> bool:
        """Whether a complete run's :meth:`finish` output is already in the run folder, up to date
        with its checkpoints: then resuming a run with no epoch left (a notebook making sure a run
        exists) does not compute it again. A run killed between its last epoch and the end of
        :meth:`finish` is not done, so it finishes on resume. False by default (always finish)."""
        return False

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """``(train, val)`` of the run's config (val None: no validation); by default the ShapeNet
        datasets of :func:`lmnet.train.data.build_dataset`. A method on other data overrides it."""
        return (build_dataset(self.config, "train", images=self.uses_images),
                build_dataset(self.config, "val", images=self.uses_images))

    def batch_size_of(self, batch: dict) -> int:
        """How many samples ``batch`` holds (the weights of the per-epoch means)."""
        return int(batch["points"].shape[0])

    def ddp_find_unused_parameters(self) -> bool:
        """Whether some epochs leave trainable parameters without gradients (DDP must then look for them)."""
        return False

    def start_epoch(self, epoch: int) -> None:
        """Called before training epoch ``epoch`` (0-based), also right after a resume; puts the
        model in train mode. Subclasses switch training phases here."""
        self.net.train()

    def counts_as_best(self, epoch: int, value: float) -> bool:
        """Whether epoch ``epoch`` (0-based), with best-metric ``value``, writes ``best.pt`` (lower is better)."""
        return value < self.best_metric

    # -- helpers ---------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.dist.is_main:
            from tqdm.auto import tqdm

            tqdm.write(f"[lmnet train {self.kind}] {message}", file=sys.stderr)

    def _on_main(self, check):
        """Run ``check()`` on rank 0 only; an LmnetError it raises is raised on every rank."""
        error = None
        if self.dist.is_main:
            try:
                check()
            except LmnetError as exc:
                error = exc
        error = self.dist.broadcast_object(error)
        if error is not None:
            raise error

    @contextlib.contextmanager
    def _folder_lock(self):
        """Rank 0 holds the run folder's lock (:func:`lmnet.runs.guard.lock_folder`) for the block."""
        with contextlib.ExitStack() as stack:
            self._on_main(lambda: stack.enter_context(guard.lock_folder(self.run_dir, "run_dir",
                                                                        f"lmnet train {self.kind}")))
            yield

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def to_images(self, images: torch.Tensor) -> torch.Tensor:
        """A ``(B, C, H, W)`` image batch on the device, channels_last when the run uses it."""
        images = self.to_device(images)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> Path:
        """Train epochs ``[start, epochs)``; returns the run folder."""
        self._saved_epoch = 0
        try:
            with self._folder_lock():
                self._fit_epochs()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after epoch {self._saved_epoch}; resume with --set resume=true "
                              f"--set run_dir={self.run_dir}", epochs_done=self._saved_epoch) from None
        finally:
            self.dist.close()
        return self.run_dir

    def _fit_epochs(self) -> None:
        """Epochs ``[start, epochs)``, under the run folder's lock."""
        cfg = self.config
        start = self._saved_epoch = self._start_or_resume()
        pin = self.device.type == "cuda"
        loader = train_loader(self.train_set, cfg, self.dist, self.generator, pin_memory=pin)
        vloader = val_loader(self.val_set, cfg, self.dist, pin_memory=pin) if self.val_set is not None else None
        for epoch in range(start, cfg["epochs"]):
            t0 = time.perf_counter()
            set_dataset_epoch(self.train_set, epoch)
            self.start_epoch(epoch)
            loader.sampler.set_epoch(epoch)  # the order of epoch `epoch` depends on (seed, epoch) only
            row = {"epoch": epoch + 1, **self._train_epoch(loader, epoch)}
            if self.val_columns and ((epoch + 1) % cfg["val_every"] == 0 or epoch + 1 == cfg["epochs"]):
                row.update(self._validate(vloader) if vloader is not None else self._measure(epoch))
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            if self.scheduler is not None:
                self.scheduler.step()
            row["epoch_time_s"] = time.perf_counter() - t0
            self._end_epoch(row)
        if self.dist.is_main and (start < cfg["epochs"] or not self.finish_done()):
            self.finish()
        self.dist.barrier()

    def _train_epoch(self, loader, epoch: int) -> dict:
        from tqdm.auto import tqdm

        cfg = self.config
        sums: dict[str, float] = defaultdict(float)
        count = 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg['epochs']}", leave=False, dynamic_ncols=True,
                   disable=not (cfg["progress"] and self.dist.is_main))
        counts: dict[str, int] = defaultdict(int)  # per key: a step may record only some losses
        for step, batch in enumerate(bar):
            losses = self.train_step(batch, lambda what: self._stop_non_finite(what, epoch, step, len(loader)))
            b = self.batch_size_of(batch)
            for key, value in losses.items():
                sums[key] += float(value.detach()) * b
                counts[key] += b
            count += b
            if "loss" in losses:
                bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4g}")
        bar.close()
        if count == 0:
            raise DataError(f"the training set yielded no batch ({len(self.train_set)} items, "
                            f"batch_size {cfg['batch_size']}, world size {self.dist.world_size})")
        self._sync_buffers()
        self.recalibrate_batch_norm(loader, epoch)
        keys = sorted(sums)
        totals = self.dist.all_reduce_sum([sums[k] for k in keys] + [counts[k] for k in keys], self.device)
        return {f"train_{k}": totals[i] / totals[len(keys) + i] for i, k in enumerate(keys)}

    # -- BatchNorm statistics (lmnet.train.batchnorm) ---------------------------------------------
    def batch_norm_forward(self, epoch: int):
        """What re-estimates BatchNorm statistics after epoch ``epoch``'s steps: ``(module, forward)``,
        where ``forward(batch)`` runs ``module`` on one training batch (no gradients are taken), or
        ``None``: this method keeps the running averages. Only ``module``'s BatchNorm layers are
        re-estimated, so it must be what ``forward`` runs (a frozen part outside it keeps its own)."""
        return None

    def recalibrate_batch_norm(self, batches, epoch: int) -> int:
        """After epoch ``epoch``'s optimiser steps (so before validation and the checkpoints), replace
        the running statistics of the BatchNorm layers that :meth:`batch_norm_forward` names by their
        average over the first ``bn_recalibration_batches`` of ``batches`` under the epoch's final
        weights (:func:`lmnet.train.batchnorm.recalibrate_batch_norm`, whose docstring says why).
        Returns the number of batches used (0: the running averages are kept)."""
        n = int(self.config.get("bn_recalibration_batches", 0) or 0)
        hook = self.batch_norm_forward(epoch) if n > 0 else None
        if hook is None:
            return 0
        module, forward = hook
        used = recalibrate_batch_norm(module, batches, forward, n)
        self._sync_buffers()
        return used

    def _stop_non_finite(self, what: str, epoch: int, step: int | None, n_steps: int | None) -> None:
        """Raise :class:`NonFiniteError` naming ``what``, the epoch (and step) and the last good checkpoint."""
        last = runs.checkpoint_path(self.run_dir, "last")
        where = f"epoch {epoch + 1}" + (f", step {step + 1} of {n_steps}" if step is not None else " (validation)")
        kept = (f"{last} (after epoch {len(self.history)}) is the last good checkpoint, untouched"
                if last.is_file() else "no checkpoint had been written yet")
        raise NonFiniteError(f"non-finite {what} at {where}: training stopped before that update; {kept}. "
                             f"Lower lr (now {self.optimizer.param_groups[0]['lr']:g}) or set grad_clip")

    def _sync_buffers(self) -> None:
        """DDP broadcasts rank 0's BatchNorm statistics before each forward, so after the last step
        each rank holds its own; make them rank 0's again (identical models everywhere)."""
        if self.dist.enabled:
            for buf in self.model.buffers():
                torch_dist.broadcast(buf, src=0)

    @torch.no_grad()
    def _validate(self, vloader) -> dict:
        self.model.eval()
        set_dataset_epoch(self.val_set, 0)  # random views: the same draw every validation
        sums: dict[str, float] = defaultdict(float)
        count = 0
        for batch in vloader:
            for key, value in self.validation_sums(batch).items():
                sums[key] += value
            count += self.batch_size_of(batch)
        totals = self.dist.all_reduce_sum([sums[k] for k in self.val_columns] + [count], self.device)
        if totals[-1] == 0:
            raise DataError("the validation set is empty")
        bad = [k for i, k in enumerate(self.val_columns) if not math.isfinite(totals[i])]
        if bad:
            self._stop_non_finite(f"validation {', '.join(bad)}", len(self.history), None, None)
        return {k: totals[i] / totals[-1] for i, k in enumerate(self.val_columns)}

    def _measure(self, epoch: int) -> dict:
        """:meth:`measure` on rank 0; its values on every rank (a non-finite one stops training)."""
        values: dict[str, float] = {}
        self.model.eval()
        self._on_main(lambda: values.update(self.measure()))
        values = self.dist.broadcast_object(values)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            self._stop_non_finite(f"measured {', '.join(bad)}", epoch, None, None)
        return values

    def _end_epoch(self, row: dict) -> None:
        self.history.append(row)
        value = row.get(self.best_metric_name)
        epoch = int(row["epoch"]) - 1
        improved = value is not None and math.isfinite(value) and self.counts_as_best(epoch, float(value))
        if improved:
            self.best_metric, self.best_epoch = float(value), int(row["epoch"])
        rng = self.dist.all_gather_object(capture_rng(self.generator))
        if self.dist.is_main:
            base = self._weights_checkpoint(int(row["epoch"]))
            last = {**base, "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                    "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                    "history": self.history, "rng": rng}
            # best.pt first: a kill between the two leaves last.pt at the previous epoch, which is
            # then redone on resume, and never a finished run whose best.pt is missing or older
            if improved:
                atomic_io.save_torch(base, runs.checkpoint_path(self.run_dir, "best"))
            atomic_io.save_torch(last, runs.checkpoint_path(self.run_dir, "last"))
            self._saved_epoch = int(row["epoch"])
            runs.write_history(self.run_dir, self.history, self.columns)
            runs.plot_loss_curve(self.run_dir, self.history, "train_loss", self.val_columns)
            shown = ", ".join(f"{k} {row[k]:.5g}" for k in self.columns[1:-2] if row.get(k) is not None)
            self.log(f"epoch {row['epoch']}/{self.config['epochs']}: {shown} ({row['epoch_time_s']:.1f} s)"
                     + (" *best*" if improved else ""))
        self.dist.barrier()

    def _weights_checkpoint(self, epoch: int) -> dict:
        """What ``best.pt`` holds (and ``last.pt`` starts with): the model after ``epoch`` epochs."""
        return {"format": runs.CHECKPOINT_FORMAT, "kind": self.kind, "model_config": self.model_config(),
                "model": self.model.state_dict(), "epoch": int(epoch), "best_metric_name": self.best_metric_name,
                "best_metric": self.best_metric, "best_epoch": self.best_epoch}

    def _repair_best(self, last: dict) -> None:
        """Make ``best.pt`` agree with ``last.pt`` (called after loading it into the model)."""
        note = resume.repair_best(self.run_dir, last, self._weights_checkpoint(int(last["epoch"])))
        if note == "lost":
            self.best_metric, self.best_epoch = math.inf, 0
            self.log(f"warning: best.pt of epoch {last['best_epoch']} is missing or damaged and cannot be "
                     f"rebuilt; best.pt tracks the best of epochs {int(last['epoch']) + 1} on")
        elif note:
            self.log(note)

    def _start_or_resume(self) -> int:
        cfg = self.config
        self._on_main(lambda: resume.check_run_dir(self.run_dir, cfg["resume"]))  # again, now under the lock
        if self.dist.is_main:
            removed = runs.remove_stale_temporaries(self.run_dir)
            if removed:
                self.log(f"removed {len(removed)} temporary file(s) left by a killed earlier run: "
                         + ", ".join(p.name for p in removed[:3]))
        last = runs.checkpoint_path(self.run_dir, "last")
        start = 0
        if last.is_file():  # resume=True: check_run_dir refuses a last.pt without it
            ckpt = runs.load_checkpoint(last)
            if ckpt["kind"] != self.kind:
                raise ConfigError(f"{last} is a {ckpt['kind']} run, cannot resume it as {self.kind}")
            saved = runs.read_run_config(self.run_dir) if (self.run_dir / runs.CONFIG_FILE).is_file() else None
            changes, self._change_log = resume.check_changes(cfg, saved, int(ckpt["epoch"]), self.run_dir,
                                                             has_schedule=self.scheduler is not None,
                                                             defaults=self.spec.defaults)
            if changes:
                self.log(f"resuming with changed settings, in effect from epoch {int(ckpt['epoch']) + 1}: "
                         + ", ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in changes))
            self.model.load_state_dict(ckpt["model"])
            self._restore_optimizer(ckpt["optimizer"])
            resume.apply_changes(self.optimizer, self.param_groups(cfg), cfg, changes)
            if self.scheduler is not None and ckpt["scheduler"] is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.scaler is not None and ckpt["scaler"] is not None:
                self.scaler.load_state_dict(ckpt["scaler"])
            self.history = list(ckpt["history"])
            self.best_metric, self.best_epoch = float(ckpt["best_metric"]), int(ckpt["best_epoch"])
            rngs = ckpt["rng"]
            if len(rngs) != self.dist.world_size:
                self.log(f"resuming a {len(rngs)}-process run on {self.dist.world_size}: "
                         "RNG streams will differ from an uninterrupted run")
            restore_rng(rngs[self.dist.rank % len(rngs)], self.generator)
            start = int(ckpt["epoch"])
            if self.dist.is_main:
                self._repair_best(ckpt)
            self.log(f"resumed {self.run_dir} after epoch {start}")
        elif cfg["resume"]:
            self.log(f"resume=True but {last} does not exist: starting a new run")
        if self.dist.is_main:
            meta = {"kind": self.kind, "git_commit": git_commit(), "lmnet_version": lmnet.__version__,
                    "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "world_size": self.dist.world_size, "precision": self.precision.describe(),
                    "resume_changes": self._change_log}
            atomic_io.write_json(self.run_dir / runs.CONFIG_FILE, {**cfg, **meta})
        n_val = len(self.val_set) if self.val_set is not None else 0
        self.log(f"run folder {self.run_dir}: {len(self.train_set)} train / {n_val} val items, device "
                 f"{self.device}, {self.precision.describe()}, {self.dist.world_size} process(es), "
                 f"epochs {start + 1}..{cfg['epochs']}")
        return start

    def _restore_optimizer(self, saved: dict) -> None:
        """Load the saved Adam state; when the parameter groups changed (weight-decay settings edited
        between a run and its resumption) carry the per-parameter state over by parameter, mapping
        the saved indices through the groups that the run's saved config produces."""
        try:
            self.optimizer.load_state_dict(saved)
            return
        except ValueError:
            pass
        old_cfg = {**self.spec.defaults, **strip_meta(runs.read_run_config(self.run_dir))}
        old_params = [p for g in self.param_groups(old_cfg) for p in g["params"]]
        saved_ids = [i for g in saved["param_groups"] for i in g["params"]]
        if len(old_params) != len(saved_ids):
            raise ConfigError(f"cannot resume {self.run_dir}: its optimizer state holds {len(saved_ids)} parameters, "
                              f"the model has {len(old_params)} trainable ones")
        state_of = {id(p): saved["state"][i] for p, i in zip(old_params, saved_ids) if i in saved["state"]}
        new = self.optimizer.state_dict()
        flat = [p for g in self.optimizer.param_groups for p in g["params"]]
        new["state"] = {j: state_of[id(p)] for j, p in enumerate(flat) if id(p) in state_of}
        # every group shares lr / betas (one Adam over the model): keep the saved ones (a schedule's
        # current lr and initial_lr), only weight_decay and membership come from the new groups
        shared = {k: v for k, v in saved["param_groups"][0].items() if k not in ("params", "weight_decay")}
        for group in new["param_groups"]:
            group.update(shared)
        self.optimizer.load_state_dict(new)
        self.log("parameter groups changed since the checkpoint (weight-decay settings): "
                 "Adam state carried over parameter by parameter")
