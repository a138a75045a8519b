"""PEPITA on convolutional networks (Dellaferrera & Kreiman 2022, Sec. 3.3 and Fig. 2).

Two forward passes under ``no_grad``, as the FC rule (``rate_models/rules/pepita.py``): the
standard pass on ``x`` gives ``e = h_L - y*``; the modulated pass runs on ``x + s F e`` with ``F``
``(C H W, N_L)`` (the FC ``F`` with the image flattened; fan-in ``C H W``, e.g. 32·32·3 in the
paper's Table 2) reshaped to the input image. For a convolution, Sec. 3.3's four steps are

    1. for every output position p of every sample: (h_l - h_l^err)[p] times the input patch of
       the modulated pass that produced p (the presynaptic term is the modulated pass, eq. 4);
    2. sum those products;  3. divide by their number (N samples × H_out W_out positions);
    4. subtract the result with the optimizer (eq. 6).

Steps 1-3 over a batch are one ``conv2d_weight``:

    dW_l = conv2d_weight(h_{l-1}^err, W_l.shape, h_l - h_l^err) / (N H_l W_l)

with ``h_l`` the layer's activity after its nonlinearity and before pooling (the map the filter
produced) and ``h_{l-1}^err`` the layer's input in the modulated pass (after the previous layer's
pooling; ``x + s F e`` for the first layer). Hidden linear layers use eq. 4 and the output layer
eq. 5 ``dW_L = e (h_{L-1}^err)^T``, batch means, exactly as the FC rule. Biases take the same
postsynaptic terms with a presynaptic 1.

Variants: ``pepita-f0`` (F = 0, Appendix D eq. 10) and ``pepita-random`` (input ``x + s F (k r)``,
eq. 11). PEPITA has no form for residual connections or batch norm in the papers, so the rule
accepts only the plain convolutional architectures.
"""

from __future__ import annotations

import torch

from neurosim.feedback import pepita_F
from rate_models.conv.base import Conv, ConvRule, Pass

VARIANTS = ("pepita", "pepita-f0", "pepita-random")


def conv_pepita_update(pre_err: torch.Tensor, post_diff: torch.Tensor, layer: Conv) -> tuple:
    """``(dW, db)`` of a convolution from its modulated-pass input ``(N, C_in, H, W)`` and the
    postsynaptic difference ``h - h^err`` ``(N, C_out, H_out, W_out)``: Sec. 3.3 steps 1-3."""
    count = post_diff.shape[0] * post_diff.shape[2] * post_diff.shape[3]
    dW = torch.nn.grad.conv2d_weight(pre_err, layer.weight.shape, post_diff, layer.stride, layer.padding)
    return dW / count, post_diff.sum((0, 2, 3)) / count


def linear_pepita_update(pre: torch.Tensor, post: torch.Tensor) -> tuple:
    """Batch mean of ``post pre^T`` and of ``post`` (eqs. 4-5)."""
    scaled = post / post.shape[0]
    return scaled.t() @ pre, scaled.sum(0)


class Pepita(ConvRule):
    """PEPITA and its F = 0 / random-perturbation controls on a plain convolutional network."""

    variant = "pepita"

    @classmethod
    def check_architecture(cls, rule, net):
        if not net.plain_feedforward:
            raise ValueError(
                f"rule {rule!r} has no form for arch {net.name!r}: PEPITA's update (Sec. 3.3) is "
                "defined for plain conv/pooling/linear stacks, not residual connections or batch "
                "norm; use arch pepita-conv, drtp-conv-mnist or drtp-conv-cifar10, or a "
                "feedback rule (bp, fa, sign-symmetry, kolen-pollack, dfa, sdfa, drtp, pfa, pfa-o)")

    def __init__(self, net, cfg, seed):
        super().__init__(net, cfg, seed)
        F = torch.from_numpy(pepita_F(net.input_dim, net.n_out, seed, cfg.f_scale, cfg.f_distribution))
        self.register_buffer("F", torch.zeros_like(F) if self.variant == "pepita-f0" else F)
        self.sign = cfg.modulation_sign

    def passes(self, x, target, masks) -> tuple[list, list, torch.Tensor, torch.Tensor]:
        """Records ``[(input, activity)]`` of the standard and the modulated pass, ``e`` and ``h_L``."""
        x = x.reshape(len(x), -1)
        record, record_err = [], []
        h_out = self.net.phi(self.net.n_layers - 1, self.net(x, Pass(masks=masks, record=record)))
        e = h_out - target
        signal = e
        if self.variant == "pepita-random":
            signal = self.cfg.random_perturbation_k * torch.rand_like(e)
        self.net(x + self.sign * (signal @ self.F.t()), Pass(masks=masks, record=record_err))
        return record, record_err, e, h_out

    def compute_grads(self, x, target, masks):
        with torch.no_grad():
            record, record_err, e, h_out = self.passes(x, target, masks)
            layers = self.net.layers
            for layer, (_, h), (pre_err, h_err) in zip(layers[:-1], record[:-1], record_err[:-1]):
                if isinstance(layer, Conv):
                    dW, db = conv_pepita_update(pre_err, h - h_err, layer)
                else:
                    dW, db = linear_pepita_update(pre_err, h - h_err)
                layer.weight.grad = dW
                if layer.bias is not None:
                    layer.bias.grad = db
            dW, db = linear_pepita_update(record_err[-1][0], e)
            layers[-1].weight.grad = dW
            if layers[-1].bias is not None:
                layers[-1].bias.grad = db
            return self.net.loss_from_output(h_out, target)


class PepitaF0(Pepita):
    variant = "pepita-f0"


class PepitaRandom(Pepita):
    variant = "pepita-random"
