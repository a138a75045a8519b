"""Direct feedback rules on convolutional architectures: DFA, sDFA, DRTP.

Every hidden activity ``h_l`` (each conv block's output after its nonlinearity and pooling, each
conv inside a residual block, each hidden linear layer) is an injection point: in the forward it
is the identity, and the next layer receives ``h_l`` detached, so no error travels between
layers. In the backward :class:`DirectInjection` gives ``h_l`` the gradient

    dJ/dh_l := reshape(B_l s),   s = e (DFA), sign(e)/N (sDFA), -y*/N (DRTP)

with ``e = dJ/da_L`` (``(h_L - y*)/N`` per sample) and ``B_l`` of shape ``(C_l H_l W_l, N_L)``
fixed and random (``cfg.feedback_init``, fan-in ``N_L``, as ``neurosim.feedback.direct_feedback``
draws the FC rules' ``B_l``). Autograd then multiplies by pooling's routing, ``phi'(a_l)`` and batch
norm on the way to ``W_l``: ``dW_l = (phi'(a_l) ⊙ B_l s) * h_{l-1}`` — the FC rules'
``rate_models/rules/direct.py`` forms (Noekland 2016; Frenkel et al. 2021 Algorithm 1 and Sec. 2.2)
with the layer's activity laid out as an image. Inside a residual block the block's input is
detached for both paths, so the shortcut projection learns from the block output's signal.
The output layer learns by the delta rule ``dW_L = e h_{L-1}^T``.
"""

from __future__ import annotations

import math

import torch

from rate_models.conv.base import ConvRule, Pass, seeded_tensor
from rate_models.rules.base import autograd_step

MAX_FEEDBACK_ENTRIES = 2 ** 30  # 4 GiB of float32: beyond this the dense B_l do not fit sensibly


class DirectInjection(torch.autograd.Function):
    """Identity on the output pre-activation ``a_L``; its backward also returns, for every tapped
    hidden activity ``h_l``, ``(s @ B_l^T)`` reshaped to ``h_l``'s shape, where ``g = dJ/da_L`` and
    ``s = g`` ("error"), ``sign(g)/N`` ("error_sign") or ``-y*/N`` ("target")."""

    @staticmethod
    def forward(ctx, a_out, signal: str, target, n_taps: int, *feedbacks_and_taps):
        feedbacks, taps = feedbacks_and_taps[:n_taps], feedbacks_and_taps[n_taps:]
        ctx.signal, ctx.n_taps = signal, n_taps
        ctx.shapes = [h.shape for h in taps]
        ctx.save_for_backward(target, *feedbacks)
        return a_out.view_as(a_out)

    @staticmethod
    def backward(ctx, g):
        target, *feedbacks = ctx.saved_tensors
        n = g.shape[0]
        if ctx.signal == "error":
            s = g
        elif ctx.signal == "error_sign":
            s = torch.sign(g) / n
        else:
            s = -target / n
        injected = tuple((s @ B.t()).reshape(shape) for B, shape in zip(feedbacks, ctx.shapes))
        return (g, None, None, None) + (None,) * ctx.n_taps + injected


class DirectFeedbackRule(ConvRule):
    """DFA / sDFA / DRTP differ only in the projected signal."""

    signal = "error"

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        shapes = net.hidden_shapes()
        n_out = net.n_out
        total = sum(math.prod(s) for s in shapes) * n_out
        if total > MAX_FEEDBACK_ENTRIES:
            raise ValueError(
                f"rule {cfg.rule!r} on arch {cfg.arch!r} with {n_out} outputs needs {total:,} direct "
                f"feedback entries (> {MAX_FEEDBACK_ENTRIES:,}); use a smaller input or fewer classes, "
                "or a layer-wise rule (fa, sign-symmetry, kolen-pollack, pfa)")
        for i, shape in enumerate(shapes, start=1):
            D = math.prod(shape)
            self.register_buffer(f"B{i}", seeded_tensor((D, n_out), cfg.feedback_init, seed,
                                                        f"D:{net.name}:{i}", fan_in=n_out, fan_out=D))
        self.n_taps = len(shapes)

    def feedbacks(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{i}") for i in range(1, self.n_taps + 1)]

    def forward_with_taps(self, x, target, masks) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output pre-activation, with the signal injected into the returned hidden activities."""
        taps = []

        def tap(h):
            taps.append(h)
            return h.detach()

        a_out = self.net(x, Pass(masks=masks, tap=tap))
        return DirectInjection.apply(a_out, self.signal, target, len(taps), *self.feedbacks(), *taps), taps

    def compute_grads(self, x, target, masks):
        a_out, _ = self.forward_with_taps(x, target, masks)
        return autograd_step(self.net, a_out, target)


class DFA(DirectFeedbackRule):
    signal = "error"


class SignDFA(DirectFeedbackRule):
    signal = "error_sign"


class DRTP(DirectFeedbackRule):
    signal = "target"
