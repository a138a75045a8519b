"""Synapses between the groups, and the circuit object every builder returns.

A projection is a dense matrix ``M`` of shape ``(n_post, n_pre)`` (zeros are not connected).
Rate mode: the synapses write ``target_post = sum_j w r_j`` (``(summed)``). Spiking mode: each
presynaptic spike kicks the target potential by ``w / (rate_max tau_syn)``.

A plastic projection applies the sample's update at the start of the next sample,
``w -= eta learn_M(t) post_factor_post pre_factor_pre``, where the gate ``learn_M(t)`` of matrix
``M`` is ``eta_decay**k`` when the previous sample was a training sample of epoch ``k`` and ``M``
is not frozen, and 0 otherwise: a three-factor (or Hebbian) update computed entirely from the two
neurons' own window means.
``PLASTICITY`` names the factors of each plastic matrix; ``HIDDEN_MATRICES`` are the ones a
frozen-hidden control keeps fixed (only the readout ``W2`` learns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Network, NeuronGroup, Synapses, second

from circuits.populations import reset_code
from neurosim.circuit_params import CircuitParams

# plastic matrix -> (learning rate, post group, post factor, pre group, pre factor)
PLASTICITY = {"W1": ("eta_hidden", "hidden", "delta", "input", "xbar"),
              "W2": ("eta_output", "output", "ebar", "hidden", "h_fwd"),
              "R": ("eta_feedback", "hidden", "r1", "error_bar", "vbar2")}
HIDDEN_MATRICES = ("W1", "R")


def connect(pre: NeuronGroup, post: NeuronGroup, matrix: np.ndarray, target: str,
            params: CircuitParams, name: str) -> Synapses:
    """Synapses ``pre -> post`` with weights ``matrix[post, pre]`` onto compartment ``target``."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(post), len(pre)):
        raise ValueError(f"{name}: weight matrix has shape {matrix.shape}, expected "
                         f"({len(post)}, {len(pre)}) = (post, pre)")
    dt = params.dt * second
    if params.mode == "rate":
        syn = Synapses(pre, post, f"w : 1\n{target}_post = w*r_pre : 1 (summed)", dt=dt, name=name)
    else:
        syn = Synapses(pre, post, "w : 1", on_pre=f"{target}_post += w*kick", dt=dt, name=name)
    # presynaptic-major order: a spike's synapses are contiguous in memory, so delivering it reads
    # its weights and targets in sequence. In postsynaptic-major order (np.nonzero(matrix)) each
    # read was a cache miss: 784-500-10 PEPITA trained 204 samples/s, now 322 (one thread,
    # benchmarks/results/circuit_throughput_synapse_order_2026-12-05.json)
    pre_idx, post_idx = np.nonzero(matrix.T)
    syn.connect(i=pre_idx, j=post_idx)
    syn.w = matrix[post_idx, pre_idx]
    return syn


@dataclass
class Circuit:
    """A built circuit: its Brian2 network, groups and synapses by name, and the constants its
    equations read (``namespace``; the stimulus tables are added when it runs)."""

    rule: str
    sizes: list[int]
    params: CircuitParams
    seed: int
    n_phases: int
    network: Network
    groups: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    plastic: dict = field(default_factory=dict)  # matrix name ("W1", "W2", "R") -> synapses name
    initial: dict = field(default_factory=dict)  # matrix name -> its initial value (rate-rule shape)
    namespace: dict = field(default_factory=dict)

    @property
    def steps_per_sample(self) -> int:
        return self.n_phases * self.params.phase_steps

    @property
    def sample_duration(self) -> float:
        """Seconds per sample."""
        return self.steps_per_sample * self.params.dt

    def matrix(self, name: str) -> np.ndarray:
        """Current weights of projection ``name`` (a synapses name or "W1"/"W2"/"R") as a dense
        ``(n_post, n_pre)`` array."""
        syn = self.synapses[self.plastic.get(name, name)]
        out = np.zeros((len(syn.target), len(syn.source)))
        out[syn.j[:], syn.i[:]] = syn.w[:]
        return out


def assemble(rule: str, sizes: list[int], params: CircuitParams, seed: int, n_phases: int,
             groups: list[NeuronGroup], synapses: list[Synapses], plastic: dict[str, str],
             initial: dict[str, np.ndarray]) -> Circuit:
    """Add the schedule constants, the per-sample resets and the plasticity; build the Network.
    ``plastic`` names the synapses of each plastic matrix, ``initial`` its initial value."""
    p = params
    settle, window = p.steps(p.t_settle), p.steps(p.t_window)
    steps = n_phases * (settle + window)
    ns = {
        "steps_per_sample": steps, "win1_start": settle, "win1_stop": settle + window,
        "win2_start": (settle + window + settle) if n_phases == 2 else steps,
        "phase2_start": (settle + window) if n_phases == 2 else steps,
        "t_window": p.t_window * second, "tau_syn": p.tau_syn * second,
        "rate_max": p.rate_max / second, "kick": 1.0 / (p.rate_max * p.tau_syn),
        "modulation_sign": p.modulation_sign, "n_in": sizes[0], "n_out": sizes[-1],
        "eta_hidden": p.eta_hidden, "eta_output": p.eta_output, "eta_feedback": p.eta_feedback,
    }
    sample = steps * p.dt * second
    by_name = {s.name: s for s in synapses}
    for matrix, syn_name in plastic.items():
        eta, _, post_factor, _, pre_factor = PLASTICITY[matrix]
        by_name[syn_name].run_regularly(f"w -= {eta}*learn_{matrix}(t)*{post_factor}_post*{pre_factor}_pre",
                                        dt=sample, when="start", order=0,
                                        name=f"{syn_name}_update")
    for g in groups:
        g.run_regularly(reset_code(g), dt=sample, when="start", order=1, name=f"{g.name}_reset")
    net = Network(*groups, *synapses, name=f"{rule.replace('-', '_')}_circuit")
    return Circuit(rule, list(sizes), params, seed, n_phases, net,
                   {g.name: g for g in groups}, by_name, dict(plastic),
                   {k: np.asarray(v, float) for k, v in initial.items()}, ns)
