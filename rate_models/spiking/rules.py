"""The rules of the spiking mode, each the rate rule of the same name (its feedback matrices, its
alignment figures) with the update computed on a LIF network (``updates.py`` has the equations).

The local rules run the simulation without autograd and accumulate their update step by step,
so a training step's memory does not grow with the number of steps; BPTT (the baseline, rule
``bp``) keeps every step's graph for the backward pass through time.
"""

from __future__ import annotations

import torch

from neurosim.rules import get_rule
from rate_models.rules.base import autograd_step
from rate_models.rules.direct import DirectFeedbackRule, direct_signal
from rate_models.rules.gradient import Backprop
from rate_models.rules.pepita import Pepita, input_modulation
from rate_models.rules.pfa import PFA
from rate_models.spiking.lif import LIFNetwork
from rate_models.spiking.updates import output_update, pepita_updates, pfa_updates


def _set_grads(net: LIFNetwork, updates: list[torch.Tensor]) -> None:
    for W, dW in zip(net.weights, updates):
        W.grad = dW.to(W.dtype)


class BPTT(Backprop):
    """Backpropagation through time with snnTorch's fast-sigmoid surrogate gradient."""

    def compute_grads(self, x, target, masks):
        return autograd_step(self.net, self.net.simulate(x, masks, traces=False).logits, target)


def bptt_hidden_updates(net: LIFNetwork, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """BPTT's gradients of W_1..W_{L-1} on a batch (the reference of the update-angle figure)."""
    with torch.enable_grad():
        loss = net.loss_from_logits(net.simulate(x, traces=False).logits, target)
        grads = torch.autograd.grad(loss, list(net.weights)[:-1])
    return [g.detach() for g in grads]


class ThreeFactor(DirectFeedbackRule):
    """DFA, sDFA and DRTP as three-factor rules: the third factor is the rate rule's projected
    signal (``direct_signal`` of ``e/N``, ``signal`` picks it); the feedback ``B_l`` are the rate
    rules' (``DirectFeedbackRule``)."""

    def compute_grads(self, x, target, masks):
        net = self.net
        with torch.no_grad():
            p = net.simulate(x, masks, slopes=True)
            e = net.error(p.logits, target)
            m = direct_signal(self.signal, e / e.shape[-2], target)
            hidden = [net.window_update(l, m @ B.mT, p.mean_slopes[l], p.mean_traces[l])
                      for l, B in enumerate(self.feedbacks())]
            _set_grads(net, hidden + [output_update(e, p.readout_input)])
            return net.loss_from_logits(p.logits, target)


class SpikingPepita(Pepita):
    """PEPITA with a clean and a modulated presentation of each sample. Both presentations show
    the same input spike train (the rate encoder's draws are replayed), and the modulated one adds
    the error's projection ``s F e`` to the input layer's activity as a graded current
    (``LIFNetwork.simulate(modulation=...)``): the hidden neurons receive ``W_1 (s_0[t] + s F e)``.

    Why (issue 14: LIF PEPITA's hidden update 85-90° from BPTT's, no gain over its control): the
    modulation used to be a change of the input spike probabilities, ``x + s F e``. With shared
    draws the two spike trains then differ only at the few inputs and steps whose uniform falls
    between ``x`` and ``x + s F e`` (each a Bernoulli flip of probability ``|F e|``, about 0.01 at
    ``f_scale`` 0.05), so the mismatch signal was carried by a handful of random flips whose
    number fluctuates as much as its mean. Measured on 512 MNIST samples at initialisation
    (784-1000-10, 25 steps; ``benchmarks/lif_mechanisms.py``), the angle between the spiking
    and the rate rule's ``W_1`` update: independent draws 83°, shared draws 55°, graded modulation
    35° (f_scale 0.2: 30° and 17°); what remains is the one-spike resolution of the hidden counts
    ``r = count / T``. (The angle to BPTT stays near 90° because at initialisation the *rate*
    PEPITA update is itself 92° from backprop's: that figure is no test of the spiking form.)
    Biologically: the stimulus evokes the same sensory spikes in both phases, and the top-down
    error reaches the input layer's synapses as a depolarising (graded) signal, not as extra
    sensory spikes.

    Its hidden layers learn at ``hidden_lr_scale`` (100 by default with ``--neuron lif``) times
    the readout's rate, with ``f_scale`` 0.2 (issue 14). Why: the readout's gain (``lif.py``,
    learning rates) holds every LIF rule's lr 10-200x below the rate networks', and the
    three-factor rules' hidden updates are scaled back up by their ``phi'`` estimate
    (``updates.rate_slope``); PEPITA's ``r - r_err`` has no such factor. Relative steps
    ``|dW|/|W|`` per unit lr at initialisation on MNIST (``benchmarks/lif_mechanisms.py``): hidden
    0.0038, readout 4.7, where the rate rule's are 0.0020 and 0.27. At one lr, W_1 barely moved in
    an epoch (lr 5e-3, f_scale 0.05: 90.40% vs 90.59% frozen). Separate rates (torch parameter
    groups, ``rate_models.train.build``), one MNIST epoch beside the control at the same lr and
    F (784-1024-10, seed 0, ``lif_controls.json`` ``"pepita_hidden_lr"``): at lr 5e-4 and
    f_scale 0.2 the gain is +0.26, +0.94, +2.06, +1.39 and +1.10 points at hidden_lr_scale 10,
    40, 100, 200 and 400 (control 90.01%); at f_scale 0.05 +0.14 (30) and -0.20 (200); at lr 5e-3
    (f_scale 0.2, 10) +0.56. Past 100 the hidden rates climb and neurons saturate (9% at 200, 19%
    at 400): the mismatch's product with the modulated input grows ``W_1 F`` whatever the error's
    sign, as in the circuits (``circuits/pepita.py``).
    """

    def compute_grads(self, x, target, masks):
        net = self.net
        noise = net.noise if net.training else net.eval_noise
        with torch.no_grad():
            draws = noise.get_state()
            clean = net.simulate(x, masks)
            e = net.error(clean.logits, target)
            noise.set_state(draws)
            modulated = net.simulate(x, masks, modulation=input_modulation(e, self.F, self.sign))
            _set_grads(net, pepita_updates(clean, modulated, e))
            return net.loss_from_logits(clean.logits, target)


class SpikingPFA(PFA):
    """PFA: the error reaches each hidden layer through its intermediate population ``ebar``."""

    def compute_grads(self, x, target, masks):
        net = self.net
        with torch.no_grad():
            p = net.simulate(x, masks, slopes=True)
            e = net.error(p.logits, target)
            hidden, dR = pfa_updates(e / e.shape[-2], self.Bs(), list(self.Rs), p.mean_slopes,
                                     p.mean_traces)
            _set_grads(net, hidden + [output_update(e, p.readout_input)])
            for R, d in zip(self.Rs, dR):
                R.grad = d.to(R.dtype)
            return net.loss_from_logits(p.logits, target)


class SpikingDFA(ThreeFactor):
    signal = "error"


class SpikingSignDFA(ThreeFactor):
    """sDFA (DRTP paper Sec. 2.1): ``m = sign(e)/N``.

    Known failure on LIF networks (issue 14, not fixed): softmax minus one-hot sums to zero, but
    ``sum_k sign(e_k) = K - 2``, so ``sign(e)`` carries a class-independent part that ``B``
    projects into a constant push ``∝ (B 1)_j`` on every hidden neuron, one that does not shrink as
    the error does (the paper's Sec. 2.1 notes the missing decay of the effective learning rate).
    LIF rates are bounded by one spike per step, so the push ends in saturation or silence:
    after one MNIST epoch (784-1024-10, lr 5e-4, window form) 38.4% of the hidden neurons were
    silent and 36.2% fired above 0.9 spikes per step (control: 0% and 0%), and the rule ended
    2.0 points below its frozen-hidden control (89.51% vs 91.54%). The push is the rule's own
    (the DRTP paper, Sec. 2.3, traces DRTP's advantage over sDFA to this shift of ``sign(e)``);
    the rate backend's sDFA also ends below its control after one Fashion-MNIST epoch
    (80.67% vs 81.13%, tanh hidden units, whose slope vanishes at both ends)."""

    signal = "error_sign"


class SpikingDRTP(ThreeFactor):
    signal = "target"


LIF_RULES: dict[str, type] = {
    "bp": BPTT,
    "dfa": SpikingDFA,
    "sdfa": SpikingSignDFA,
    "drtp": SpikingDRTP,
    "pepita": SpikingPepita,
    "pfa": SpikingPFA,
}


LIF_CONV_RULES = ("bp", "dfa", "sdfa", "drtp")  # rules with a convolutional LIF form


def build_lif_rule(name: str, net: LIFNetwork, cfg, seed: int):
    """The spiking rule ``name`` bound to the LIF network ``net`` with feedback drawn from ``seed``."""
    get_rule(name)
    if name not in LIF_RULES:
        raise ValueError(f"rule {name!r} has no LIF implementation; --neuron lif runs "
                         f"{', '.join(LIF_RULES)}")
    if any(spec.kind == "conv" for spec in net.specs) and name not in LIF_CONV_RULES:
        raise ValueError(f"rule {name!r} has no convolutional LIF form; on {cfg.network.arch!r} --neuron lif "
                         f"runs {', '.join(LIF_CONV_RULES)}; or use a fully connected net (--arch 1000)")
    return LIF_RULES[name](net, cfg, seed)
