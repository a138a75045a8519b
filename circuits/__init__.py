"""Brian2 circuits of two-compartment neurons running the learning rules as local plasticity.

One builder per rule (``CIRCUITS``), each returning a :class:`circuits.wiring.Circuit` whose
``network`` is an explicit ``brian2.Network``:

* ``pepita`` / ``pepita-interneuron`` (``circuits/pepita.py``): first pass stored in the soma
  (or in interneurons), second pass integrated by the dendrite;
* ``dfa`` / ``drtp`` (``circuits/three_factor.py``): three-factor plasticity with an apical signal
  from ± error populations (DFA) or from the label population (DRTP);
* ``pfa`` (``circuits/pfa.py``): error and intermediate populations, no reciprocal pair;
* ``fa`` (``circuits/fa.py``): layer-wise feedback synapses from the output neurons.

Weights and feedback come from ``neurosim.feedback`` with the same seed as the rate backend;
``rate_rule`` names the rate-backend rule whose update a circuit reproduces in rate mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from circuits.fa import build_fa
from circuits.pepita import build_pepita, build_pepita_interneuron
from circuits.pfa import build_pfa
from circuits.three_factor import build_dfa, build_drtp
from circuits.wiring import Circuit
from neurosim.circuit_params import CircuitParams


@dataclass(frozen=True)
class CircuitSpec:
    build: Callable[..., Circuit]
    rate_rule: str  # the rate-backend rule with the same update


CIRCUITS: dict[str, CircuitSpec] = {
    "pepita": CircuitSpec(build_pepita, "pepita"),
    "pepita-interneuron": CircuitSpec(build_pepita_interneuron, "pepita"),
    "dfa": CircuitSpec(build_dfa, "dfa"),
    "drtp": CircuitSpec(build_drtp, "drtp"),
    "pfa": CircuitSpec(build_pfa, "pfa"),
    "fa": CircuitSpec(build_fa, "fa"),
}


def build_circuit(rule: str, sizes, seed: int = 0, mode: str = "rate",
                  params: CircuitParams | None = None) -> Circuit:
    """Build the circuit of ``rule`` for ``sizes = [N_in, N_hidden, N_out]``; ``params``
    (default: ``CircuitParams.for_mode(mode)``) overrides ``mode``."""
    if rule not in CIRCUITS:
        raise ValueError(f"unknown circuit rule {rule!r}; choose one of: {', '.join(CIRCUITS)}")
    sizes = [int(s) for s in sizes]
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"circuits have one hidden layer: sizes must be [N_in, N_hidden, N_out] "
                         f"with positive entries, got {sizes}")
    params = params or CircuitParams.for_mode(mode)
    params.validate()
    return CIRCUITS[rule].build(sizes, params, seed)
