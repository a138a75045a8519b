"""Layer-wise feedback rules: FA, sign symmetry, Kolen-Pollack, weight mirror.

All four replace backprop's ``W_{l+1}^T`` by a feedback matrix ``B_{l+1}`` of the same shape
(PFA paper notation, ``B_{l,l+1}``: ``(N_l, N_{l+1})``):

    e_l = phi'(a_l) ⊙ B_{l+1} e_{l+1},     dW_l = e_l x_{l-1}^T

* FA (Lillicrap et al. 2016): ``B`` fixed and random.
* Sign symmetry (Liao et al. 2016; PFA paper "SF"): ``B = sign(W^T)``, here scaled by the
  layer's mean |W| so that the error keeps backprop's magnitude (a single gain per layer;
  without it the error grows by ~1/mean|W| per layer and SGD diverges without batch norm).
* Kolen-Pollack (PFA paper Sec. 2): ``dB_{l+1} = x_l e_{l+1}^T``, the transpose of ``dW_{l+1}``,
  with the same weight decay, so ``B -> W^T``.
* Weight mirror (Akrout et al. 2019): after each step, mirror mode drives layer l with noise
  ``xi ~ N(0, s^2)``, ``r = W_l xi`` (biases blocked) and moves ``B_l`` by ``eta_WM xi r^T``
  (``E[xi r^T] = s^2 W_l^T``) with decay ``lambda_WM``, so ``B_l -> (s^2/lambda_WM) W_l^T``;
  by default ``lambda_WM = s^2`` and ``B_l -> W_l^T``.

The error is routed by :class:`FeedbackLinear`, a custom autograd function: the forward is a
linear layer, the backward sends ``grad_output @ B^T`` down instead of ``grad_output @ W``.
Like every rule it also runs on a seed batch (leading seed dimension on every tensor).
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.feedback import layer_feedback
from rate_models.network import linear
from rate_models.rules.base import Rule, autograd_step, product_alignment


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


def feedback_forward(net, x, feedbacks, masks):
    """Output pre-activation with layers 2..L routing their error through ``feedbacks``."""
    h = x
    for l in range(net.n_layers):
        W, b = net.weights[l], net.bias(l)
        a = linear(h, W, b) if l == 0 else FeedbackLinear.apply(h, W, b, feedbacks[l - 1])
        if l == net.n_layers - 1:
            return a
        h = net.hidden_post(net.phi(l, a), masks[l])


class LayerFeedbackRule(Rule):
    """FA and its relatives; subclasses choose how ``B`` is made and whether it learns."""

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        for i, B in enumerate(layer_feedback(net.sizes, cfg.feedback_init, seed)):
            self.register_buffer(f"B{i + 2}", torch.from_numpy(B))

    def feedbacks(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(2, self.net.n_layers + 1)]

    def compute_grads(self, x, target, masks):
        return autograd_step(self.net, feedback_forward(self.net, x, self.feedbacks(), masks), target)

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
        decay = cfg.wm_noise_std ** 2 if cfg.wm_weight_decay is None else cfg.wm_weight_decay
        self.mirror_optimizer = torch.optim.SGD(list(self.Bs), lr=cfg.wm_lr, weight_decay=decay)

    def feedback_parameters(self):
        return []

    def mirror_step(self, batch: int) -> None:
        for W, B in zip(self.net.weights[1:], self.Bs):
            B.grad = mirror_grad(W, batch, self.cfg.wm_noise_std, self.net.noise)
        self.mirror_optimizer.step()

    def after_step(self):
        self.mirror_step(self.cfg.batch_size)

    def pre_train(self, n_steps, batch_size):
        for _ in range(n_steps):
            self.mirror_step(batch_size)
