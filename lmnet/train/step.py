"""One optimizer update from a loss: the step every trainer (and the training benchmark) runs."""

from __future__ import annotations

from typing import Callable

import torch


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler | None = None, *, grad_clip: float = 0.0,
                   on_non_finite: Callable[[str], None] | None = None,
                   after_backward: Callable[[], None] | None = None) -> None:
    """Zero the gradients, backward ``loss`` (a scalar; scaled by ``scaler`` when given, then
    unscaled), clip the global gradient norm of the optimizer's parameters to ``grad_clip`` (0 =
    off) and step (through the scaler, which skips a step whose gradients are not finite).

    ``on_non_finite(what)`` (it should raise) is called when the loss, or — without a scaler — the
    global gradient norm is not finite: after backward, so that under DDP every rank sees the same
    all-reduced gradients and stops at the same step, and before the step, so the weights stay
    finite. ``what`` names the value, e.g. ``"training loss nan"``.

    ``after_backward()`` runs right after the backward pass, before unscaling and every check: where
    a method averages its gradients over processes itself instead of through DDP (so every process
    then sees the same values, non-finite ones included).
    """
    params = [p for g in optimizer.param_groups for p in g["params"]]
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if after_backward is not None:
        after_backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if on_non_finite is not None and not torch.isfinite(loss.detach()).all():
        on_non_finite(f"training loss {float(loss.detach())}")
    norm = None
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    elif scaler is None and on_non_finite is not None:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if scaler is None and norm is not None and on_non_finite is not None and not torch.isfinite(norm):
        on_non_finite(f"gradient norm {float(norm)}")
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
