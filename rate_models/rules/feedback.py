"""Layer-wise feedback rules: FA, sign symmetry, Kolen-Pollack, weight mirror.

All four replace backprop's ``W_{l+1}^T`` by a feedback matrix ``B_{l+1}`` of the same shape
(PFA paper notation, ``B_{l,l+1}``: ``(N_l, N_{l+1})``):

    e_l = phi'(a_l) ⊙ B_{l+1} e_{l+1},     dW_l = e_l x_{l-1}^T

* FA (Lillicrap et al. 2016): ``B`` fixed and random.
* Sign symmetry (Liao et al. 2016; PFA paper "SF"): ``B = sign(W^T)``, here scaled by the
  layer's mean ``|W|`` so that the error keeps backprop's magnitude (a single gain per layer;
  without it the error grows by ``~1/mean|W|`` per layer and SGD diverges without batch norm).
* Kolen-Pollack (PFA paper Sec. 2): ``dB_{l+1} = x_l e_{l+1}^T``, the transpose of ``dW_{l+1}``,
  with the same weight decay, so ``B -> W^T``.
* Weight mirror (Akrout et al. 2019): after each step, mirror mode drives layer l with noise
  ``xi ~ N(0, s^2)``, ``r = W_l xi`` (biases blocked) and moves ``B_l`` by ``eta_WM xi r^T``
  (``E[xi r^T] = s^2 W_l^T``) with decay ``lambda_WM``, so ``B_l -> (s^2/lambda_WM) W_l^T``;
  by default ``lambda_WM = s^2`` and ``B_l -> W_l^T``.

The error is routed by :class:`FeedbackLinear`, a custom autograd function: the forward is a
linear layer, the backward sends ``grad_output @ B^T`` down instead of ``grad_output @ W``.
Like every rule it also runs on a seed batch (leading seed dimension on every tensor).

**Convolutional forms** (FA, sign symmetry, Kolen-Pollack; weight mirror has none). A
convolution's error goes down through a feedback kernel ``B`` of the forward kernel's shape
instead of ``W`` itself (PFA paper Sec. "PFA closely approximates BP in deep convolutional
networks": ``e_l^j = phi'(a_l) ⊙ sum_i B~^{j,i} * e_{l+1}^i``, B~ rotated by 180°, i.e. the
transposed convolution with B):

    grad_x = conv2d_input(B, g),     dW = conv2d_weight(x, g) = e_{l+1} * x_l

* FA (Lillicrap et al. 2016): ``B`` fixed, drawn like ``W`` (``cfg.network.feedback_init``, fan-in
  ``C_in k^2``).
* Sign symmetry (Liao et al. 2016, "SF"): ``B = sign(W) · mean|W|`` per layer, recomputed every
  step, with the same per-layer gain as the FC rule.
* Kolen-Pollack: ``B`` is plastic and receives ``dB = dW`` (the kernel-shaped form of the FC
  ``dB = x e^T``, the transpose of dW), with the same weight decay, so ``B -> W``.

Linear layers (output, hidden FC) use :class:`FeedbackLinear` with ``B`` shaped like ``W^T``.
With ``B = W`` every layer is backprop's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.feedback import layer_feedback
from rate_models.layers import Conv, Linear, seeded_tensor, tensor_angle
from rate_models.network import linear
from rate_models.rules.base import ConvRule, Forms, Rule, as_numpy, autograd_step, product_alignment


class FeedbackLinear(torch.autograd.Function):
    """``y = x W^T + b``; backward: ``dx = g B^T``, ``dW = g^T x``, ``db = sum g``, ``dB = x^T g``.

    ``B`` has the shape of ``W^T``. With ``B = W^T`` this is an ordinary linear layer.
    ``dB`` (Kolen-Pollack's update) is returned only when ``B`` requires grad. On a seed batch
    every tensor has a leading seed dimension (the products batch over it, sums run over the
    sample dimension -2). Under autocast the backward computes in ``g``'s dtype; autograd casts
    each returned gradient to its input's dtype.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        return linear(x, weight, bias)

    @staticmethod
    def backward(ctx, g):
        x, feedback = ctx.saved_tensors
        x, feedback = x.to(g.dtype), feedback.to(g.dtype)
        need_x, need_w, need_b, need_B = ctx.needs_input_grad
        grad_x = g @ feedback.mT if need_x else None
        grad_w = g.mT @ x if need_w else None
        grad_b = g.sum(-2) if (ctx.has_bias and need_b) else None
        grad_B = x.mT @ g if need_B else None
        return grad_x, grad_w, grad_b, grad_B


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


class LayerFeedbackRule(Rule):
    """FA and its relatives; subclasses choose how ``B`` is made and whether it learns."""

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        for i, B in enumerate(layer_feedback(net.sizes, cfg.network.feedback_init, seed)):
            self.register_buffer(f"B{i + 2}", torch.from_numpy(B))

    def feedbacks(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(2, self.net.n_layers + 1)]

    def compute_grads(self, x, target, masks):
        """Autograd through the network with layers 2..L routing their error through ``B_l``."""
        net, feedbacks = self.net, self.feedbacks()

        def layer(l, h):
            W, b = net.weights[l], net.bias(l)
            return linear(h, W, b) if l == 0 else FeedbackLinear.apply(h, W, b, feedbacks[l - 1])

        return autograd_step(net, net.run(x, masks, layer), target)

    def feedback_blocks(self, layers):
        """``B_l`` (the shape of ``W_l^T``; KP and weight mirror: the learned ``B``, sign symmetry
        its ``sign(W^T)·mean|W|``) on the forward pairs, ``layer l -> layer l-1``, l = 2..L: every
        forward pair above the input is bidirectional."""
        return [], [(layers[l], layers[l - 1], as_numpy(B).T)
                    for l, B in zip(range(2, len(layers)), self.feedbacks())]

    def alignment(self):
        return {f"weight_alignment_l{l}_deg": product_alignment(self.net.weights[l - 1].t(), B)
                for l, B in zip(range(2, self.net.n_layers + 1), self.feedbacks())}


class FeedbackAlignment(LayerFeedbackRule):
    """FA: fixed random ``B_l``."""


class SignSymmetry(LayerFeedbackRule):
    """``B_l = sign(W_l^T) · mean|W_l|``, recomputed at every step (the mean per seed)."""

    def feedbacks(self):
        return [torch.sign(W.detach().mT) * W.detach().abs().mean(dim=(-2, -1), keepdim=True)
                for W in self.net.weights[1:]]


class KolenPollack(LayerFeedbackRule):
    """``B_l`` is a parameter; the optimizer applies ``dB = x e^T`` with the forward weight decay."""

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        self.Bs = nn.ParameterList()
        for l in range(2, net.n_layers + 1):
            self.Bs.append(nn.Parameter(getattr(self, f"B{l}").clone()))
            delattr(self, f"B{l}")

    def feedbacks(self):
        return list(self.Bs)

    def feedback_parameters(self):
        return list(self.Bs)


def mirror_grad(W: torch.Tensor, batch: int, noise_std: float, noise) -> torch.Tensor:
    """Minus the weight-mirror update of a feedback matrix shaped like ``W^T``.

    ``xi ~ N(0, s^2)`` of shape ``(batch, N_in)`` drawn from ``noise`` (a
    ``rate_models.network.StepNoise``; not per data sample, so every process of a data-parallel
    run draws the same ``xi``), ``r = xi W^T``; ``dB = xi^T r / batch``, whose expectation is
    ``s^2 W^T`` (Akrout et al. 2019). Returned negated, ready for ``.grad``.
    """
    xi = noise.randn((batch, W.shape[-1]), W.dtype, W.device, per_sample=False) * noise_std
    r = xi @ W.detach().mT
    return -(xi.mT @ r) / batch


class WeightMirror(KolenPollack):
    """FA whose ``B_l`` learn in mirror mode after every training step (own SGD optimizer)."""

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        for B in self.Bs:
            B.requires_grad_(False)
        decay = cfg.mirror.wm_noise_std ** 2 if cfg.mirror.wm_weight_decay is None else cfg.mirror.wm_weight_decay
        self.mirror_optimizer = torch.optim.SGD(list(self.Bs), lr=cfg.mirror.wm_lr, weight_decay=decay)

    def feedback_parameters(self):
        return []

    def mirror_step(self, batch: int) -> None:
        for W, B in zip(self.net.weights[1:], self.Bs):
            B.grad = mirror_grad(W, batch, self.cfg.mirror.wm_noise_std, self.net.noise)
        self.mirror_optimizer.step()

    def after_step(self):
        self.mirror_step(self.cfg.training.batch_size)

    def pre_train(self, n_steps, batch_size):
        for _ in range(n_steps):
            self.mirror_step(batch_size)


class _FeedbackLayer:
    """Mixin: a layer whose error goes down through ``B``, a fixed random buffer (FA); the
    sign-symmetric and plastic forms below override how ``B`` is held. Subclasses give ``B``'s
    shape and ``apply``."""

    def _init_feedback(self, shape: tuple, fan_in: int, fan_out: int, cfg, seed: int) -> None:
        self.register_buffer("B", self._draw_feedback(shape, fan_in, fan_out, cfg, seed))

    def _draw_feedback(self, shape: tuple, fan_in: int, fan_out: int, cfg, seed: int) -> torch.Tensor:
        return seeded_tensor(shape, cfg.network.feedback_init, seed, f"B:{self.name}", fan_in, fan_out)

    def feedback(self) -> torch.Tensor:
        """The feedback tensor in use now."""
        return self.B

    def oriented(self, W: torch.Tensor) -> torch.Tensor:
        """``W`` laid out as ``B`` is (kernel: unchanged; linear: transposed)."""
        return W

    def feedback_parameters(self):
        return []

    def alignment(self, l):
        return {f"weight_alignment_l{l}_deg": tensor_angle(self.oriented(self.weight), self.feedback())}


class _SignFeedback:
    """Mixin: ``B = sign(W) · mean|W|`` laid out as ``B``, recomputed from ``W`` at every use."""

    def _init_feedback(self, shape, fan_in, fan_out, cfg, seed):
        pass

    def feedback(self):
        W = self.weight.detach()
        return self.oriented(torch.sign(W) * W.abs().mean())


class _PlasticFeedback:
    """Mixin: ``B`` is a parameter the optimizer trains (Kolen-Pollack)."""

    def _init_feedback(self, shape, fan_in, fan_out, cfg, seed):
        self.B = nn.Parameter(self._draw_feedback(shape, fan_in, fan_out, cfg, seed))

    def feedback_parameters(self):
        return [self.B]


class FeedbackConv(_FeedbackLayer, Conv):
    """A convolution whose error goes down through ``B`` (the shape of ``W``)."""

    def __init__(self, name, c_in, c_out, k, stride, padding, bias, cfg, seed):
        super().__init__(name, c_in, c_out, k, stride, padding, bias, cfg, seed)
        self._init_feedback(tuple(self.weight.shape), c_in * k * k, c_out * k * k, cfg, seed)

    def forward(self, x):
        return FeedbackConv2d.apply(x, self.weight, self.bias, self.feedback(), self.stride, self.padding)


class FeedbackLin(_FeedbackLayer, Linear):
    """A linear layer whose error goes down through ``B`` (the shape of ``W^T``)."""

    def __init__(self, name, n_in, n_out, bias, cfg, seed, weight=None):
        super().__init__(name, n_in, n_out, bias, cfg, seed, weight)
        self._init_feedback((n_in, n_out), n_in, n_out, cfg, seed)

    def oriented(self, W):
        return W.t()

    def forward(self, x):
        return FeedbackLinear.apply(x, self.weight, self.bias, self.feedback())


class SignConv(_SignFeedback, FeedbackConv):
    pass


class SignLin(_SignFeedback, FeedbackLin):
    pass


class PlasticConv(_PlasticFeedback, FeedbackConv):
    pass


class PlasticLin(_PlasticFeedback, FeedbackLin):
    pass


class ConvFeedbackAlignment(ConvRule):
    """FA: fixed random ``B`` per layer."""

    conv_layer, linear_layer = FeedbackConv, FeedbackLin


class ConvSignSymmetry(ConvRule):
    """``B = sign(W) · mean|W|``, recomputed at every step."""

    conv_layer, linear_layer = SignConv, SignLin


class ConvKolenPollack(ConvRule):
    """``B`` learns with ``dB = dW`` and the forward weight decay (optimizer param group)."""

    conv_layer, linear_layer = PlasticConv, PlasticLin


FORMS = {
    "fa": Forms(FeedbackAlignment, ConvFeedbackAlignment),
    "sign-symmetry": Forms(SignSymmetry, ConvSignSymmetry),
    "kolen-pollack": Forms(KolenPollack, ConvKolenPollack),
    "weight-mirror": Forms(WeightMirror),
}
