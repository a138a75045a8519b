"""Fully connected rate networks shared by every rule.

``x_l = phi_l(W_l x_{l-1} + b_l)``, l = 1..L, with ``phi`` the hidden nonlinearity and the output
nonlinearity at l = L. Dropout after hidden layers is an explicit mask (drawn once per batch so
PEPITA's two passes share it). Optional activation normalization (Hinton 2022, used by
Srinivasan et al. 2023): ``x_l <- x_l / ||x_l||_2`` for hidden layers.

The loss pairs with the output nonlinearity so that ``dJ/da_L = (x_L - y*)/N`` for softmax with
cross-entropy and sigmoid with binary cross-entropy (mean over the batch of the per-sample sum),
and ``J = mean 0.5||x_L - y*||^2`` for tanh/linear outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import forward_weights

_HIDDEN = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda a: a}
_OUTPUT = {"softmax": lambda a: torch.softmax(a, dim=1), "sigmoid": torch.sigmoid,
           "tanh": torch.tanh, "linear": lambda a: a}


class FCNetwork(nn.Module):
    """Weights ``W_l`` of shape ``(N_l, N_{l-1})`` initialised by ``neurosim.feedback``."""

    def __init__(self, sizes: list[int], activation: str = "relu", output: str = "softmax",
                 dropout: float = 0.0, bias: bool = False, init: str = "he_uniform",
                 seed: int = 0, normalize: bool = False):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"a network needs an input and an output size, got {sizes}")
        self.sizes = list(sizes)
        self.activation, self.output, self.dropout, self.normalize = activation, output, dropout, normalize
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(w)) for w in forward_weights(sizes, init, seed)])
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(n)) for n in sizes[1:]]) if bias else None

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def bias(self, l: int) -> torch.Tensor | None:
        """Bias of layer ``l`` (0-based), or None."""
        return None if self.biases is None else self.biases[l]

    def phi(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """Nonlinearity of layer ``l`` (0-based) applied to pre-activation ``a``."""
        last = l == self.n_layers - 1
        return (_OUTPUT[self.output] if last else _HIDDEN[self.activation])(a)

    def hidden_post(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Normalization and dropout applied to a hidden layer's activity."""
        if self.normalize:
            h = h / (h.norm(dim=1, keepdim=True) + 1e-8)
        return h if mask is None else h * mask

    def dropout_masks(self, batch: int, device) -> list[torch.Tensor | None]:
        """Inverted-dropout masks (Bernoulli(1-p)/(1-p)) for every hidden layer; None without dropout."""
        if not self.training or self.dropout == 0.0:
            return [None] * (self.n_layers - 1)
        keep = 1.0 - self.dropout
        return [torch.bernoulli(torch.full((batch, n), keep, device=device)) / keep
                for n in self.sizes[1:-1]]

    def forward_all(self, x: torch.Tensor, masks=None, a1: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activities ``[x_0, x_1, ..., x_L]`` of a plain forward pass; ``a1``, when given, is the
        first layer's pre-activation ``W_1 x + b_1`` computed by the caller."""
        masks = masks or [None] * (self.n_layers - 1)
        hs = [x]
        for l in range(self.n_layers):
            a = a1 if (l == 0 and a1 is not None) else F.linear(hs[-1], self.weights[l], self.bias(l))
            h = self.phi(l, a)
            hs.append(h if l == self.n_layers - 1 else self.hidden_post(h, masks[l]))
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output pre-activation ``a_L`` (logits) of a plain forward pass."""
        h = x
        for l in range(self.n_layers - 1):
            h = self.hidden_post(self.phi(l, F.linear(h, self.weights[l], self.bias(l))), None)
        return F.linear(h, self.weights[-1], self.bias(self.n_layers - 1))

    def loss_from_logits(self, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss J given output pre-activations and targets (one-hot for classification)."""
        if self.output == "softmax":
            return -(target * torch.log_softmax(a_out, dim=1)).sum(1).mean()
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(a_out, target, reduction="none").sum(1).mean()
        return 0.5 * ((self.phi(self.n_layers - 1, a_out) - target) ** 2).sum(1).mean()

    def loss_from_output(self, h_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The same loss J computed from the output activity ``x_L`` (forward-only rules)."""
        if self.output == "softmax":
            return -(target * torch.log(h_out.clamp_min(1e-12))).sum(1).mean()
        if self.output == "sigmoid":
            return F.binary_cross_entropy(h_out.clamp(1e-7, 1 - 1e-7), target,
                                          reduction="none").sum(1).mean()
        return 0.5 * ((h_out - target) ** 2).sum(1).mean()
