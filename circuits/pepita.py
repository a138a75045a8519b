"""PEPITA as a circuit: the soma stores the first pass, the dendrite integrates the second.

Dellaferrera & Kreiman 2022, eqs. 1-5 and Algorithm 1, one hidden layer, sample by sample:

* phase 1 (clean input ``x``): each hidden neuron stores its first-pass activity
  ``h_1 = max(0, vbar1)``, ``vbar1`` its basal potential's mean over window 1; the output
  neurons measure ``e = p - y*`` over window 1 and the error population stores it.
* phase 2: the error population fires ``e`` (as ± halves) onto the input population through
  ``F`` (fixed, ``neurosim.feedback.pepita_F``), whose activity becomes ``x + s F e``; each
  hidden basal dendrite integrates the modulated response, ``h_1^err = max(0, vbar2)``.
* update (start of the next sample): ``dW_1 = (h_1 - h_1^err) xbar^T`` with ``xbar = x + s F e``
  the input's phase-2 mean (the stored first pass minus the dendrite's second pass, times
  presynaptic activity); output by the delta rule ``dW_2 = e (h_1^err)^T`` with the somatic
  spike rate ``r2``; ``W <- W - eta dW``.

Spiking mode: with the rate backend's ``F`` the mismatch ``h_1 - h_1^err`` is ~1% of the
activity (``|F e| ~ 0.01``). Read
from the spike counts of two passes with independent Poisson input it was buried in their noise:
the summed update of 50 probe samples was 80.7° from the rate rule's (digits, 64-256-10, seed 0).
Three changes make it stand out (the first two: same measurement):

1. the two passes share their input spikes: the input encoders start both passes of a sample
   from the same potential (``circuits.populations.input_group``), so the second pass repeats
   the first pass's spikes, shifted only where ``F e`` changes a rate (spike counts: 50.8°);
2. the mismatch is read from the basal potential, which is linear in the input spikes, rather
   than from the somatic spike counts, which resolve one spike per 40 ms window (12% of
   activity 1) where the signal is ~1% (basal potential: 28.5°). Biologically the first pass is
   held as a slow somatic trace of the neuron's depolarization (e.g. its calcium level) and
   compared with the dendrite's potential during the second pass, as in dendritic
   prediction-error rules (Urbanczik & Senn 2014).
3. the circuit's ``F`` is four times the rate backend's (``f_scale`` 0.2), so that the mismatch
   stands above the noise (MNIST 784-256-10, 20,000 samples, seed 0: 51.2° at ``f_scale`` 0.05
   and 784-500-10, 36.2° at 0.2, 29.2° at 0.5). Biologically ``F`` is the strength of the error
   neurons' synapses onto the input neurons: a few percent change of an input's rate rather than
   1%. A larger ``F`` is not better: the update's product of ``W_1 F e`` with the modulated
   input's own ``F e`` grows ``W_1 F`` at a rate ~``eta_hidden f_scale^2`` whatever the error's
   sign, so ``f_scale`` 0.5 needs a rate too small to learn in an epoch (1e-4: -0.13 points on
   MNIST) or collapses later (1e-3: 88.75% after one epoch, 71.4% after three; rate rule,
   ``benchmarks/circuit_pepita_stability.py``). At the defaults (``f_scale`` 0.2,
   ``eta_hidden`` 3e-3, clipped-ReLU hidden neurons) the spiking circuit gains +3.65 points on
   MNIST and +3.46 on Fashion-MNIST after one epoch (``benchmarks/results/circuit_controls.json``).

The interneuron variant stores the first pass in a population of interneurons instead: hidden
neuron i drives interneuron i (weight 1), which holds its phase-1 mean and replays it during
phase 2 onto hidden neuron i's apical dendrite (weight -1), so ``abar2 = -h_1`` and the
mismatch is ``-abar2 - r2``, from spikes (the interneuron relays the hidden neuron's spikes).
Its angle to the rate rule is larger (75.9° at ``f_scale`` 0.05, 38.5° at 0.5, 54.4° at 0.2 with
clipped-ReLU neurons; MNIST, seed 0; 31.8° at 0.5 since the input encoders integrate their signed
drive, ``circuits.populations.input_group``). Its mismatch was biased by that clip and by the
first pass's store: over 200 digits samples at the initial weights its mean was -0.0022 where
rate mode's is +0.0067; with the signed drive and a random somatic potential at the start of
phase 1 (``hidden_group``) it is +0.0051 (``benchmarks/circuit_mismatch_bias.py``). Most of
what remains is noise: a spike count resolves one spike per window (0.125 of activity 1 at the
defaults), so the spiking mismatch differs from rate mode's by an rms of 0.086 per neuron and
sample at ``f_scale`` 0.5 (correlation 0.72) and 0.067 at 0.2 (correlation 0.36), where the basal
reading above differs by 0.042 at 0.2 (0.66). Windows of 80 ms halve the counts' relative noise
(the angle to the rate rule on 20,000 MNIST samples: 31.8° at 40 ms, 20.0° at 80 ms).

With those windows and clipped-ReLU neurons it learns at ``eta_hidden`` 1e-3, its default
(``neurosim.circuit_params``): +3.78 points on one MNIST epoch (89.30%) and +2.27 on Fashion-MNIST
(78.40%, seed 0), +5.67 +- 3.30 on digits (64-32-10, 10 epochs, seeds 0-4), where at 3e-4 it
gained +1.42, -0.17 and +1.39 +- 5.19 (``benchmarks/results/circuit_controls.json``). The
circuit's rate rule at ``f_scale`` 0.5 and ``eta_hidden`` 1e-3 collapses after about 1.5 MNIST
epochs (see ``f_scale`` above) and within one Fashion-MNIST epoch (the rate-mode circuit: 68.32%
against a control of 77.10%, input baseline 0.2), so for longer training lower the rate
(``--eta-decay``; the spiking variant over several epochs is not measured).

Its mismatch is also biased by the input. With ``f_scale`` 0.5 the modulation often takes a dark
pixel's phase-2 input ``x + F e`` below 0: the rate rule keeps the sign, while a spiking encoder
fires no spikes below 0, so a dark pixel's second pass carries too many. Over 200 digits samples
at the initial weights (64-32-10, ``benchmarks/circuit_mismatch_bias.py``) the dark pixels'
phase-2 change was +0.042 spiking against +0.012 in rate mode at the input baseline of 0.05, and
the mean mismatch was off by +0.008 per neuron and sample. A baseline of 0.2 (``--input-baseline
0.2``: dark pixels fire at 40 Hz) brings the change to +0.015 against +0.012 and the bias to
+0.002, and raises the gains on digits (+11.56 +- 5.65), but lowers the input's contrast and the
accuracy by about 2 points (MNIST 87.06% with a gain of +3.94, Fashion-MNIST 76.56% with +3.11,
seeds 0-2; digits 78.33% against 80.11%). The default baseline stays 0.05.

Reading the second pass from the basal potential instead of the spike count
(``delta = -abar2 - phi2``) was tried and rejected: it lowered the mismatch's noise (rms 0.063,
correlation 0.76, digits 64-256-10) but the circuit collapsed on digits (64-32-10: 14.4%, 21.1%
and 10.0% after 10 epochs, seeds 0-2, controls 70.8-78.6%; not recorded in the JSON files).
"""

from __future__ import annotations

import numpy as np

from circuits.populations import hidden_group, input_group, label_group, output_group, relay_group
from circuits.wiring import Circuit, assemble, connect
from neurosim.circuit_params import CircuitParams
from neurosim.feedback import forward_weights, pepita_F


def signed_rows(M: np.ndarray) -> np.ndarray:
    """``[M, -M]`` along the presynaptic axis: the weights from a ± pair population."""
    return np.concatenate([M, -M], axis=1)


def error_inputs(n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights output -> error and label -> error: the first half gets ``p - y*``, the second
    ``y* - p``."""
    eye = np.eye(n_out)
    return np.concatenate([eye, -eye]), np.concatenate([-eye, eye])


def build_pepita(sizes: list[int], params: CircuitParams, seed: int = 0,
                 interneuron: bool = False) -> Circuit:
    """The PEPITA circuit ``sizes = [N_in, N_hidden, N_out]`` with the rate backend's seeded
    ``W_1, W_2, F``; ``interneuron=True`` stores the first pass in interneurons."""
    n_in, n_hid, n_out = sizes
    W1, W2 = forward_weights(sizes, "he_uniform", seed)
    F = pepita_F(n_in, n_out, seed, params.f_scale)
    delta = "-abar2 - r2" if interneuron else "phi1 - phi2"
    inp = input_group(n_in, params, modulated=True, window="win2")
    hid = hidden_group(n_hid, params, delta=delta, forward_rate="r2", replay=True)
    out = output_group(n_out, params, clamp_phase2=False)
    lab = label_group(n_out, params)
    err = relay_group(2 * n_out, params, "error", n_inputs=2, hold=True)
    to_err_out, to_err_lab = error_inputs(n_out)
    groups = [inp, hid, out, lab, err]
    syns = [connect(inp, hid, W1, "v_b", params, "input_hidden"),
            connect(hid, out, W2, "v_b", params, "hidden_output"),
            connect(out, err, to_err_out, "v_in1", params, "output_error"),
            connect(lab, err, to_err_lab, "v_in2", params, "label_error"),
            connect(err, inp, signed_rows(F), "m", params, "error_input")]
    if interneuron:
        inter = relay_group(n_hid, params, "interneuron", n_inputs=1, hold=True)
        groups.append(inter)
        syns += [connect(hid, inter, np.eye(n_hid), "v_in1", params, "hidden_interneuron"),
                 connect(inter, hid, -np.eye(n_hid), "v_a", params, "interneuron_hidden")]
    rule = "pepita-interneuron" if interneuron else "pepita"
    return assemble(rule, sizes, params, seed, 2, groups, syns,
                    {"W1": "input_hidden", "W2": "hidden_output"},
                    {"W1": W1, "W2": W2})


def build_pepita_interneuron(sizes: list[int], params: CircuitParams, seed: int = 0) -> Circuit:
    """PEPITA with the first pass stored in interneurons (see the module docstring)."""
    return build_pepita(sizes, params, seed, interneuron=True)
