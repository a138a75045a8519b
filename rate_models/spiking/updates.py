"""The update functions of the spiking rules: pure, batched, one place per rule.

Notation of ``lif.py``: N samples (rows), T steps, ``U_l[t]`` potentials, ``xbar_l[t]`` presynaptic
traces, ``r_l`` spike rates (count / T, spikes per step), ``e = softmax(a_L) - y*`` the error of
the window's logits ``a_L = mean_t U_L[t]``, ``<.>`` a mean over the window's T steps. Every update
is a batch mean of per-sample updates and is *subtracted* by the optimizer (``W <- W - eta dW``),
as in the rate backend (``rate_models/rules``), whose signals these are:

* **Three-factor rules** (DFA, sDFA, DRTP; rate forms in ``rate_models/rules/direct.py``):
  ``dW_l = [(m B_l^T) ⊙ <phi'(U_l)>]^T <xbar_{l-1}>`` — the projected third factor ``m`` times the
  window mean of the spiking estimate ``phi'`` of the rate's slope (``rate_slope``) times the
  window mean of the presynaptic trace (for a conv layer the same product laid out as a kernel
  update, ``LIFNetwork.window_update``). ``m = e/N`` (DFA, Noekland 2016 eq. 3), ``sign(e)/N``
  (sDFA, DRTP paper Sec. 2.1) or ``-y*/N`` (DRTP, Frenkel et al. 2021 Algorithm 1), the rate
  rule's signal (``rate_models.rules.direct.direct_signal`` of ``e/N``): the rate rule's
  equation with window means for the rates and slopes. The third factor arrives once
  the readout has integrated the sample, as a neuromodulator does after the stimulus, and the
  synapse combines it with the window means of its two local factors.
* **Output layer** (every local rule): ``dW_L = (e/N)^T <xbar_{L-1}>``: the delta rule, which is
  the exact cross-entropy gradient of the readout since ``U_L[t] = W_L xbar_{L-1}[t]``.
* **PEPITA** (Dellaferrera & Kreiman 2022, eqs. 1-5 and Algorithm 1 with spike rates for
  activities): ``dW_l = ((r_l - r_l^err)/N)^T r_{l-1}^err`` for hidden layers, ``r^err`` from the
  modulated presentation, whose input layer carries ``s_0[t] + s F e`` (the clean presentation's
  input spikes plus the projected error as a graded input, so ``r_0^err = r_0 + s F e``, D&K's
  ``x + F e``); the output ``dW_L = (e/N)^T <xbar^err_{L-1}>``.
* **PFA** (Li Ji-An & Benna eqs. 4-6), from the top: ``delta_L = e/N``; ``ebar_l = delta_{l+1}
  B_l^T`` (the intermediate population), ``delta_l = (ebar_l R_l^T) ⊙ <phi'(U_l)>``;
  ``dW_l = delta_l^T <xbar_{l-1}>``, ``dR_l = <xbar_l>^T ebar_l`` (the products of the rate
  rule, ``rate_models/rules/pfa.py``).

The batch means ``(post/N)^T pre`` are the rate PEPITA's ``batch_outer``.

**Why the window's error, not the error at each step** (issue 14). The three-factor rules and
PFA used to apply ``e[t] = softmax(U_L[t]) - y*`` at every step. The readout potential starts each
sample at 0 and reaches its window level only after about one membrane time (20 of the 25 steps),
so over the first steps ``e[t]`` is close to ``1/K - y*`` whatever the network computes: a
target-projection component (DRTP-like) that does not shrink as the network learns, beside the
window error the readout's delta rule uses. The window form applies the rate equation to window
means. Measured (784-1024-10, lr 5e-4, seed 0, ``benchmarks/lif_controls.py``, per-step form at
commit 74a0fe8 against this one), one pass over 20,000 training samples: Fashion-MNIST DFA 76.92%
per step, 78.20% window (frozen-hidden control 75.51%); MNIST DFA 90.77% and 90.60% (control
87.78%), PFA 88.97% and 88.94%. One full epoch of 60,000: MNIST DFA 94.37% and 94.61%, DRTP 92.13%
and 92.09%, PFA 92.44% and 92.42%, sDFA 89.05% and 89.51% (control 91.54%); Fashion-MNIST DFA
79.59% and 79.02%, DRTP 79.55% and 77.57%, PFA 79.44% and 80.48%. So the per-step part was not
what kept these rules near their controls: the two forms are within a seed's spread of each other.
The window form is kept because it is the rate rule's equation and takes one outer product per
batch instead of T (the DFA pass with its test took 52 s instead of 71 s, PFA 32 s instead of
73 s, on a shared machine).

``psi(U) = 1 / (1 + k |U - theta|)^2`` is snnTorch's fast-sigmoid surrogate of ``dS/dU``
(Zenke & Ganguli 2018), the derivative BPTT uses, per unit of potential. The rate rules' ``phi'(a)``
(Noekland 2016 eq. 3 for DFA, DRTP paper eqs. 2-3, PFA eq. 5) is the slope of the hidden neuron's
rate as a function of its input, ``rate_slope`` estimates it from ``psi`` with the right scale.

**Why the scale matters** (issue 14: LIF DFA/sDFA/DRTP/PFA at or below their frozen-hidden
controls). ``psi`` is a *shape*: its mean over a firing neuron's time course is far below the
rate's slope. A non-leaky neuron with reset by subtraction fires ``1/theta`` more spikes per step
per unit of extra input current, while ``psi`` averaged over a potential that sweeps ``[0, theta)``
is ``1/(1 + k theta)`` (1/26 at the defaults k = 25, theta = 1). Measured at initialisation on
MNIST (``benchmarks/lif_mechanisms.py``; 784-1000-10, 25 steps, 512 samples): mean ``psi`` of the active hidden neurons 0.061, their
measured rate slope 0.95 spikes per step per unit current, so psi under-estimated ``phi'`` 16-fold.
The hidden layers' updates were 16x too small beside the readout's delta rule (which has no
``phi'``): DFA's relative step ``|dW_1|/|W_1|`` over ``|dW_2|/|W_2|`` was 0.05 against the rate
rule's 0.93, so at any one learning rate either the readout overshot (lr 0.1: logits ~10^3,
softmax saturated) or the hidden layer did not move, and the rule ended at its control (digits,
1024 hidden, lr 0.002, 5 epochs: DFA 95.8% vs 96.1% frozen; 64-16-10, lr 0.005, 10 epochs: 75.6%
vs 75.3%). With ``rate_slope`` the ratio is 1.34 and the hidden layer learns (64-16-10: 85.3% vs
75.3%; MNIST, one epoch, lr 5e-4: 94.37% vs 91.54%, ``benchmarks/results/lif_controls.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rate_models.rules.pepita import batch_outer
from rate_models.rules.pfa import error_below, feedback_update, intermediate_error

if TYPE_CHECKING:
    from rate_models.spiking.lif import Presentation


def surrogate_derivative(mem: torch.Tensor, threshold: float, slope: float) -> torch.Tensor:
    """``psi(U) = 1 / (1 + k |U - theta|)^2`` (per unit of potential; BPTT's surrogate)."""
    return 1.0 / (1.0 + slope * (mem - threshold).abs()) ** 2


def rate_slope(mem: torch.Tensor, threshold: float, slope: float) -> torch.Tensor:
    """``phi'(U) = ((1 + k theta) / theta) psi(U)``: the spiking estimate of the rate's slope
    ``phi'`` (spikes per step per unit of input current) that the three-factor rules and PFA use.

    Its time mean over a potential sweeping ``[0, theta)`` between spikes is ``1/theta``, the slope
    of a non-leaky integrate-and-fire neuron's rate, where ``psi``'s is ``1/(1 + k theta)``; a
    silent neuron (U far below theta) keeps a small value, as psi does. The leak makes the potential
    linger near threshold, so on MNIST the estimate's mean over active neurons is 1.6 (measured
    slope 0.95): the right order, where psi alone was 16x low (module docstring)."""
    return (1.0 + slope * threshold) / threshold * surrogate_derivative(mem, threshold, slope)


def output_update(error: torch.Tensor, mean_trace: torch.Tensor) -> torch.Tensor:
    """``(e/N)^T mean_t xbar_{L-1}[t]``: the readout's delta rule (conv activity flattened)."""
    return batch_outer(error, mean_trace.flatten(1) if mean_trace.dim() == 4 else mean_trace)[0]


def pepita_updates(clean: Presentation, modulated: Presentation, error: torch.Tensor) -> list[torch.Tensor]:
    """PEPITA's updates of every layer from the two presentations' rates and the clean error."""
    hidden = [batch_outer(clean.rates[l] - modulated.rates[l], modulated.rates[l - 1])[0]
              for l in range(1, len(clean.rates))]
    return hidden + [output_update(error, modulated.readout_input)]


def pfa_updates(m: torch.Tensor, Bs: list[torch.Tensor], Rs: list[torch.Tensor],
                slopes: list[torch.Tensor], traces: list[torch.Tensor]) -> tuple[list, list]:
    """PFA's window updates ``(dWs, dRs)`` of W_1 .. W_{L-1} and R_1 .. R_{L-1} from the top error
    ``m = e/N``, ``B_l`` (Nbar_l, N_{l+1}), ``R_l`` (N_l, Nbar_l), the hidden layers' mean rate
    slopes ``slopes`` and the mean traces ``traces`` of layers 0 .. L-1 (``Presentation``)."""
    dWs, dRs = [None] * len(Rs), [None] * len(Rs)
    delta = m
    for l in range(len(Rs), 0, -1):  # hidden layer l, 1-based
        ebar = intermediate_error(delta, Bs[l - 1])
        dRs[l - 1] = feedback_update(traces[l], ebar)
        delta = error_below(ebar, Rs[l - 1]) * slopes[l - 1]
        dWs[l - 1] = delta.mT @ traces[l - 1]
    return dWs, dRs
