"""Fully connected rate networks shared by every rule.

``x_l = phi_l(W_l x_{l-1} + b_l)``, l = 1..L, with ``phi`` the hidden nonlinearity and the output
nonlinearity at l = L. Dropout after hidden layers is an explicit mask (drawn once per batch so
PEPITA's two passes share it). Optional activation normalization (Hinton 2022, used by
Srinivasan et al. 2023): ``x_l <- x_l / ||x_l||_2`` for hidden layers.

Every rule is written so that it also runs on a *seed batch* (``rate_models.seed_batch``): K
seeds' tensors stacked along a leading dimension, weights ``(K, N_l, N_{l-1})`` and activities
``(K, batch, N_l)``. Hence samples are indexed from the end (``dim=-2``, units ``dim=-1``),
transposes are ``.mT`` and :func:`linear` picks a batched product for stacked weights. Per-step
randomness comes from :class:`StepNoise`, one generator per seed, so K stacked seeds draw
exactly what K separate runs draw.

The loss pairs with the output nonlinearity so that ``dJ/da_L = (x_L - y*)/N`` for softmax with
cross-entropy and sigmoid with binary cross-entropy (mean over the batch of the per-sample sum),
and ``J = mean 0.5||x_L - y*||^2`` for tanh/linear outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import forward_weights

_HIDDEN = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda a: a}
_OUTPUT = {"softmax": lambda a: torch.softmax(a, dim=-1), "sigmoid": torch.sigmoid,
           "tanh": torch.tanh, "linear": lambda a: a}


def linear(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``h W^T + b`` for one seed (``W`` 2-D: ``F.linear``, the single-seed arithmetic) or a seed
    batch (``W`` ``(K, N_out, N_in)``, ``b`` ``(K, N_out)``, ``h`` ``(K, batch, N_in)`` or a
    ``(batch, N_in)`` input shared by all seeds)."""
    if W.dim() == 2:
        return F.linear(h, W, b)
    out = h @ W.mT
    return out if b is None else out + b.unsqueeze(-2)


def noise_seed(seed: int) -> int:
    """Seed of a run seed's per-step noise generator: derived from ``seed`` but not equal to it,
    so the noise stream is not the data-shuffling stream (also seeded with ``seed``) again."""
    return int(np.random.SeedSequence([seed, 0x6E6F697365]).generate_state(1)[0])


class StepNoise:
    """Random draws made during training — dropout masks, PEPITA's random perturbation, mirror
    noise — from one ``torch.Generator`` per seed on the training device.

    With ``stacked`` the draws of the K generators are stacked along a new leading dimension (a
    seed batch); otherwise there is one seed and its draw is returned as is. ``shard = (start,
    stop, rows)`` (set by ``rate_models.distributed`` for every step) makes a per-sample draw of
    ``stop - start`` rows draw all ``rows`` rows of the global batch and keep rows
    ``start:stop``, so every process of a data-parallel run uses its rows of the masks one process
    would draw for the whole batch.
    """

    def __init__(self, seeds: list[int], device="cpu", stacked: bool = False):
        if not stacked and len(seeds) != 1:
            raise ValueError(f"unstacked noise is for one seed, got seeds {seeds}")
        self.generators = [torch.Generator(device).manual_seed(noise_seed(s)) for s in seeds]
        self.stacked = stacked
        self.shard: tuple[int, int, int] | None = None

    def _draw(self, draw, shape: tuple, per_sample: bool) -> torch.Tensor:
        rows = None
        if per_sample and self.shard is not None:
            start, stop, total = self.shard
            if shape[0] != stop - start:
                raise ValueError(f"a per-sample draw of {shape[0]} rows on a shard of {stop - start}")
            shape, rows = (total, *shape[1:]), slice(start, stop)
        out = [draw(tuple(shape), g) for g in self.generators]
        if rows is not None:
            out = [o[rows] for o in out]
        return torch.stack(out) if self.stacked else out[0]

    def bernoulli(self, p: float, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """Bernoulli(p) samples of ``shape`` (``shape[0]`` samples when ``per_sample``)."""
        return self._draw(lambda s, g: torch.bernoulli(torch.full(s, p, dtype=dtype, device=device), generator=g),
                          shape, per_sample)

    def rand(self, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """U[0, 1) samples of ``shape``."""
        return self._draw(lambda s, g: torch.rand(s, dtype=dtype, device=device, generator=g), shape, per_sample)

    def randn(self, shape: tuple, dtype, device, per_sample: bool = True) -> torch.Tensor:
        """N(0, 1) samples of ``shape``."""
        return self._draw(lambda s, g: torch.randn(s, dtype=dtype, device=device, generator=g), shape, per_sample)

    def get_state(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states: list[torch.Tensor]) -> None:
        if len(states) != len(self.generators):
            raise ValueError(f"{len(states)} saved noise generators for {len(self.generators)} seeds")
        for g, state in zip(self.generators, states):
            g.set_state(state)


class FCNetwork(nn.Module):
    """Weights ``W_l`` of shape ``(N_l, N_{l-1})`` initialised by ``neurosim.feedback``.

    ``noise`` draws the per-step randomness of ``seed`` on the CPU; a training loop on another
    device (or on a seed batch) replaces it with a :class:`StepNoise` there.
    """

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
        self.noise = StepNoise([seed])

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
            h = h / (h.norm(dim=-1, keepdim=True) + 1e-8)
        return h if mask is None else h * mask

    def dropout_masks(self, batch: int, device) -> list[torch.Tensor | None]:
        """Inverted-dropout masks (Bernoulli(1-p)/(1-p)) for every hidden layer, drawn from
        ``self.noise`` in the weights' dtype; None without dropout."""
        if not self.training or self.dropout == 0.0:
            return [None] * (self.n_layers - 1)
        keep = 1.0 - self.dropout
        dtype = self.weights[0].dtype
        return [self.noise.bernoulli(keep, (batch, n), dtype, device) / keep for n in self.sizes[1:-1]]

    def run(self, x: torch.Tensor, masks=None, layer=None, tap=None) -> torch.Tensor:
        """Output pre-activation ``a_L`` of one forward pass, the layer loop of every rule:
        ``a_l = layer(l, x_{l-1})`` (default ``W_l x_{l-1} + b_l``), ``x_l = hidden_post(phi_l(a_l),
        mask_l)`` for hidden layers. ``layer`` lets a rule route its error through its own autograd
        function; ``tap(x_l)``, when given, is what layer l+1 receives (the direct rules record
        ``x_l`` and hand on a detached copy)."""
        masks = masks or [None] * (self.n_layers - 1)
        h = x
        for l in range(self.n_layers):
            a = linear(h, self.weights[l], self.bias(l)) if layer is None else layer(l, h)
            if l == self.n_layers - 1:
                return a
            h = self.hidden_post(self.phi(l, a), masks[l])
            if tap is not None:
                h = tap(h)

    def forward_all(self, x: torch.Tensor, masks=None, a1: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activities ``[x_0, x_1, ..., x_L]`` of a plain forward pass; ``a1``, when given, is the
        first layer's pre-activation ``W_1 x + b_1`` computed by the caller."""
        hs = [x]

        def keep(h):
            hs.append(h)
            return h

        first = None if a1 is None else (
            lambda l, h: a1 if l == 0 else linear(h, self.weights[l], self.bias(l)))
        hs.append(self.phi(self.n_layers - 1, self.run(x, masks, first, keep)))
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output pre-activation ``a_L`` (logits) of a plain forward pass."""
        return self.run(x)

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """The biases (trained without weight decay)."""
        return list(self.biases) if self.biases is not None else []

    def loss_from_logits(self, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss J given output pre-activations and targets (one-hot for classification):
        a scalar, or one J per seed ``(K,)`` for a seed batch's ``(K, batch, N_L)`` outputs."""
        if self.output == "softmax":
            return -(target * torch.log_softmax(a_out, dim=-1)).sum(-1).mean(-1)
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(a_out, target.expand_as(a_out),
                                                      reduction="none").sum(-1).mean(-1)
        return 0.5 * ((self.phi(self.n_layers - 1, a_out) - target) ** 2).sum(-1).mean(-1)

    def loss_from_output(self, h_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The same loss J computed from the output activity ``x_L`` (forward-only rules)."""
        if self.output == "softmax":
            return -(target * torch.log(h_out.clamp_min(1e-12))).sum(-1).mean(-1)
        if self.output == "sigmoid":
            return F.binary_cross_entropy(h_out.clamp(1e-7, 1 - 1e-7), target.expand_as(h_out),
                                          reduction="none").sum(-1).mean(-1)
        return 0.5 * ((h_out - target) ** 2).sum(-1).mean(-1)
