"""The layers an architecture is built from: seeded layers, the layer factory, the forward-pass context.

A rule supplies a :class:`LayerFactory`; an architecture (``rate_models.architectures``) asks it
for every convolution and linear layer, so any rule runs on any architecture. The layers here are
backprop's (plain ``conv2d`` / ``linear``); rules subclass them and route the error through their
own autograd functions. The first layer of a network never needs an error below it, so the
factory gives it a plain layer whatever the rule (as the FC rules leave layer 1 without feedback).
A rule's dense form (the fully connected architecture) keeps its feedback in the rule and is
given the plain layers.

Weight layout: a convolution kernel ``W_l`` is ``(C_l, C_{l-1}, k, k)`` (PFA paper eq. 9 with
torch's channel order), a linear weight ``(N_l, N_{l-1})``, or ``(K, N_l, N_{l-1})`` for a seed
batch (``rate_models.seed_batch``; linear layers compute with ``rate_models.network.linear``).
Every tensor is drawn by ``neurosim.feedback.init_matrix`` from the stream
``stream(seed, "<kind>:<layer name>")``, so adding a layer or a rule never changes another
layer's draws; a linear layer may instead be given its initial weight (the fully connected
architecture's ``neurosim.feedback.forward_weights``, the arrays the circuits use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import init_matrix, stream
from neurosim.metrics import angle_deg
from rate_models.network import linear


def seeded_tensor(shape: tuple, scheme: str, seed: int, name: str, fan_in: int, fan_out: int,
                  gain: float = 1.0) -> torch.Tensor:
    """A float32 tensor of ``shape`` drawn as the ``(shape[0], prod(shape[1:]))`` matrix
    ``init_matrix`` makes with the given fans, from the stream of ``name``."""
    flat = init_matrix((shape[0], math.prod(shape[1:])), scheme, stream(seed, name),
                       fan_in=fan_in, fan_out=fan_out, gain=gain)
    return torch.from_numpy(flat).reshape(shape)


def tensor_angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors of one shape seen as flat vectors."""
    return angle_deg(a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy())


@dataclass
class Pass:
    """How one forward pass runs through an architecture.

    ``masks``: dropout mask per layer index (hidden linear layers; None elsewhere).
    ``tap``: applied to every hidden activity (the direct rules record it and hand the next layer
    a detached copy). ``plain``: every layer computes a plain conv/linear, so autograd gives
    backprop's gradient on the rule's own weights (the update-angle figure). ``record``: receives
    ``(layer input, layer activity)`` of every layer (PEPITA's two passes; activity is None for
    the output layer).
    """

    masks: list | None = None
    tap: Callable[[torch.Tensor], torch.Tensor] | None = None
    plain: bool = False
    record: list | None = None

    def layer(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return module.plain(x) if self.plain else module(x)

    def hidden(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.tap is None else self.tap(h)

    def mask(self, l: int, h: torch.Tensor) -> torch.Tensor:
        m = None if self.masks is None else self.masks[l]
        return h if m is None else h * m

    def keep(self, inp: torch.Tensor, activity: torch.Tensor | None) -> None:
        if self.record is not None:
            self.record.append((inp, activity))


class Layer(nn.Module):
    """A layer with a forward ``weight`` (and optional ``bias``); backprop by default."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def plain(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's pre-activation with torch's own backward (backprop)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.plain(x)

    def feedback_parameters(self) -> list[nn.Parameter]:
        """Plastic feedback tensors of this layer (KP's B, PFA's R)."""
        return []

    def alignment(self, l: int) -> dict[str, float]:
        """Alignment figures of this layer (layer index ``l``, 1-based)."""
        return {}


class Conv(Layer):
    """Backprop's convolution ``a = W * x + b`` (PFA paper eq. 9 before sigma); W drawn by
    ``cfg.network.init`` with fan-in ``C_in k^2``."""

    def __init__(self, name: str, c_in: int, c_out: int, k: int, stride: int, padding: int,
                 bias: bool, cfg, seed: int):
        super().__init__()
        self.name, self.stride, self.padding = name, stride, padding
        self.weight = nn.Parameter(seeded_tensor((c_out, c_in, k, k), cfg.network.init, seed, f"W:{name}",
                                                 fan_in=c_in * k * k, fan_out=c_out * k * k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def plain(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class Linear(Layer):
    """Backprop's linear layer ``a = W x + b``; W ``(N_out, N_in)`` drawn by ``cfg.network.init``,
    or ``weight`` when given."""

    def __init__(self, name: str, n_in: int, n_out: int, bias: bool, cfg, seed: int,
                 weight: torch.Tensor | None = None):
        super().__init__()
        self.name = name
        if weight is None:
            weight = seeded_tensor((n_out, n_in), cfg.network.init, seed, f"W:{name}", fan_in=n_in, fan_out=n_out)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def plain(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class LayerFactory:
    """Makes an architecture's layers with a rule's layer classes (plain ones for the first layer).

    ``conv(name, c_in, c_out, k, stride, padding, bias, first)`` and
    ``linear(name, n_in, n_out, bias, first, weight)``; ``name`` must be unique in the network (it
    seeds the layer's tensors). ``cfg`` is read by the layers' draws only (None does for plain
    linear layers given their weights).
    """

    def __init__(self, conv_cls: type[Conv], linear_cls: type[Linear], cfg, seed: int):
        self.conv_cls, self.linear_cls, self.cfg, self.seed = conv_cls, linear_cls, cfg, seed

    def conv(self, name: str, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0,
             bias: bool = False, first: bool = False) -> Conv:
        cls = Conv if first else self.conv_cls
        return cls(name, c_in, c_out, k, stride, padding, bias, self.cfg, self.seed)

    def linear(self, name: str, n_in: int, n_out: int, bias: bool = False, first: bool = False,
               weight: torch.Tensor | None = None) -> Linear:
        cls = Linear if first else self.linear_cls
        return cls(name, n_in, n_out, bias, self.cfg, self.seed, weight)
