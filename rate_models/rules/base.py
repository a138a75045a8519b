"""What every rule provides to the training loop.

A rule computes one batch's update of every plastic tensor and leaves it in ``.grad``, so that
torch's optimizers (momentum, weight decay, schedulers) apply it: ``W <- W - lr * dW``.
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.config import RunConfig
from neurosim.metrics import angle_deg
from rate_models.network import FCNetwork


class Rule(nn.Module):
    """Base class: holds the network, fixed feedback as buffers, plastic feedback as parameters."""

    def __init__(self, net: FCNetwork, cfg: RunConfig, seed: int):
        super().__init__()
        self.net, self.cfg, self.seed = net, cfg, seed

    # -- the update ---------------------------------------------------------------------------
    def compute_grads(self, x: torch.Tensor, target: torch.Tensor, masks) -> torch.Tensor:
        """Put this batch's update into ``.grad`` of every plastic tensor; return the loss J."""
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, target: torch.Tensor, optimizer) -> torch.Tensor:
        """One update: draw dropout masks, compute the update, apply it with ``optimizer``."""
        optimizer.zero_grad(set_to_none=True)
        masks = self.net.dropout_masks(x.shape[-2], x.device)
        with self.autocast(x.device):
            loss = self.compute_grads(x, target, masks)
        optimizer.step()
        self.after_step()
        return loss

    def autocast(self, device: torch.device):
        """bf16 autocast for the passes of ``compute_grads`` when ``cfg.amp == "bf16"`` (updates
        land in ``.grad`` in the parameters' dtype; the optimizer step and weight mirroring run
        outside it); a disabled context otherwise."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.amp == "bf16")

    def after_step(self) -> None:
        """Work after each optimizer step (weight mirroring); nothing by default."""

    def pre_train(self, n_steps: int, batch_size: int) -> None:
        """Work before training (pre-mirroring); nothing by default."""

    # -- optimizer wiring ---------------------------------------------------------------------
    def feedback_parameters(self) -> list[nn.Parameter]:
        """Plastic feedback tensors updated by the training optimizer (KP's B, PFA's R)."""
        return []

    # -- figures ------------------------------------------------------------------------------
    def alignment(self) -> dict[str, float]:
        """Rule-specific alignment figures (degrees end in ``_deg``)."""
        return {}

    def hidden_updates(self, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """This rule's updates of the hidden weights W_1..W_{L-1} on a batch, without dropout,
        leaving every ``.grad`` as it was."""
        params = list(self.net.parameters()) + self.feedback_parameters()
        saved = [p.grad for p in params]
        for p in params:
            p.grad = None
        self.compute_grads(x, target, [None] * (self.net.n_layers - 1))
        updates = [self.net.weights[l].grad.detach().clone() if self.net.weights[l].grad is not None
                   else torch.zeros_like(self.net.weights[l])
                   for l in range(self.net.n_layers - 1)]
        for p, g in zip(params, saved):
            p.grad = g
        return updates


def autograd_step(net: FCNetwork, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Backward the loss from the output pre-activation; custom autograd functions on the way
    decide how the error travels. A seed batch has one loss per seed; their sum is backwarded,
    which gives every seed the gradient of its own loss (the seeds share no tensor)."""
    loss = net.loss_from_logits(a_out, target)
    loss.sum().backward()
    return loss.detach()


def product_alignment(W_product: torch.Tensor, feedback: torch.Tensor) -> float:
    """Angle in degrees between a forward-weight (product) and a feedback matrix of its shape."""
    return angle_deg(W_product.detach().cpu().double().numpy(),
                     feedback.detach().cpu().double().numpy())
