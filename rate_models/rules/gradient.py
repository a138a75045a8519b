"""Backpropagation: the reference every other rule is measured against.

Fully connected: ``e_L = dJ/da_L``, ``e_l = phi'(a_l) ⊙ W_{l+1}^T e_{l+1}``, ``dW_l = e_l x_{l-1}^T``
(PFA paper eqs. 2-3). Convolutional: ``e_l = phi'(a_l) ⊙ sum_i W~^{i,j} * e_{l+1}^i`` (PFA paper
eq. 10, W~ the kernel rotated by 180°), ``dW = e_{l+1} * x_l``. Autograd computes both: the plain
``linear`` / ``conv2d`` / batch-norm backward is exactly this.
"""

from __future__ import annotations

import torch

from rate_models.layers import Pass
from rate_models.architectures import FCNetwork
from rate_models.rules.base import ConvRule, Forms, Rule, as_numpy, autograd_step


class Backprop(Rule):
    def compute_grads(self, x, target, masks):
        return autograd_step(self.net, self.net.run(x, masks), target)

    def feedback_blocks(self, layers):
        """The implicit feedback ``W_l^T``, ``layer l -> layer l-1`` for l = 2..L, equal weights:
        every forward pair above the input is bidirectional. No error reaches the input (it does
        not learn), so ``input -> hidden1`` pairs stay one-way; this holds for FA-like rules too."""
        Ws = self.net.weights
        return [], [(layers[l], layers[l - 1], as_numpy(Ws[l - 1])) for l in range(2, len(layers))]


class ConvBackprop(ConvRule):
    """BP: the base layers are already backprop's."""


def bp_hidden_updates(net, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """Backprop's gradients of every layer's weight but the output one on a batch (no dropout),
    for the update-angle figure; on a convolutional architecture computed on the rule's own
    weights with plain layers."""
    weights = list(net.weights)
    with torch.enable_grad():
        a_out = net.run(x) if isinstance(net, FCNetwork) else net(x, Pass(plain=True))
        grads = torch.autograd.grad(net.loss_from_logits(a_out, target), weights[:-1])
    return [g.detach() for g in grads]


FORMS = {"bp": Forms(Backprop, ConvBackprop)}
