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
The projected signal is written once, :func:`direct_signal`; the fully connected and the
convolutional forms inject it with :class:`DirectFeedback`, the spiking forms
(``rate_models/spiking/rules.py``) use it as their third factor.

**Convolutional forms.** Every hidden activity ``h_l`` (each conv block's output after its
nonlinearity and pooling, each conv inside a residual block, each hidden linear layer) is an
injection point: in the forward it is the identity, and the next layer receives ``h_l`` detached,
so no error travels between layers. In the backward ``h_l`` receives

    dJ/dh_l := reshape(B_l s),   s = e (DFA), sign(e)/N (sDFA), -y*/N (DRTP)

with ``B_l`` of shape ``(C_l H_l W_l, N_L)`` fixed and random (``cfg.network.feedback_init``, fan-in
``N_L``, as ``neurosim.feedback.direct_feedback`` draws the FC rules' ``B_l``). Autograd then
multiplies by pooling's routing, ``phi'(a_l)`` and batch norm on the way to ``W_l``:
``dW_l = (phi'(a_l) ⊙ B_l s) * h_{l-1}`` — the FC forms (Noekland 2016; Frenkel et al. 2021
Algorithm 1 and Sec. 2.2) with the layer's activity laid out as an image. Inside a residual block
the block's input is detached for both paths, so the shortcut projection learns from the block
output's signal. The output layer learns by the delta rule ``dW_L = e h_{L-1}^T``.
"""

from __future__ import annotations

import math

import torch

from neurosim.feedback import direct_feedback
from rate_models.layers import Pass, seeded_tensor
from rate_models.rules.base import ConvRule, Forms, Rule, as_numpy, autograd_step, product_alignment

SIGNALS = ("error", "error_sign", "target")
MAX_FEEDBACK_ENTRIES = 2 ** 30  # 4 GiB of float32: beyond this the dense B_l do not fit sensibly


def direct_signal(kind: str, g: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The signal ``s`` a direct rule projects through ``B_l``, from ``g = dJ/da_L = e/N`` of shape
    (N, N_L) (N = size of dimension -2, so seed batches too): ``s = g`` ("error", DFA),
    ``sign(g)/N`` ("error_sign", sDFA) or ``-y*/N`` ("target", DRTP)."""
    n = g.shape[-2]
    if kind == "error":
        return g
    if kind == "error_sign":
        return torch.sign(g) / n
    if kind == "target":
        return -target / n
    raise ValueError(f"unknown direct signal {kind!r}; choose one of {', '.join(SIGNALS)}")


class DirectFeedback(torch.autograd.Function):
    """Identity on the output pre-activation ``a_L``; its backward also sends the projected signal
    ``s @ B_l^T`` (:func:`direct_signal` of ``g = dJ/da_L``), reshaped to the activity's shape, to
    every tapped hidden activity ``h_l`` (FC: after dropout; conv: an image). Autograd then
    multiplies by dropout masks and ``phi'(a_l)`` on the way to ``W_l``. On a seed batch every
    tensor has a leading seed dimension and N is the size of dimension -2.
    """

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
        s = direct_signal(ctx.signal, g, target)
        injected = tuple((s @ B.to(s.dtype).mT).reshape(shape) for B, shape in zip(feedbacks, ctx.shapes))
        return (g, None, None, None) + (None,) * ctx.n_taps + injected


class DirectFeedbackRule(Rule):
    """DFA / sDFA / DRTP differ only in the projected signal."""

    signal = "error"

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        for i, B in enumerate(direct_feedback(net.sizes, cfg.network.feedback_init, seed)):
            self.register_buffer(f"B{i + 1}", torch.from_numpy(B))

    def feedbacks(self) -> list[torch.Tensor]:
        return [getattr(self, f"B{l}") for l in range(1, self.net.n_layers)]

    def compute_grads(self, x, target, masks):
        hidden = []

        def tap(h):  # each layer sees its input detached: no error flows between layers
            hidden.append(h)
            return h.detach()

        a_out = self.net.run(x, masks, tap=tap)
        a_out = DirectFeedback.apply(a_out, self.signal, target, len(hidden), *self.feedbacks(), *hidden)
        return autograd_step(self.net, a_out, target)

    def alignment(self):
        """Angle between ``B_l`` and ``(W_L ... W_{l+1})^T``, the matrix BP would use (N_l × N_L)."""
        out, W = {}, [w.detach() for w in self.net.weights]
        for l in range(1, self.net.n_layers):
            product = W[-1]
            for w in reversed(W[l:-1]):
                product = product @ w
            out[f"weight_alignment_l{l}_deg"] = product_alignment(product.t(), self.feedbacks()[l - 1])
        return out

    def feedback_blocks(self, layers):
        """``B_l``, ``output -> hidden l``: the output neurons carry the error, so the last hidden
        layer's pairs with the output are bidirectional."""
        return [], [(layers[-1], layers[l], as_numpy(B).T) for l, B in enumerate(self.feedbacks(), start=1)]


class DFA(DirectFeedbackRule):
    signal = "error"


class SignDFA(DirectFeedbackRule):
    signal = "error_sign"


class DRTP(DirectFeedbackRule):
    signal = "target"

    def feedback_blocks(self, layers):
        """``B_l`` from a separate population ``target`` (the label, not the error) to hidden l:
        no bidirectional pair."""
        pops = [("target", self.net.sizes[-1])]
        return pops, [("target", layers[l], as_numpy(B).T) for l, B in enumerate(self.feedbacks(), start=1)]


class ConvDirectFeedbackRule(ConvRule):
    """DFA / sDFA / DRTP differ only in the projected signal."""

    signal = "error"

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        shapes = net.hidden_shapes()
        n_out = net.n_out
        total = sum(math.prod(s) for s in shapes) * n_out
        if total > MAX_FEEDBACK_ENTRIES:
            raise ValueError(
                f"rule {cfg.rule!r} on arch {cfg.network.arch!r} with {n_out} outputs needs {total:,} direct "
                f"feedback entries (> {MAX_FEEDBACK_ENTRIES:,}); use a smaller input or fewer classes, "
                "or a layer-wise rule (fa, sign-symmetry, kolen-pollack, pfa)")
        for i, shape in enumerate(shapes, start=1):
            D = math.prod(shape)
            self.register_buffer(f"B{i}", seeded_tensor((D, n_out), cfg.network.feedback_init, seed,
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
        return DirectFeedback.apply(a_out, self.signal, target, len(taps), *self.feedbacks(), *taps), taps

    def compute_grads(self, x, target, masks):
        a_out, _ = self.forward_with_taps(x, target, masks)
        return autograd_step(self.net, a_out, target)


class ConvDFA(ConvDirectFeedbackRule):
    signal = "error"


class ConvSignDFA(ConvDirectFeedbackRule):
    signal = "error_sign"


class ConvDRTP(ConvDirectFeedbackRule):
    signal = "target"


FORMS = {
    "dfa": Forms(DFA, ConvDFA),
    "sdfa": Forms(SignDFA, ConvSignDFA),
    "drtp": Forms(DRTP, ConvDRTP),
}
