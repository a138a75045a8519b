"""A ``brian2.Network`` from a NIR graph, and its simulation of a set of samples.

The graph is read as a chain of neuron layers (``neurosim.nir_chain``: which nodes, and the
discrete update of each). Brian2 runs that update as an explicit difference equation at the
graph's step ``dt`` (``defaultclock.dt``), one ``NeuronGroup`` per layer:

* the input group's ``s = stim(t, i)`` reads a ``TimedArray`` of the encoded samples (one row per
  sample for the current encoder, one per step for the rate encoder);
* layer l's current ``I = sum_j w_ij a_j + c`` is a summed variable of a ``Synapses`` object over
  the nonzero entries of the layer's composed linear map (``Linear``/``Affine`` weights, or a
  ``Conv2d`` and pooling expanded into their connections), ``a`` the input ``s`` or the spike flag
  ``z`` of the layer below, ``c`` the maps' constant (``Affine`` / ``Conv2d`` biases);
* a ``run_regularly`` operation steps the potential, ``v = decay v + gain I + leak - theta z`` (the
  last term for the subtract reset; ``CubaLIF`` first steps its synaptic current), then clears
  ``z``; the group's threshold ``v > theta`` and reset (``z = 1``; for NIR's reset also
  ``v = v_reset``) follow.

Order within a step. neurosim's LIF network updates layer 1, then layer 2 from layer 1's spikes of
the same step, and so on; Brian2's default schedule would update every group before any threshold
and deliver spikes a step late. So every step's work sits in the ``groups`` slot, ordered layer by
layer: summed current, update, threshold, reset, then the next layer. The spikes then equal those
of the LIF simulation up to floating-point rounding (Brian2 computes in float64, neurosim in
float32).

Samples follow each other in one run of ``n * num_steps`` steps; at each sample's first step
(slot ``start``) every state variable returns to 0. ``SpikeMonitor`` s count each spiking layer's
spikes per sample; a ``StateMonitor`` records the readout's potential at the end of every step.
Scores: the mean readout potential over the steps (non-spiking readout, ``LI``/``I``) or the
readout's spike counts.

Devices: ``runtime`` (Brian2's code generation in this process) and ``cpp_standalone`` (the whole
run compiled to C++ in a temporary folder, removed afterwards).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brian2 import (Network, NeuronGroup, SpikeMonitor, StateMonitor, Synapses, TimedArray,
                    defaultclock, get_device, second)

from circuits.experiment import DEVICES, brian_device
from neurosim.nir_chain import Chain, Dynamics, Settings, Stage, dynamics, stage_matrix


@dataclass
class NIRRun:
    """What a simulation of ``n`` samples leaves."""

    scores: np.ndarray  # (n, N_out): mean readout potential, or readout spike counts
    counts: dict[str, np.ndarray]  # spiking layer name -> (n, N_l) spike counts
    readout: np.ndarray | None  # (n, T, N_out) readout potential per step (non-spiking readout)
    seconds: float  # simulation time (cpp_standalone: compilation included)


def encode(x: np.ndarray, s: Settings, seed: int = 0) -> np.ndarray:
    """The input ``s_0`` of samples ``x`` (n, N_0) in [0, 1]: ``(n, N_0)`` for the current encoder
    (constant over the steps), ``(n * T, N_0)`` Bernoulli spikes per step for the rate encoder."""
    p = s.input_baseline + (1.0 - s.input_baseline) * np.asarray(x, dtype=np.float64)
    if s.encoder == "current":
        return p
    rng = np.random.default_rng(seed)
    p = np.repeat(np.clip(p, 0.0, 1.0), s.num_steps, axis=0)
    return (rng.random(p.shape) < p).astype(np.float64)


def _model(d: Dynamics) -> str:
    lines = ["v : 1", "I : 1", "c : 1 (constant)", "decay : 1 (constant)", "gain : 1 (constant)",
             "leak : 1 (constant)"]
    if d.spiking:
        lines += ["z : 1", "theta : 1 (constant)", "vreset : 1 (constant)"]
    if d.syn_decay is not None:
        lines += ["isyn : 1", "sdecay : 1 (constant)", "sgain : 1 (constant)"]
    return "\n".join(lines)


def _update(d: Dynamics) -> str:
    drive = "gain * (I + c)"
    code = []
    if d.syn_decay is not None:
        code.append("isyn = sdecay * isyn + sgain * (I + c)")
        drive = "gain * isyn"
    subtract = " - theta * z" if d.reset == "subtract" else ""
    code.append(f"v = decay * v + {drive} + leak{subtract}")
    if d.spiking:
        code.append("z = 0")
    return "\n".join(code)


def _layer(k: int, stage: Stage, d: Dynamics, pre, pre_var: str, s: Settings) -> list:
    """Layer ``k``'s group, its synapses from ``pre`` and its update (scheduled by the caller)."""
    group = NeuronGroup(stage.size, _model(d), name=f"layer{k}",
                        threshold="v > theta" if d.spiking else None,
                        reset=("z = 1" + ("\nv = vreset" if d.reset == "zero" else "")) if d.spiking else None)
    M, c = stage_matrix(stage)
    values = {"c": c, "decay": d.decay, "gain": d.gain, "leak": d.leak}
    if d.spiking:
        values.update(theta=d.threshold, vreset=d.v_reset)
    if d.syn_decay is not None:
        values.update(sdecay=d.syn_decay, sgain=d.syn_gain)
    for key, value in values.items():
        setattr(group, key, value)
    coo = M.tocoo()
    syn = Synapses(pre, group, f"w : 1 (constant)\nI_post = w * {pre_var}_pre : 1 (summed)",
                   name=f"synapses{k}", namespace=pre.namespace)  # the input's stim
    syn.connect(i=coo.col.astype(np.int64), j=coo.row.astype(np.int64))
    syn.w = coo.data
    update = group.run_regularly(_update(d), when="groups", name=f"update{k}")
    state = ["v"] + (["z"] if d.spiking else []) + (["isyn"] if d.syn_decay is not None else [])
    restart = group.run_regularly("\n".join(f"{v} = 0" for v in state), dt=s.num_steps * s.dt * second,
                                  when="start", name=f"restart{k}")
    return [group, syn, update, restart]


def build_network(chain: Chain, s: Settings, inputs: np.ndarray) -> tuple[Network, dict]:
    """The Brian2 network of ``chain`` presenting the encoded ``inputs`` (:func:`encode`) one sample
    after another, and its monitors (``{"spikes": {layer name: SpikeMonitor}, "readout": ...}``).
    Uses ``defaultclock.dt``, which the caller sets to ``s.dt``."""
    rows_per_sample = 1 if s.encoder == "current" else s.num_steps
    stim = TimedArray(inputs, dt=s.num_steps * s.dt * second / rows_per_sample)
    pre = NeuronGroup(chain.sizes[0], "s = stim(t, i) : 1", name="input", namespace={"stim": stim})
    objects, pre_var, order = [pre], "s", []
    spikes, readout = {}, None
    for k, stage in enumerate(chain.stages, start=1):
        d = dynamics(stage, s.dt, chain.metadata)
        group, syn, update, restart = _layer(k, stage, d, pre, pre_var, s)
        objects += [group, syn, update, restart]
        order += [syn.summed_updaters["I_post"], update]
        if d.spiking:
            order += [group.thresholder["spike"], group.resetter["spike"]]
            spikes[stage.name] = SpikeMonitor(group, record=True, when="end", name=f"spikes{k}")
        pre, pre_var = group, "z"
    if not chain.readout_spikes:
        readout = StateMonitor(pre, "v", record=True, when="end", name="readout")
    for n, obj in enumerate(order):
        obj.when, obj.order = "groups", n
    monitors = {"spikes": spikes, "readout": readout}
    return Network(*objects, *spikes.values(), *([readout] if readout is not None else [])), monitors


def _counts(mon, n: int, size: int, s: Settings) -> np.ndarray:
    counts = np.zeros((n, size))
    steps = np.rint(np.asarray(mon.t_) / s.dt).astype(np.int64)
    np.add.at(counts, (steps // s.num_steps, np.asarray(mon.i, dtype=np.int64)), 1.0)
    return counts


def simulate(chain: Chain, s: Settings, x: np.ndarray, device: str = "runtime", seed: int = 0,
             threads: int | None = None) -> NIRRun:
    """Present the samples ``x`` (n, N_0) in [0, 1] (any shape with N_0 values per sample) to the
    graph on the Brian2 ``device`` and read the scores, spike counts and readout potentials."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose {' or '.join(DEVICES)}")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if x.shape[1] != chain.sizes[0]:
        raise ValueError(f"samples have {x.shape[1]} values, but the graph's input {chain.input_name!r} "
                         f"takes {chain.input_shape} ({chain.sizes[0]} values)")
    n, T = len(x), s.num_steps
    old_dt = defaultclock.dt
    try:
        with tempfile.TemporaryDirectory(prefix="nir-brian2-") as tmp, brian_device(device, Path(tmp), threads):
            defaultclock.dt = s.dt * second
            net, mon = build_network(chain, s, encode(x, s, seed))
            t0 = time.perf_counter()
            net.run(n * T * s.dt * second)
            if device == "cpp_standalone":
                get_device().build(directory=tmp, compile=True, run=True, with_output=False)
            seconds = time.perf_counter() - t0
            counts = {name: _counts(m, n, m.source.N, s) for name, m in mon["spikes"].items()}
            readout = None
            if mon["readout"] is not None:
                v = np.asarray(mon["readout"].v)
                if v.shape[1] != n * T:
                    raise RuntimeError(f"Brian2 recorded {v.shape[1]} steps, expected {n * T}")
                readout = v.T.reshape(n, T, -1)
    finally:
        defaultclock.dt = old_dt
    scores = counts[chain.stages[-1].name] if chain.readout_spikes else readout.mean(1)
    return NIRRun(scores, counts, readout, seconds)
