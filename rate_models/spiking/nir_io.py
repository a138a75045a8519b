"""LIF networks to and from NIR graphs (``neurosim export --format nir``, and the import into the
LIF mode).

Export. A fully connected ``LIFNetwork`` ``N_0-N_1-...-N_L`` becomes the chain

    input (Input, [N_0]) -> fc1 (Linear W_1) -> lif1 (LIF) -> ... -> fcL (Linear W_L)
        -> readout (LI) -> output (Output, [N_L])

with explicit input and output types on every node. The graph's input is the encoder's output
``s_0[t]`` (what ``W_1`` multiplies), not the raw intensities; the metadata names the encoder and
its baseline. NIR's neurons are continuous (``tau dv/dt = v_leak - v + r I``); neurosim's step
``U[t] = beta U[t-1] + W s[t]`` is their forward-Euler step at the graph's ``dt`` when

    tau = dt / (1 - beta),   r = tau / dt = 1 / (1 - beta),   v_leak = 0,
    v_threshold = theta   (so dt/tau = 1 - beta and r dt/tau = 1),

the mapping snnTorch's exporter and importer use (``neurosim.nir_chain`` has the update). The
exponential integrator would need ``tau = -dt / ln(beta)`` (19.5 ms at beta 0.95, dt 1 ms, against
20 ms here); the graph says forward Euler in its metadata (``discretization``). ``beta = 1`` (no
leak) exports hidden layers as ``IF`` with ``r = 1/dt`` and the readout as ``I``.

The reset: neurosim subtracts the threshold at the step after a spike (snnTorch's subtract
reset). NIR 1.0 only resets to ``v_reset``; the graph and every spiking node carry metadata
``reset: subtract`` (``v_reset`` 0 is written but unused). A reader that ignores the metadata gets
reset-to-zero neurons, a different network.

``dt`` defaults to the run's step (``config.json`` ``dt``, 1 ms); ``dt=...`` rescales the time axis
(the update per step is unchanged): snnTorch's importer steps every graph at 1e-4 s
(``rate_models.spiking.nir_snntorch`` rescales for it). The metadata also holds ``num_steps``, the
run's own ``run_dt``, ``encoder``, ``input_baseline`` and ``readout`` (the logits are the mean of
the readout's potential over the ``num_steps`` steps).

Convolutional LIF nets are refused: they pool their convolution currents by 2x2 max, and NIR 1.0
has no max pooling (only ``SumPool2d`` and ``AvgPool2d``), so no NIR graph computes them.

Import. A chain of ``Linear``/``Affine`` (zero bias)/``Flatten`` maps and ``LIF``/``IF`` layers with
an ``LI``/``I`` readout (``neurosim.nir_chain``) loads into a fully connected ``LIFNetwork``: one
decay per step for all layers (``beta``), one threshold, ``v_leak = 0``, and the reset of the
metadata (subtract) or NIR's reset to ``v_reset = 0`` (snnTorch's ``reset_mechanism="zero"`` without
delay). A layer's input gain ``r dt/tau`` (1 in neurosim's exports) is folded into its weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

import neurosim
from neurosim.config import RunConfig
from neurosim.nir_chain import Chain, dynamics, read_chain, read_chain_file, settings, stage_matrix
from neurosim.nir_files import metadata_value
from rate_models.spiking.lif import LIFNetwork

MAX_POOL = ("NIR 1.0 has no max pooling (only SumPool2d and AvgPool2d) and this network pools its "
            "convolution currents by 2x2 max, so no NIR graph computes it; export fully connected "
            "LIF runs (--arch 1000)")
DISCRETIZATION = "forward Euler: v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + r I[t])"


# -- run folders --------------------------------------------------------------------------------

def load_lif_run(folder, seed: int | None = None) -> tuple[LIFNetwork, RunConfig, int]:
    """The trained network of one seed of a ``--neuron lif`` run folder (default its first seed),
    its configuration and the seed, loaded by :func:`rate_models.saved_runs.load_seed` (every
    checkpoint layout; the checkpoint is read without running code from it)."""
    from rate_models.saved_runs import load_seed, run_config

    cfg = run_config(Path(folder))
    if cfg.network.neuron != "lif":
        raise ValueError(f"{folder} is a {cfg.network.neuron} run; NIR export covers spiking runs "
                         "(neurosim train --neuron lif)")
    if cfg.network.arch != "fc":
        raise ValueError(f"{folder} is a {cfg.network.arch} LIF run: {MAX_POOL}")
    cfg, seed, net, _ = load_seed(folder, seed)
    return net, cfg, seed


# -- export -------------------------------------------------------------------------------------

def to_nir(net: LIFNetwork, dt: float, metadata: dict | None = None):
    """The NIR graph of ``net`` at step ``dt`` seconds (module docstring); ``metadata`` is added to
    the graph's (run_dt, encoder, input_baseline, dataset, ...)."""
    import nir

    if any(spec.kind == "conv" for spec in net.specs):
        raise ValueError(MAX_POOL)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"--dt must be > 0 seconds, got {dt}")
    beta, theta = float(net.beta), float(net.threshold)
    L = net.n_layers
    nodes = {"input": nir.Input(input_type={"input": np.array([net.sizes[0]])})}
    edges, prev = [], "input"
    for l in range(1, L + 1):
        n = net.sizes[l]
        nodes[f"fc{l}"] = nir.Linear(weight=net.weights[l - 1].detach().cpu().numpy().copy())
        name = f"lif{l}" if l < L else "readout"
        nodes[name] = _neuron(n, beta, theta, dt, spiking=l < L)
        edges += [(prev, f"fc{l}"), (f"fc{l}", name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([net.sizes[-1]])})
    edges.append((prev, "output"))
    meta = {"source": "neurosim export", "neurosim_version": neurosim.__version__, "dt": float(dt),
            "num_steps": int(net.num_steps), "reset": "subtract", "discretization": DISCRETIZATION,
            "encoder": net.encoder, "input_baseline": float(net.baseline),
            "readout": "logits = mean over num_steps steps of the potential of node 'readout'",
            **(metadata or {})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _neuron(n: int, beta: float, theta: float, dt: float, spiking: bool):
    """A layer of ``n`` neurons decaying by ``beta`` per step with input gain 1 (module docstring)."""
    import nir

    full = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
    if beta == 1.0:
        if spiking:
            return nir.IF(r=full(1.0 / dt), v_threshold=full(theta), v_reset=full(0.0),
                          metadata={"reset": "subtract"})
        return nir.I(r=full(1.0 / dt))
    tau, r = full(dt / (1.0 - beta)), full(1.0 / (1.0 - beta))
    if spiking:
        return nir.LIF(tau=tau, r=r, v_leak=full(0.0), v_threshold=full(theta), v_reset=full(0.0),
                       metadata={"reset": "subtract"})
    return nir.LI(tau=tau, r=r, v_leak=full(0.0))


def export_run(folder, seed: int | None = None, dt: float | None = None):
    """The NIR graph of one seed of a ``--neuron lif`` run folder, at the run's step unless ``dt``."""
    net, cfg, seed = load_lif_run(folder, seed)
    return to_nir(net, cfg.lif.dt if dt is None else dt,
                  {"run_dt": float(cfg.lif.dt), "dataset": cfg.data.dataset, "rule": cfg.rule, "seed": int(seed),
                   "arch": "-".join(map(str, net.sizes))})


# -- import -------------------------------------------------------------------------------------

def _chain(source) -> tuple[Chain, str]:
    if isinstance(source, (str, Path)):
        return read_chain_file(source)[1], str(source)
    return read_chain(source), "the graph"


def _layers(chain: Chain, dt: float) -> tuple[list[np.ndarray], float, float, str]:
    """Dense weights (input gains folded in), beta, theta and reset of an importable chain."""
    weights, betas, thetas, resets = [], {}, {}, set()
    for k, stage in enumerate(chain.stages):
        last = k == len(chain.stages) - 1
        wanted = ("LI", "I") if last else ("LIF", "IF")
        if stage.kind not in wanted:
            role = "the readout (output layer)" if last else "a hidden layer"
            raise ValueError(f"node {stage.name!r} is a {stage.kind} as {role}; the LIF mode takes "
                             f"{' or '.join(wanted)} there")
        for name, node in stage.maps:
            kind = type(node).__name__
            if kind not in ("Linear", "Affine", "Flatten") or (kind == "Affine" and np.any(node.bias)):
                raise ValueError(f"node {name!r} ({kind}{' with a bias' if kind == 'Affine' else ''}): "
                                 "the LIF mode has fully connected layers without biases (Linear, "
                                 "Flatten); run this graph in Brian2 with 'neurosim nir-run'")
        d = dynamics(stage, dt, chain.metadata)
        if np.any(d.leak):
            raise ValueError(f"node {stage.name!r}: v_leak != 0; the LIF mode's neurons rest at 0")
        if not last and d.reset == "zero" and np.any(d.v_reset):
            raise ValueError(f"node {stage.name!r}: v_reset != 0; the LIF mode resets to 0 or subtracts")
        betas[stage.name] = np.unique(d.decay)
        if not last:
            thetas[stage.name] = np.unique(d.threshold)
            resets.add(d.reset)
        M = stage_matrix(stage)[0].toarray()
        if not np.allclose(d.gain, 1.0, rtol=1e-9, atol=0.0):  # neurosim's exports: gain 1 to rounding
            M = M * d.gain[:, None]
        weights.append(M)
    for what, values in (("decays per step (1 - dt/tau)", betas), ("thresholds", thetas)):
        distinct = {float(v) for vs in values.values() for v in vs}
        if len(distinct) > 1:
            raise ValueError(f"nodes {', '.join(repr(n) for n in values)} have {len(distinct)} different "
                             f"{what}; the LIF mode has one value for all layers")
    if len(resets) > 1:
        raise ValueError("the hidden layers mix subtract and zero resets; the LIF mode has one reset")
    if len(chain.stages) < 2:
        raise ValueError("the graph has no hidden layer; the LIF mode needs at least one")
    beta = float(next(iter(betas.values()))[0])
    return weights, beta, float(next(iter(thetas.values()))[0]), resets.pop()


def _config(chain: Chain, where: str, rule: str = "dfa", dt: float | None = None,
            num_steps: int | None = None, encoder: str | None = None,
            input_baseline: float | None = None, **fields) -> RunConfig:
    s = settings(chain, dt, num_steps, encoder, input_baseline, where)
    weights, beta, theta, _ = _layers(chain, s.dt)
    meta = chain.metadata
    values = {"neuron": "lif", "arch": "fc", "hidden": [w.shape[0] for w in weights[:-1]],
              "beta": beta, "threshold": theta, "num_steps": s.num_steps, "encoder": s.encoder,
              "input_baseline": s.input_baseline, "dt": float(metadata_value(meta, "run_dt", s.dt)),
              "dataset": metadata_value(meta, "dataset", "digits"), **fields}
    cfg = RunConfig.for_rule(rule, **values)
    cfg.validate()
    return cfg


def lif_config_from_nir(source, rule: str = "dfa", dt: float | None = None,
                        num_steps: int | None = None, encoder: str | None = None,
                        input_baseline: float | None = None, **fields) -> RunConfig:
    """A ``--neuron lif`` configuration for the graph ``source`` (a ``nir.NIRGraph`` or a ``.nir``
    path) trained by ``rule``: sizes, beta and threshold from the graph at step ``dt`` (default its
    metadata's), the presentation (``num_steps``, ``encoder``, ``input_baseline``) from the
    arguments or the metadata, everything else from ``fields`` and the rule's LIF defaults.
    ``cfg.lif.dt`` is the run's step for rates in Hz (the metadata's ``run_dt`` when present)."""
    return _config(*_chain(source), rule, dt, num_steps, encoder, input_baseline, **fields)


def lif_network_from_nir(source, cfg: RunConfig | None = None, seed: int = 0, dt: float | None = None,
                         **config) -> LIFNetwork:
    """A ``LIFNetwork`` holding the weights of the graph ``source`` (module docstring) at step
    ``dt`` (default the metadata's), in eval mode. ``cfg`` sets the rest (dropout, surrogate slope,
    presentation; default :func:`lif_config_from_nir` with ``config``) and must match the graph's
    sizes, beta and threshold. A NIR zero reset becomes snnTorch's ``reset_mechanism="zero"``
    applied at the spike (``reset_delay=False``)."""
    import snntorch as snn
    from snntorch import surrogate

    chain, where = _chain(source)
    cfg = cfg or _config(chain, where, dt=dt, **config)
    weights, beta, theta, reset = _layers(chain, settings(chain, dt, cfg.lif.num_steps, source=where).dt)
    sizes = [weights[0].shape[1], *[w.shape[0] for w in weights]]
    if (list(cfg.network.hidden), cfg.lif.beta, cfg.lif.threshold) != (sizes[1:-1], beta, theta):
        raise ValueError(f"the configuration (hidden {cfg.network.hidden}, beta {cfg.lif.beta}, threshold "
                         f"{cfg.lif.threshold}) does not fit {where} (hidden {sizes[1:-1]}, beta {beta}, "
                         f"threshold {theta}); build it with lif_config_from_nir")
    net = LIFNetwork(sizes, cfg, seed)
    with torch.no_grad():
        for W, w in zip(net.weights, weights):
            W.copy_(torch.from_numpy(w))
    if reset == "zero":
        grad = surrogate.fast_sigmoid(slope=cfg.lif.surrogate_slope)
        hidden = [snn.Leaky(beta=beta, threshold=theta, spike_grad=grad, reset_mechanism="zero",
                            reset_delay=False) for _ in sizes[1:-1]]
        net.neurons = (*hidden, net.neurons[-1])
    net.eval()
    return net
