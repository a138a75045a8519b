"""The divergence check: a run stops, with a message naming its last good checkpoint, when its
loss or its weights stop being finite or its loss explodes."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from neurosim.config import RunConfig


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the weights stop being finite or the loss explodes."""


def check_finite(loss: float, net, epoch: int, cfg: RunConfig, checkpoint: Path,
                 last_row: dict | None, step_loss: float | None = None) -> None:
    """Stop the run when, in ``epoch``, the evaluated training ``loss`` or the mean loss of its
    training steps (``step_loss``) is not finite or above ``cfg.training.max_loss``, or a weight is not
    finite. ``checkpoint`` (the previous epoch's, whose row is ``last_row``) passed this same check
    when it was written, so it is named as the last good one."""
    bad_weights = any(not torch.isfinite(W).all() for W in net.weights)
    bad = [(what, v) for what, v in (("evaluated training loss", loss), ("mean loss of the training steps", step_loss))
           if v is not None and not (math.isfinite(v) and v <= cfg.training.max_loss)]
    if bad or bad_weights:
        what = "weights are not finite" if bad_weights else f"{bad[0][0]} is {bad[0][1]:.4g}"
        last = (f"{checkpoint} (epoch {last_row['epoch']}, training loss {last_row['train_loss']:.4g})"
                if checkpoint.exists() and last_row else "none (it diverged in the first epoch)")
        raise TrainingDiverged(
            f"run diverged in epoch {epoch + 1}: {what} (limit {cfg.training.max_loss:g}). "
            f"Last good checkpoint: {last}. Lower the learning rate (--lr) or use a preset.")
