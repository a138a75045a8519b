"""Layer-wise feedback rules on convolutions: FA, sign symmetry, Kolen-Pollack.

A convolution's error goes down through a feedback kernel ``B`` of the forward kernel's shape
instead of ``W`` itself (PFA paper Sec. "PFA closely approximates BP in deep convolutional
networks": ``e_l^j = phi'(a_l) ⊙ sum_i B~^{j,i} * e_{l+1}^i``, B~ rotated by 180°, i.e. the
transposed convolution with B):

    grad_x = conv2d_input(B, g),     dW = conv2d_weight(x, g) = e_{l+1} * x_l

* FA (Lillicrap et al. 2016): ``B`` fixed, drawn like ``W`` (``cfg.feedback_init``, fan-in
  ``C_in k^2``).
* Sign symmetry (Liao et al. 2016, "SF"): ``B = sign(W) · mean|W|`` per layer, recomputed every
  step, with the same per-layer gain as the FC rule (``rate_models/rules/feedback.py``).
* Kolen-Pollack: ``B`` is plastic and receives ``dB = dW`` (the kernel-shaped form of the FC
  ``dB = x e^T``, the transpose of dW), with the same weight decay, so ``B -> W``.

Linear layers (output, hidden FC) use the FC rule's :class:`FeedbackLinear` with ``B`` shaped
like ``W^T``. With ``B = W`` every layer is backprop's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rate_models.conv.base import Conv, ConvRule, Linear, seeded_tensor, tensor_angle
from rate_models.rules.feedback import FeedbackLinear


class FeedbackConv2d(torch.autograd.Function):
    """``y = conv2d(x, W, b)``; backward: ``dx = conv2d_input(B, g)``, ``dW = conv2d_weight(x, g)``,
    ``db = sum g`` over batch and positions, ``dB = dW`` (only when ``B`` requires grad: KP)."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback, stride: int, padding: int):
        ctx.save_for_backward(x, feedback)
        ctx.conv = (stride, padding)
        ctx.weight_shape, ctx.has_bias = weight.shape, bias is not None
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, g):
        x, feedback = ctx.saved_tensors
        stride, padding = ctx.conv
        need_x, need_w, need_b, need_B = ctx.needs_input_grad[:4]
        grad_x = torch.nn.grad.conv2d_input(x.shape, feedback, g, stride, padding) if need_x else None
        grad_w = (torch.nn.grad.conv2d_weight(x, ctx.weight_shape, g, stride, padding)
                  if (need_w or need_B) else None)
        grad_b = g.sum((0, 2, 3)) if (ctx.has_bias and need_b) else None
        return (grad_x, grad_w if need_w else None, grad_b, grad_w if need_B else None, None, None)


class _FeedbackLayer:
    """Mixin: how ``B`` is held. ``kind``: "fixed" (FA buffer), "sign" (sign(W)·mean|W|) or
    "plastic" (KP parameter). Subclasses give ``B``'s shape and ``apply``."""

    kind = "fixed"

    def _init_feedback(self, shape: tuple, fan_in: int, fan_out: int, cfg, seed: int) -> None:
        if self.kind == "sign":
            return
        B = seeded_tensor(shape, cfg.feedback_init, seed, f"B:{self.name}", fan_in, fan_out)
        if self.kind == "plastic":
            self.B = nn.Parameter(B)
        else:
            self.register_buffer("B", B)

    def feedback(self) -> torch.Tensor:
        """The feedback tensor in use now."""
        if self.kind == "sign":
            W = self.weight.detach()
            return self.oriented(torch.sign(W) * W.abs().mean())
        return self.B

    def oriented(self, W: torch.Tensor) -> torch.Tensor:
        """``W`` laid out as ``B`` is (kernel: unchanged; linear: transposed)."""
        return W

    def feedback_parameters(self):
        return [self.B] if self.kind == "plastic" else []

    def alignment(self, l):
        return {f"weight_alignment_l{l}_deg": tensor_angle(self.oriented(self.weight), self.feedback())}


class FeedbackConv(_FeedbackLayer, Conv):
    """A convolution whose error goes down through ``B`` (the shape of ``W``)."""

    def __init__(self, name, c_in, c_out, k, stride, padding, bias, cfg, seed):
        super().__init__(name, c_in, c_out, k, stride, padding, bias, cfg, seed)
        self._init_feedback(tuple(self.weight.shape), c_in * k * k, c_out * k * k, cfg, seed)

    def forward(self, x):
        return FeedbackConv2d.apply(x, self.weight, self.bias, self.feedback(), self.stride, self.padding)


class FeedbackLin(_FeedbackLayer, Linear):
    """A linear layer whose error goes down through ``B`` (the shape of ``W^T``)."""

    def __init__(self, name, n_in, n_out, bias, cfg, seed):
        super().__init__(name, n_in, n_out, bias, cfg, seed)
        self._init_feedback((n_in, n_out), n_in, n_out, cfg, seed)

    def oriented(self, W):
        return W.t()

    def forward(self, x):
        return FeedbackLinear.apply(x, self.weight, self.bias, self.feedback())


class SignConv(FeedbackConv):
    kind = "sign"


class SignLin(FeedbackLin):
    kind = "sign"


class PlasticConv(FeedbackConv):
    kind = "plastic"


class PlasticLin(FeedbackLin):
    kind = "plastic"


class FeedbackAlignment(ConvRule):
    """FA: fixed random ``B`` per layer."""

    conv_layer, linear_layer = FeedbackConv, FeedbackLin


class SignSymmetry(ConvRule):
    """``B = sign(W) · mean|W|``, recomputed at every step."""

    conv_layer, linear_layer = SignConv, SignLin


class KolenPollack(ConvRule):
    """``B`` learns with ``dB = dW`` and the forward weight decay (optimizer param group)."""

    conv_layer, linear_layer = PlasticConv, PlasticLin
