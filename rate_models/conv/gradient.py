"""Backpropagation on convolutional architectures: plain autograd through conv/linear/batch norm.

``e_l = phi'(a_l) ⊙ sum_i W~^{i,j} * e_{l+1}^i`` (PFA paper eq. 10, W~ the kernel rotated by
180°), ``dW = e_{l+1} * x_l``; torch's conv2d backward computes exactly this.
"""

from __future__ import annotations

import torch

from rate_models.conv.base import ConvRule, Pass


class Backprop(ConvRule):
    """BP: the base layers are already backprop's."""


def bp_hidden_updates(net, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """Backprop's gradients of every layer but the output one on a batch (no dropout), computed
    on the rule's own weights with plain layers, for the update-angle figure."""
    weights = net.weights
    with torch.enable_grad():
        loss = net.loss_from_logits(net(x, Pass(plain=True)), target)
        grads = torch.autograd.grad(loss, weights[:-1])
    return [g.detach() for g in grads]
