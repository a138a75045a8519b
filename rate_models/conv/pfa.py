"""Product feedback alignment on convolutions, PFA and PFA-o (Li Ji-An & Benna, eqs. 11-12).

Between a convolution ``W_{l+1}`` (``(C_{l+1}, C_l, h, w)``) and its input the error passes an
intermediate population of ``Nbar_l = round(expansion · C_{l+1})`` channels:

    ebar_l^k = sum_i B^{k,i} * e_{l+1}^i                 (eq. 11; B fixed, 1×1, (Nbar_l, C_{l+1}))
    e_l^j    = phi'(a_l) ⊙ sum_k R~^{j,k} * ebar_l^k      (eq. 12; R plastic, h×w, (Nbar_l, C_l, h, w))
    dR       = x_l * ebar_l,   dW = e_{l+1} * x_l

``R`` is stored in the forward kernel's layout with ``Nbar`` output channels, so eq. 12 is the
transposed convolution ``conv2d_input(R, ebar)`` with W's stride and padding, and eq. 11's 1×1
convolution keeps ``ebar`` at ``e_{l+1}``'s resolution. The path ``R B`` acts as the kernel
``P^{i,j} = sum_k B^{k,i} R^{k,j}`` in place of ``W``; with ``P = W`` the layer is backprop's.
Because ``B`` is a 1×1 channel mixing and every step is linear, the backward evaluates eqs. 11-12
reassociated: ``sum_k R~^{j,k} * ebar^k = sum_i P~^{j,i} * e^i`` and ``x * ebar^k = sum_i B^{k,i}
(x * e^i)``, the same arithmetic in another order, so its convolutions have ``C_{l+1}`` channels
(as backprop's) instead of ``Nbar_l``.
``B``: Glorot normal with gain sqrt((1+lam)/2) (PFA) or semi-orthogonal (PFA-o); ``R``: Glorot
normal, fans ``(Nbar + C_l) h w`` (Appendix 1.1). Linear layers use the FC rule's
:class:`ProductFeedbackLinear` with the FC shapes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import stream
from rate_models.conv.base import Conv, ConvRule, Linear, seeded_tensor, tensor_angle
from rate_models.rules.pfa import ProductFeedbackLinear


class ProductFeedbackConv2d(torch.autograd.Function):
    """``y = conv2d(x, W, b)``; backward: eqs. 11-12, ``dx = conv2d_input(R, ebar)`` (before phi')
    and ``dR = conv2d_weight(x, ebar)`` with ``ebar = conv2d(g, B)`` (1×1), ``dW = conv2d_weight(x, g)``,
    ``db = sum g``. Computed in the reassociated product form, which is the same linear arithmetic
    without materialising the ``Nbar``-channel ``ebar``: ``dx = conv2d_input(P, g)`` with the product
    kernel ``P^{i,j} = sum_k B^{k,i} R^{k,j}``, and ``dR^k = sum_i B^{k,i} conv2d_weight(x, g)^i``."""

    @staticmethod
    def forward(ctx, x, weight, bias, R, B, stride: int, padding: int):
        ctx.save_for_backward(x, R, B)
        ctx.conv = (stride, padding)
        ctx.weight_shape, ctx.has_bias = weight.shape, bias is not None
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, g):
        x, R, B = ctx.saved_tensors
        stride, padding = ctx.conv
        need_x, need_w, need_b, need_R = ctx.needs_input_grad[:4]
        B2 = B[:, :, 0, 0]  # (Nbar, C_out)
        grad_x = grad_w = grad_b = grad_R = None
        if need_x:  # eqs. 11-12: conv2d_input(R, conv2d(g, B)) == conv2d_input(P, g)
            P = torch.einsum("ki,kjhw->ijhw", B2, R)
            grad_x = torch.nn.grad.conv2d_input(x.shape, P, g, stride, padding)
        if need_w or need_R:
            dW = torch.nn.grad.conv2d_weight(x, ctx.weight_shape, g, stride, padding)
            grad_w = dW if need_w else None
            if need_R:  # conv2d_weight(x, conv2d(g, B)) == B-mixing of conv2d_weight(x, g)
                grad_R = torch.einsum("ki,ijhw->kjhw", B2, dW)
        if ctx.has_bias and need_b:
            grad_b = g.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, grad_R, None, None, None


def pfa_B(name: str, n_up: int, seed: int, expansion: float, orthogonal: bool) -> torch.Tensor:
    """Fixed ``B`` of shape ``(Nbar, n_up)``, ``Nbar = round(expansion · n_up)``: Glorot normal with
    gain sqrt((1+lam)/2), so ``B^T B ≈ I`` (PFA), or semi-orthogonal ``B^T B = I`` (PFA-o)."""
    lam = 1.0 / expansion
    n_bar = max(1, int(round(expansion * n_up)))
    if not orthogonal:
        return seeded_tensor((n_bar, n_up), "glorot_normal", seed, f"PFA_B:{name}", fan_in=n_up,
                             fan_out=n_bar, gain=math.sqrt((1.0 + lam) / 2.0))
    if n_bar < n_up:
        raise ValueError(f"PFA-o needs expansion >= 1 (Nbar={n_bar} < N={n_up} in layer {name})")
    q, r = np.linalg.qr(stream(seed, f"PFA_B:{name}").normal(size=(n_bar, n_up)))
    return torch.from_numpy((q * np.sign(np.diag(r))).astype(np.float32))


class _ProductLayer:
    """Mixin: the fixed ``B`` buffer and the plastic ``R`` parameter of a layer."""

    orthogonal = False

    def feedback_parameters(self):
        return [self.R]

    def alignment(self, l):
        """Path alignment ∠(W, P) and path norm ratio ||P|| / ||W||, P the kernel R B acts as."""
        P, W = self.path().detach(), self.oriented_weight().detach()
        return {f"path_alignment_l{l}_deg": tensor_angle(W, P), f"path_norm_ratio_l{l}": float(P.norm() / W.norm())}


class ProductConv(_ProductLayer, Conv):
    def __init__(self, name, c_in, c_out, k, stride, padding, bias, cfg, seed):
        super().__init__(name, c_in, c_out, k, stride, padding, bias, cfg, seed)
        B = pfa_B(name, c_out, seed, cfg.pfa_expansion, self.orthogonal)
        n_bar = B.shape[0]
        self.register_buffer("B", B.reshape(n_bar, c_out, 1, 1))
        self.R = nn.Parameter(seeded_tensor((n_bar, c_in, k, k), "glorot_normal", seed, f"PFA_R:{name}",
                                            fan_in=n_bar * k * k, fan_out=c_in * k * k))

    def path(self):
        return torch.einsum("ki,kjhw->ijhw", self.B[:, :, 0, 0], self.R)

    def oriented_weight(self):
        return self.weight

    def forward(self, x):
        return ProductFeedbackConv2d.apply(x, self.weight, self.bias, self.R, self.B, self.stride, self.padding)


class ProductLin(_ProductLayer, Linear):
    def __init__(self, name, n_in, n_out, bias, cfg, seed):
        super().__init__(name, n_in, n_out, bias, cfg, seed)
        B = pfa_B(name, n_out, seed, cfg.pfa_expansion, self.orthogonal)
        self.register_buffer("B", B)
        self.R = nn.Parameter(seeded_tensor((n_in, B.shape[0]), "glorot_normal", seed, f"PFA_R:{name}",
                                            fan_in=B.shape[0], fan_out=n_in))

    def path(self):
        return self.R @ self.B

    def oriented_weight(self):
        return self.weight.t()

    def forward(self, x):
        return ProductFeedbackLinear.apply(x, self.weight, self.bias, self.R, self.B)


class ProductConvOrthogonal(ProductConv):
    orthogonal = True


class ProductLinOrthogonal(ProductLin):
    orthogonal = True


class PFA(ConvRule):
    conv_layer, linear_layer = ProductConv, ProductLin


class PFAOrthogonal(ConvRule):
    conv_layer, linear_layer = ProductConvOrthogonal, ProductLinOrthogonal
