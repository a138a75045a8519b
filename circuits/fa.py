"""Feedback alignment with layer-wise feedback synapses: the contrast for the connectivity
analyzer, since every hidden-output pair is connected both ways (``W_2`` up, ``B_2`` down).

Lillicrap et al. 2016, one hidden layer: ``dW_1 = ((B_2 e) ⊙ phi'(a_1)) x^T``, ``dW_2 = e h_1^T``.
The output neurons themselves send the feedback, so the error is formed in the hidden neurons'
apical dendrites by contrasting two phases:

* phase 1 (free): the output fires ``p``; the apical dendrite averages ``B_2 p`` (``abar1``);
* phase 2 (clamped): the output fires the target ``y*``; the apical dendrite averages ``B_2 y*``
  (``abar2``); so ``abar1 - abar2 = B_2 (p - y*) = B_2 e``.

``B_2`` is ``neurosim.feedback.layer_feedback``'s (the shape of ``W_2^T``), as in the rate backend.
"""

from __future__ import annotations

from circuits.populations import hidden_group, input_group, label_group, output_group
from circuits.wiring import Circuit, assemble, connect
from neurosim.circuit_params import CircuitParams
from neurosim.feedback import forward_weights, layer_feedback


def build_fa(sizes: list[int], params: CircuitParams, seed: int = 0) -> Circuit:
    """FA: output -> hidden apical feedback synapses ``B_2``, free and clamped phases."""
    n_in, n_hid, n_out = sizes
    W1, W2 = forward_weights(sizes, "he_uniform", seed)
    B2 = layer_feedback(sizes, params.feedback_init, seed)[0]
    inp = input_group(n_in, params, modulated=False, window="win1")
    hid = hidden_group(n_hid, params, delta="(abar1 - abar2)*dphi1", forward_rate="r1")
    out = output_group(n_out, params, clamp_phase2=True)
    lab = label_group(n_out, params)
    syns = [connect(inp, hid, W1, "v_b", params, "input_hidden"),
            connect(hid, out, W2, "v_b", params, "hidden_output"),
            connect(out, hid, B2, "v_a", params, "output_hidden")]
    return assemble("fa", sizes, params, seed, 2, [inp, hid, out, lab], syns,
                    {"W1": "input_hidden", "W2": "hidden_output"},
                    {"W1": W1, "W2": W2})
