"""What every rule provides to the training loop and to the connectivity analyzer.

A rule computes one batch's update of every plastic tensor and leaves it in ``.grad``, so that
torch's optimizers (momentum, weight decay, schedulers) apply it: ``W <- W - lr * dW``.

A rule has up to two rate forms, listed in its family file's ``FORMS`` (:class:`Forms`): a
:class:`Rule` on the fully connected architecture ``fc`` (``dense``) and a :class:`ConvRule` on the
convolutional ones (``conv``). ``rate_models.architectures`` builds every architecture from the
layers of the form's :meth:`Rule.layer_factory` (``rate_models.layers``): the dense forms keep their
feedback in the rule (its state-dict keys, and the arrays ``neurosim.feedback`` shares with the
circuits) and route the error through the hooks of ``FCNetwork.run``, so their layers are plain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurosim.config import RunConfig
from neurosim.metrics import angle_deg
from rate_models.layers import Conv, LayerFactory, Linear, Pass
from rate_models.architectures import FCNetwork


class Rule(nn.Module):
    """Base class: holds the network, fixed feedback as buffers, plastic feedback as parameters.
    ``conv_layer`` / ``linear_layer``: the layers the rule's architecture is built from (plain:
    backprop's, the dense forms')."""

    conv_layer: type[Conv] = Conv
    linear_layer: type[Linear] = Linear

    @classmethod
    def layer_factory(cls, cfg, seed: int) -> LayerFactory:
        return LayerFactory(cls.conv_layer, cls.linear_layer, cfg, seed)

    @classmethod
    def check_architecture(cls, rule: str, net) -> None:
        """Raise ValueError when this rule has no form for ``net``; every architecture by default."""

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
        """bf16 autocast for the passes of ``compute_grads`` when ``cfg.training.amp == "bf16"`` (updates
        land in ``.grad`` in the parameters' dtype; the optimizer step and weight mirroring run
        outside it); a disabled context otherwise."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.training.amp == "bf16")

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

    # -- connectivity -------------------------------------------------------------------------
    def connectivity_blocks(self) -> tuple[list[tuple[str, int]], list[tuple[str, str, np.ndarray]]]:
        """Populations ``[(name, size)]`` and weighted projections ``[(pre, post, M)]`` of the
        network and this rule, ``M[i, j]`` (float64) the weight of ``pre`` neuron i -> ``post``
        neuron j: the forward ``W_l^T``, ``layer l-1 -> layer l`` (populations ``input``,
        ``hidden1`` ... ``output``), then the rule's feedback pathways (:meth:`feedback_blocks`)."""
        sizes = self.net.sizes
        L = len(sizes) - 1
        layers = ["input", *[f"hidden{l}" for l in range(1, L)], "output"]
        pops = list(zip(layers, sizes))
        blocks = [(layers[l - 1], layers[l], as_numpy(W).T) for l, W in enumerate(self.net.weights, start=1)]
        more_pops, more_blocks = self.feedback_blocks(layers)
        return pops + more_pops, blocks + more_blocks

    def feedback_blocks(self, layers: list[str]) -> tuple[list, list]:
        """The populations and projections that carry this rule's feedback, given the layers'
        population names (``layers[0]`` the input, ``layers[-1]`` the output)."""
        raise ValueError(f"rule {self.cfg.rule!r}: no neuron-level feedback mapping")


def autograd_step(net: FCNetwork, a_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Backward the loss from the output pre-activation; custom autograd functions on the way
    decide how the error travels. A seed batch has one loss per seed; their sum is backwarded,
    which gives every seed the gradient of its own loss (the seeds share no tensor)."""
    loss = net.loss_from_logits(a_out, target)
    loss.sum().backward()
    return loss.detach()


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached float64 numpy copy (connectivity blocks)."""
    return t.detach().cpu().double().numpy()


def product_alignment(W_product: torch.Tensor, feedback: torch.Tensor) -> float:
    """Angle in degrees between a forward-weight (product) and a feedback matrix of its shape."""
    return angle_deg(W_product.detach().cpu().double().numpy(),
                     feedback.detach().cpu().double().numpy())


class ConvRule(Rule):
    """A rule on a convolutional architecture: same interface as :class:`Rule`.

    The default update is autograd through the rule's layers (feedback-path rules); subclasses
    set ``conv_layer`` / ``linear_layer`` and, for forward-only rules, override ``compute_grads``.
    """

    def compute_grads(self, x, target, masks):
        return autograd_step(self.net, self.net(x, Pass(masks=masks)), target)

    def feedback_parameters(self):
        return [p for layer in self.net.layers for p in layer.feedback_parameters()]

    def alignment(self):
        out = {}
        for l, layer in enumerate(self.net.layers, start=1):
            out.update(layer.alignment(l))
        return out

    def connectivity_blocks(self):
        raise ValueError(f"rule {self.cfg.rule!r} on arch {self.net.name!r}: the neuron-level "
                         "connectivity covers fully connected networks (arch fc)")


@dataclass(frozen=True)
class Forms:
    """The rate forms of one rule: ``dense`` on the fully connected architecture, ``conv`` on the
    convolutional ones; None where the rule has no such form."""

    dense: type[Rule] | None = None
    conv: type[ConvRule] | None = None
