"""Product feedback alignment as a circuit: the error reaches the hidden layer through an error
population ``e`` and an intermediate population ``ebar``, so no neuron pair is connected both
ways (Li Ji-An & Benna, eqs. 4-6, one hidden layer):

    ebar = B e                  (eq. 4; error -> intermediate, B fixed, (Nbar × N_out))
    e_1  = phi'(a_1) ⊙ R ebar   (eq. 5; intermediate -> hidden apical, R plastic, (N_h × Nbar))
    dR   = h_1 ebar^T           (eq. 6)
    dW_1 = e_1 x^T,  dW_2 = e h_1^T,  every matrix <- itself - eta d(matrix)

``e`` and ``ebar`` are ± pair populations. ``R`` is held twice, as ``+R`` from the positive half
of ``ebar`` and ``-R`` from the negative half; both synapse sets learn by the same local rule
``dw = r1_post vbar2_pre`` (postsynaptic rate times the presynaptic neuron's mean potential,
``+ebar`` or ``-ebar``), which keeps them exactly opposite. ``B`` and the initial ``R`` are
``neurosim.feedback.pfa_feedback``'s, as in the rate backend.

Each sample is shown twice (two phases, the same clean input). ``W_1``, ``W_2`` and the
hidden rate ``h_1`` of the ``R`` update come from phase 1, ``ebar`` of the ``R`` update from
phase 2. In rate mode the phases are identical, so this is eq. 6 exactly. In spiking mode it
keeps the two factors' noise independent: within one window a hidden spike also moves the
output, the error and ``ebar``, so ``E[r1 ebar^T]`` gains a term ``Var(r1) (B phi' W_2)^T``
that drives ``R B`` towards ``-W_2^T``; measured on digits, with one window ``R`` turned
against backprop and the circuit stayed at chance.
"""

from __future__ import annotations

import numpy as np

from circuits.pepita import error_inputs, signed_rows
from circuits.populations import relay_group
from circuits.three_factor import forward_layers
from circuits.wiring import Circuit, assemble, connect
from neurosim.circuit_params import CircuitParams
from neurosim.feedback import pfa_feedback


def build_pfa(sizes: list[int], params: CircuitParams, seed: int = 0) -> Circuit:
    """PFA: output error -> ± error population -> ± intermediate population -> hidden apical."""
    groups, syns, initial = forward_layers(sizes, params, seed)
    inp, hid, out, lab = groups
    n_out = sizes[-1]
    (B,), (R,) = pfa_feedback(sizes, seed, params.pfa_expansion)
    n_bar = B.shape[0]
    err = relay_group(2 * n_out, params, "error", n_inputs=2, hold=False)
    ebar = relay_group(2 * n_bar, params, "error_bar", n_inputs=1, hold=False, mean_window2=True)
    to_err_out, to_err_lab = error_inputs(n_out)
    syns += [connect(out, err, to_err_out, "v_in1", params, "output_error"),
             connect(lab, err, to_err_lab, "v_in2", params, "label_error"),
             connect(err, ebar, np.concatenate([signed_rows(B), -signed_rows(B)]), "v_in1", params,
                     "error_errorbar"),
             connect(ebar, hid, signed_rows(R), "v_a", params, "errorbar_hidden")]
    return assemble("pfa", sizes, params, seed, 2, groups + [err, ebar], syns,
                    {"W1": "input_hidden", "W2": "hidden_output", "R": "errorbar_hidden"},
                    {**initial, "R": R})
