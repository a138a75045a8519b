"""Direct feedback rules: DFA, sDFA and DRTP.

Each hidden layer l receives a signal projected directly from the output by a fixed random
``B_l`` of shape ``(N_l, N_L)`` (``neurosim.feedback.direct_feedback``):

* DFA (Noekland 2016):       ``e_l = phi'(a_l) ⊙ B_l e``,        ``e = dJ/da_L``
* sDFA (Frenkel et al. 2021): ``e_l = phi'(a_l) ⊙ B_l sign(e)``
* DRTP (Frenkel et al. 2021, Algorithm 1): ``e_l = -phi'(a_l) ⊙ B_l y*``: the target, not the
  error, so no error travels back and the update is not locked (``W_l <- W_l + eta (B_l y* ⊙
  phi'(a_l)) x_{l-1}^T``).

``dW_l = e_l x_{l-1}^T``; the output layer learns by the delta rule ``dW_L = e x_{L-1}^T``.
The batch mean of the paper's per-sample updates is used (``e/N`` per sample, as in ``dJ/da_L``).
"""

from __future__ import annotations

import torch

from neurosim.feedback import direct_feedback
from rate_models.network import linear
from rate_models.rules.base import Rule, autograd_step, product_alignment

_SIGNALS = ("error", "error_sign", "target")


class DirectFeedback(torch.autograd.Function):
    """Identity on the output pre-activation ``a_L``; its backward also sends the projected signal
    ``s @ B_l^T`` to every hidden activity ``x_l`` (after dropout), where

    ``s = g`` (DFA), ``sign(g)/N`` (sDFA) or ``-y*/N`` (DRTP), ``g = dJ/da_L`` of shape (N, N_L).
    Autograd then multiplies by dropout masks and ``phi'(a_l)`` on the way to ``W_l``. On a seed
    batch every tensor has a leading seed dimension and N is the size of dimension -2.
    """

    @staticmethod
    def forward(ctx, a_out, signal, target, n_hidden, *feedbacks_and_hidden):
        feedbacks = feedbacks_and_hidden[:n_hidden]
        ctx.signal, ctx.n_hidden = signal, n_hidden
        ctx.save_for_backward(target, *feedbacks)
        return a_out.view_as(a_out)

    @staticmethod
    def backward(ctx, g):
        target, *feedbacks = ctx.saved_tensors
        n = g.shape[-2]
        if ctx.signal == "error":
            s = g
        elif ctx.signal == "error_sign":
            s = torch.sign(g) / n
        else:
            s = -target / n
        injected = [s @ B.to(s.dtype).mT for B in feedbacks]
        return (g, None, None, None) + (None,) * ctx.n_hidden + tuple(injected)


class DirectFeedbackRule(Rule):
    """DFA / sDFA / DRTP differ only in the projected signal."""

    signal = "error"

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        for i, B in enumerate(direct_feedback(net.sizes, cfg.feedback_init, seed)):
            self.register_buffer(f"B{i + 1}", torch.from_numpy(B))

    def feedbacks(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(1, self.net.n_layers)]

    def compute_grads(self, x, target, masks):
        net = self.net
        h, hidden = x, []
        for l in range(net.n_layers - 1):
            # each layer sees its input detached: no error flows between layers
            h = net.hidden_post(net.phi(l, linear(h.detach(), net.weights[l], net.bias(l))), masks[l])
            hidden.append(h)
        a_out = linear(h.detach(), net.weights[-1], net.bias(net.n_layers - 1))
        a_out = DirectFeedback.apply(a_out, self.signal, target, len(hidden), *self.feedbacks(), *hidden)
        return autograd_step(net, a_out, target)

    def alignment(self):
        """Angle between ``B_l`` and ``(W_L ... W_{l+1})^T``, the matrix BP would use (N_l × N_L)."""
        out, W = {}, [w.detach() for w in self.net.weights]
        for l in range(1, self.net.n_layers):
            product = W[-1]
            for w in reversed(W[l:-1]):
                product = product @ w
            out[f"weight_alignment_l{l}_deg"] = product_alignment(product.t(), self.feedbacks()[l - 1])
        return out


class DFA(DirectFeedbackRule):
    signal = "error"


class SignDFA(DirectFeedbackRule):
    signal = "error_sign"


class DRTP(DirectFeedbackRule):
    signal = "target"
