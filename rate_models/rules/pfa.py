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
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.feedback import pfa_feedback
from rate_models.network import linear
from rate_models.rules.base import Rule, autograd_step, product_alignment


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
        ebar = g @ B.mT
        grad_x = ebar @ R.mT if need_x else None
        grad_w = g.mT @ x if need_w else None
        grad_b = g.sum(-2) if (ctx.has_bias and need_b) else None
        grad_R = x.mT @ ebar if need_R else None
        return grad_x, grad_w, grad_b, grad_R, None


class PFA(Rule):
    orthogonal = False

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        Bs, Rs = pfa_feedback(net.sizes, seed, cfg.pfa_expansion, orthogonal=self.orthogonal)
        for i, B in enumerate(Bs):
            self.register_buffer(f"B{i + 1}", torch.from_numpy(B))
        self.Rs = nn.ParameterList([nn.Parameter(torch.from_numpy(R)) for R in Rs])

    def Bs(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(1, self.net.n_layers)]

    def feedback_parameters(self):
        return list(self.Rs)

    def compute_grads(self, x, target, masks):
        net, h = self.net, x
        for l in range(net.n_layers):
            W, b = net.weights[l], net.bias(l)
            if l == 0:
                a = linear(h, W, b)
            else:
                a = ProductFeedbackLinear.apply(h, W, b, self.Rs[l - 1], self.Bs()[l - 1])
            if l == net.n_layers - 1:
                return autograd_step(net, a, target)
            h = net.hidden_post(net.phi(l, a), masks[l])

    def alignment(self):
        """Path alignment ∠(W_{l+1}^T, R_l B_l) and path norm ratio ||R_l B_l|| / ||W_{l+1}||."""
        out = {}
        for l, (R, B) in enumerate(zip(self.Rs, self.Bs()), start=1):
            path = (R @ B).detach()
            Wt = self.net.weights[l].detach().t()
            out[f"path_alignment_l{l}_deg"] = product_alignment(Wt, path)
            out[f"path_norm_ratio_l{l}"] = float(path.norm() / Wt.norm())
        return out


class PFAOrthogonal(PFA):
    orthogonal = True
