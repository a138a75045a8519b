"""Product feedback alignment, PFA and PFA-o (Li Ji-An & Benna).

Between layers l and l+1 the error travels through an intermediate population ``ebar_l`` of
``Nbar_l = N_{l+1}/lam`` neurons, so no neuron pair is connected both ways:

    ebar_l = B_l e_{l+1}                (eq. 4, B_l fixed, (Nbar_l × N_{l+1}))
    e_l    = phi'(a_l) ⊙ R_l ebar_l     (eq. 5, R_l plastic, (N_l × Nbar_l))
    dR_l   = x_l ebar_l^T               (eq. 6)
    dW_{l+1} = e_{l+1} x_l^T

Weight decay acts on W and R (optimizer param groups); the PFA appendix lowers it after the first
epoch (``weight_decay_after_first_epoch``). With lr and decay of R set to zero PFA is FA with
``B = R B``; with ``B = I`` it is Kolen-Pollack.

The three products of eqs. 4-6 are written once (:func:`intermediate_error`,
:func:`error_below`, :func:`feedback_update`) and used by the rate and the spiking forms.

**Convolutional forms** (eqs. 11-12). Between a convolution ``W_{l+1}`` (``(C_{l+1}, C_l, h,
w)``) and its input the error passes an intermediate population of ``Nbar_l = round(expansion · C_{l+1})`` channels:

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
normal, fans ``(Nbar + C_l) h w`` (Appendix 1.1). Linear layers use
:class:`ProductFeedbackLinear` with the FC shapes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import pfa_feedback, stream
from rate_models.layers import Conv, Linear, seeded_tensor, tensor_angle
from rate_models.network import linear
from rate_models.rules.base import ConvRule, Forms, Rule, as_numpy, autograd_step, product_alignment


def intermediate_error(e: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Eq. 4 for a batch (rows are samples): ``ebar_l = e_{l+1} B_l^T``."""
    return e @ B.mT


def error_below(ebar: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Eq. 5 before ``phi'(a_l)``, for a batch: ``ebar_l R_l^T``."""
    return ebar @ R.mT


def feedback_update(x: torch.Tensor, ebar: torch.Tensor) -> torch.Tensor:
    """Eq. 6 summed over a batch: ``dR_l = x_l^T ebar_l``."""
    return x.mT @ ebar


class ProductFeedbackLinear(torch.autograd.Function):
    """``y = x W^T + b``; backward: ``ebar = g B^T``, ``dx = ebar R^T``, ``dR = x^T ebar``,
    ``dW = g^T x``, ``db = sum g`` (batch forms of eqs. 4-6). Seed batches and autocast as in
    ``rate_models.rules.feedback.FeedbackLinear``."""

    @staticmethod
    def forward(ctx, x, weight, bias, R, B):
        ctx.save_for_backward(x, R, B)
        ctx.has_bias = bias is not None
        return linear(x, weight, bias)

    @staticmethod
    def backward(ctx, g):
        x, R, B = (t.to(g.dtype) for t in ctx.saved_tensors)
        need_x, need_w, need_b, need_R, _ = ctx.needs_input_grad
        ebar = intermediate_error(g, B)
        grad_x = error_below(ebar, R) if need_x else None
        grad_w = g.mT @ x if need_w else None
        grad_b = g.sum(-2) if (ctx.has_bias and need_b) else None
        grad_R = feedback_update(x, ebar) if need_R else None
        return grad_x, grad_w, grad_b, grad_R, None


class PFA(Rule):
    orthogonal = False

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        Bs, Rs = pfa_feedback(net.sizes, seed, cfg.pfa.pfa_expansion, orthogonal=self.orthogonal)
        for i, B in enumerate(Bs):
            self.register_buffer(f"B{i + 1}", torch.from_numpy(B))
        self.Rs = nn.ParameterList([nn.Parameter(torch.from_numpy(R)) for R in Rs])

    def Bs(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(1, self.net.n_layers)]

    def feedback_parameters(self):
        return list(self.Rs)

    def compute_grads(self, x, target, masks):
        """Autograd through the network with layers 2..L routing their error through eqs. 4-5."""
        net, Bs = self.net, self.Bs()

        def layer(l, h):
            W, b = net.weights[l], net.bias(l)
            if l == 0:
                return linear(h, W, b)
            return ProductFeedbackLinear.apply(h, W, b, self.Rs[l - 1], Bs[l - 1])

        return autograd_step(net, net.run(x, masks, layer), target)

    def alignment(self):
        """Path alignment ∠(W_{l+1}^T, R_l B_l) and path norm ratio ||R_l B_l|| / ||W_{l+1}||."""
        out = {}
        for l, (R, B) in enumerate(zip(self.Rs, self.Bs()), start=1):
            path = (R @ B).detach()
            Wt = self.net.weights[l].detach().t()
            out[f"path_alignment_l{l}_deg"] = product_alignment(Wt, path)
            out[f"path_norm_ratio_l{l}"] = float(path.norm() / Wt.norm())
        return out


    def feedback_blocks(self, layers):
        """Separate error populations ``error1`` ... ``errorL`` and intermediate populations
        ``ebar1`` ...: ``B_l`` ``error(l+1) -> ebar l``, ``R_l`` ``ebar l -> error l``. The
        one-to-one links by which a layer produces or gates its error (``e_L = x_L − y*``,
        ``φ'(a_l)``) are multiplicative, not weighted synapses, and are left out: no neuron pair
        is connected both ways."""
        sizes = self.net.sizes
        pops = [(f"error{l}", sizes[l]) for l in range(1, len(sizes))]
        blocks = []
        for l, (R, B) in enumerate(zip(self.Rs, self.Bs()), start=1):
            pops.append((f"ebar{l}", B.shape[0]))
            blocks.append((f"error{l + 1}", f"ebar{l}", as_numpy(B).T))
            blocks.append((f"ebar{l}", f"error{l}", as_numpy(R).T))
        return pops, blocks


class PFAOrthogonal(PFA):
    orthogonal = True


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
        B = pfa_B(name, c_out, seed, cfg.pfa.pfa_expansion, self.orthogonal)
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
    def __init__(self, name, n_in, n_out, bias, cfg, seed, weight=None):
        super().__init__(name, n_in, n_out, bias, cfg, seed, weight)
        B = pfa_B(name, n_out, seed, cfg.pfa.pfa_expansion, self.orthogonal)
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


class ConvPFA(ConvRule):
    conv_layer, linear_layer = ProductConv, ProductLin


class ConvPFAOrthogonal(ConvRule):
    conv_layer, linear_layer = ProductConvOrthogonal, ProductLinOrthogonal


FORMS = {
    "pfa": Forms(PFA, ConvPFA),
    "pfa-o": Forms(PFAOrthogonal, ConvPFAOrthogonal),
}
