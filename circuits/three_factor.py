"""DFA and DRTP as three-factor plasticity on two-compartment neurons.

The input->hidden update of a sample is ``dW_1 = delta xbar^T`` with
``delta = abar1 * phi'(vbar1)``: the apical dendrite's mean potential (third factor) times the
postsynaptic factor ``phi'(a_1)`` (``dphi1``: the basal potential lies between 0 and 1) times the
presynaptic mean rate ``xbar``. The output learns by the delta rule ``dW_2 = e h_1^T``; ``W <- W - eta dW``.

* DFA (Noekland 2016): the apical dendrite receives ``B_1 e`` from the ± error populations,
  which fire ``max(0, ±(p - y*))``: ``dW_1 = ((B_1 e) ⊙ phi'(a_1)) x^T``.
* DRTP (Frenkel et al. 2021, Algorithm 1): the apical dendrite receives ``-B_1 y*`` from the
  label population; no synapse runs from the output or an error population to a hidden neuron:
  ``dW_1 = -((B_1 y*) ⊙ phi'(a_1)) x^T``.

``B_1`` is ``neurosim.feedback.direct_feedback``'s, as in the rate backend.

Why the hidden neurons saturate (``hidden_activation`` "clipped-relu", the default of DFA, DRTP,
PFA and FA). With ReLU hidden neurons DRTP's hidden learning lowered the circuit below its
frozen-hidden control (MNIST, 784-256-10, seed 0, spiking, 20,000 samples: +0.25, -3.95, -12.40,
-8.60 points at ``eta_hidden`` 1e-5, 3e-5, 1e-4, 3e-4; -1.96 after a full epoch at 1e-4), although
its update was within 6 degrees of the rate rule's. The cause is the unbounded rate, not the
spikes: the target projection ``B_1 y*`` keeps its size whatever the activity, and a ReLU's
``phi' = 1`` lets it push a neuron's drive up without end: in the rate-mode circuit at
``eta_hidden`` 3e-3 the mean hidden activity reached 63 (12,600 Hz) after 10,000 MNIST samples,
against 0.17 in the control, and the accuracy fell to 41.85% (control 80.45%;
``benchmarks/circuit_hidden_saturation.py``). The DRTP paper's tanh units stop the push through
``phi' = 1 - h^2``. A neuron that fires at most ``rate_max`` (one spike per refractory period
``1/rate_max``) does the same: ``phi = min(max(0, v), 1)``, ``phi' = [0 < v < 1]``. Measured with
that benchmark: clipped neurons keep the mean activity at 0.49 and gain +5.95 points. And with
the rate backend (``neurosim train --rule drtp --dataset mnist --arch 256 --epochs 1 --control``,
seed 0): ``--activation relu --lr 1e-3`` -16.03 points, ``clipped-relu --lr 1e-3`` +12.58,
``clipped-relu`` (lr 0.01) +4.68, tanh (the rule's default) +3.22. The spiking DRTP circuit with
clipped neurons at ``eta_hidden`` 3e-3 gains +4.83 points on MNIST and +4.63 on Fashion-MNIST in
a full epoch (784-256-10, seed 0). The bound helps the error-driven rules too: the spiking FA
circuit, 1.90 points below its control on Fashion-MNIST with ReLU neurons, gains +5.77 with
clipped ones (full epoch).
"""

from __future__ import annotations

from circuits.pepita import error_inputs, signed_rows
from circuits.populations import hidden_group, input_group, label_group, output_group, relay_group
from circuits.wiring import Circuit, assemble, connect
from neurosim.circuit_params import CircuitParams
from neurosim.feedback import direct_feedback, forward_weights

THREE_FACTOR = "abar1*dphi1"


def forward_layers(sizes: list[int], params: CircuitParams, seed: int):
    """Input, hidden, output and label groups, the plastic W_1 and W_2 and their initial values
    (shared by DFA, DRTP and PFA)."""
    n_in, n_hid, n_out = sizes
    W1, W2 = forward_weights(sizes, "he_uniform", seed)
    inp = input_group(n_in, params, modulated=False, window="win1")
    hid = hidden_group(n_hid, params, delta=THREE_FACTOR, forward_rate="r1")
    out = output_group(n_out, params, clamp_phase2=False)
    lab = label_group(n_out, params)
    syns = [connect(inp, hid, W1, "v_b", params, "input_hidden"),
            connect(hid, out, W2, "v_b", params, "hidden_output")]
    return [inp, hid, out, lab], syns, {"W1": W1, "W2": W2}


def build_dfa(sizes: list[int], params: CircuitParams, seed: int = 0) -> Circuit:
    """DFA: apical ``B_1 e`` from ± error populations (one phase per sample)."""
    groups, syns, initial = forward_layers(sizes, params, seed)
    inp, hid, out, lab = groups
    n_out = sizes[-1]
    B1 = direct_feedback(sizes, params.feedback_init, seed)[0]
    err = relay_group(2 * n_out, params, "error", n_inputs=2, hold=False)
    to_err_out, to_err_lab = error_inputs(n_out)
    syns += [connect(out, err, to_err_out, "v_in1", params, "output_error"),
             connect(lab, err, to_err_lab, "v_in2", params, "label_error"),
             connect(err, hid, signed_rows(B1), "v_a", params, "error_hidden")]
    return assemble("dfa", sizes, params, seed, 1, groups + [err], syns,
                    {"W1": "input_hidden", "W2": "hidden_output"}, initial)


def build_drtp(sizes: list[int], params: CircuitParams, seed: int = 0) -> Circuit:
    """DRTP: apical ``-B_1 y*`` from the label population; no error pathway to hidden neurons."""
    groups, syns, initial = forward_layers(sizes, params, seed)
    inp, hid, out, lab = groups
    B1 = direct_feedback(sizes, params.feedback_init, seed)[0]
    syns.append(connect(lab, hid, -B1, "v_a", params, "label_hidden"))
    return assemble("drtp", sizes, params, seed, 1, groups, syns,
                    {"W1": "input_hidden", "W2": "hidden_output"}, initial)
