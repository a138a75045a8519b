"""Backpropagation: the reference every other rule is measured against.

``e_L = dJ/da_L``, ``e_l = phi'(a_l) ⊙ W_{l+1}^T e_{l+1}``, ``dW_l = e_l x_{l-1}^T`` (PFA paper
eqs. 2-3), computed by autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rate_models.network import linear
from rate_models.rules.base import Rule, autograd_step


class Backprop(Rule):
    def compute_grads(self, x, target, masks):
        net = self.net
        h = x
        for l in range(net.n_layers - 1):
            h = net.hidden_post(net.phi(l, linear(h, net.weights[l], net.bias(l))), masks[l])
        a_out = linear(h, net.weights[-1], net.bias(net.n_layers - 1))
        return autograd_step(net, a_out, target)


def bp_hidden_updates(net, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """Backprop's gradients of W_1..W_{L-1} on a batch (no dropout), for the update-angle figure."""
    weights = list(net.weights)
    with torch.enable_grad():
        h = x
        for l in range(net.n_layers - 1):
            h = net.hidden_post(net.phi(l, F.linear(h, weights[l], net.bias(l))), None)
        loss = net.loss_from_logits(F.linear(h, weights[-1], net.bias(net.n_layers - 1)), target)
        grads = torch.autograd.grad(loss, weights[:-1])
    return [g.detach() for g in grads]
