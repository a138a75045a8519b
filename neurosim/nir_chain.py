"""A NIR graph read as a feed-forward chain of neuron layers, and the discrete update neurosim
simulates its neurons with (in Brian2, ``circuits.nir_network``, and in the LIF mode,
``rate_models.spiking.nir_io``).

Structure. The graph must be one chain ``Input -> maps -> neuron -> maps -> neuron ... -> Output``:
one ``Input``, one ``Output``, every other node with exactly one predecessor and one successor,
no cycle, and a neuron node (``LIF``, ``CubaLIF``, ``LI``, ``IF``, ``I``) right before the ``Output``.
Between two neuron layers (or the input and the first one) any run of linear maps (``Linear``,
``Affine``, ``Conv2d``, ``SumPool2d``, ``AvgPool2d``, ``Flatten``, ``Scale``; none: identity) gives
the current, ``I_l[t] = M_l s_{l-1}[t] + c_l``, with ``s_0`` the input and ``s_l`` the spikes of
layer l. ``AvgPool2d`` counts zero padding in its average (torch's ``count_include_pad``);
``SumPool2d`` sums, padding included. Not simulated: ``Conv1d``, ``Delay``, ``Threshold``,
``CubaLI`` and subgraphs (recurrent cells), nor branches or skip connections.

Time. NIR's neurons are continuous-time; neurosim steps them with forward Euler at the step
``dt`` (s), the convention snnTorch's NIR export and import use. With ``I[t]`` the current of
step t, one step of each node is (potentials ``v``, spikes ``z``)::

    LIF      v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + r I[t])
             = decay v[t-1] + gain I[t] + leak,   decay = 1 - dt/tau, gain = r dt/tau,
                                                 leak = dt v_leak/tau
    IF       v[t] = v[t-1] + r dt I[t]               (decay 1, gain r dt, leak 0)
    LI       as LIF, never spikes
    I        as IF, never spikes
    CubaLIF  i[t] = (1 - dt/tau_syn) i[t-1] + (w_in dt/tau_syn) I[t],
             then v as LIF with i[t] in place of I[t]   (snnTorch's Synaptic order)
    spikes   z[t] = 1 if v[t] > v_threshold else 0

Reset. NIR 1.0 defines one reset, to ``v_reset`` at the spike (``reset: zero``): ``v[t] = v_reset``
when ``z[t] = 1``. neurosim's LIF networks subtract the threshold at the next step (snnTorch's
``reset_mechanism="subtract"``), ``v[t] = decay v[t-1] + gain I[t] + leak - v_threshold z[t-1]``,
which NIR cannot state: ``neurosim export`` writes ``reset: subtract`` in the graph's and each LIF
node's metadata (``v_reset`` is then unused). A node's metadata ``reset`` wins over the graph's;
without either the NIR reset applies.

Units: ``dt`` and every ``tau`` in seconds, potentials in the units of ``v_threshold``, ``r`` turns
a current into a potential (``r I`` in the units of ``v``; IF/I: per second). Stability: ``dt / tau <= 1``,
else the Euler step oscillates or diverges and the node is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurosim.nir_files import metadata_value, read_graph

NEURON_TYPES = ("LIF", "CubaLIF", "LI", "IF", "I")
MAP_TYPES = ("Linear", "Affine", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Scale")
NOT_SIMULATED = {"Conv1d": "1-d convolutions", "Delay": "synaptic delays",
                 "Threshold": "bare threshold nodes", "CubaLI": "current-based leaky integrators",
                 "NIRGraph": "subgraphs (recurrent cells)"}
RESETS = ("subtract", "zero")
SUPPORTED = f"neurons {', '.join(NEURON_TYPES)}; maps {', '.join(MAP_TYPES)}"


@dataclass
class Stage:
    """One neuron layer: the neuron node ``name`` and the linear maps that make its current from
    the layer below (``source``: the previous neuron node, or the input)."""

    name: str
    node: object
    maps: list[tuple[str, object]]
    source: str
    in_shape: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def kind(self) -> str:
        return type(self.node).__name__


@dataclass
class Chain:
    """A graph as a chain of stages; ``metadata`` is the graph's (``neurosim export`` writes dt,
    num_steps, reset, encoder, input_baseline, readout there)."""

    input_name: str
    input_shape: tuple[int, ...]
    stages: list[Stage]
    output_name: str
    metadata: dict = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        return [math.prod(self.input_shape), *[s.size for s in self.stages]]

    @property
    def readout_spikes(self) -> bool:
        """Whether the output layer spikes (scores are spike counts) or not (mean potentials)."""
        return self.stages[-1].kind in ("LIF", "CubaLIF", "IF")


def _shape(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(int(n) for n in np.asarray(value).reshape(-1))


def _find_cycle(nodes, succ) -> list[str] | None:
    """The nodes of one cycle, in order, or None (iterative depth-first search)."""
    state = {n: 0 for n in nodes}  # 0 new, 1 on the stack, 2 done
    for root in nodes:
        if state[root]:
            continue
        stack, path = [(root, iter(succ[root]))], [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
                path.append(nxt)
    return None


def _walk(graph) -> list[str]:
    """The node names from the Input to the Output of a chain-shaped graph."""
    nodes = graph.nodes
    succ = {n: [] for n in nodes}
    pred = {n: [] for n in nodes}
    for a, b in graph.edges:
        for end in (a, b):
            if end not in nodes:
                raise ValueError(f"edge ({a!r}, {b!r}) names node {end!r}, which the graph does not have")
        succ[a].append(b)
        pred[b].append(a)
    cycle = _find_cycle(list(nodes), succ)
    if cycle:
        raise ValueError(f"the graph has a cycle through node {cycle[0]!r} ({' -> '.join(cycle)}); "
                         "recurrent connections are not supported (feed-forward chains only)")
    inputs = [n for n, v in nodes.items() if type(v).__name__ == "Input"]
    outputs = [n for n, v in nodes.items() if type(v).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes "
                         f"({', '.join(inputs + outputs) or 'none'}); a chain has one of each")
    for n in nodes:
        if n != inputs[0] and len(pred[n]) != 1:
            raise ValueError(f"node {n!r} has {len(pred[n])} inputs ({', '.join(pred[n]) or 'none'}); "
                             "only chains are supported (every node fed by one node)")
        if n != outputs[0] and len(succ[n]) != 1:
            raise ValueError(f"node {n!r} feeds {len(succ[n])} nodes ({', '.join(succ[n]) or 'none'}); "
                             "only chains are supported (every node feeds one node)")
    order = [inputs[0]]
    while order[-1] != outputs[0]:
        order.append(succ[order[-1]][0])
    return order


def _input_shape(node, name: str) -> tuple[int, ...]:
    types = getattr(node, "input_type", None) or {}
    shape = _shape(next(iter(types.values()), None))
    if not shape:
        raise ValueError(f"Input node {name!r} has no shape (input_type); give it one")
    return shape


def read_chain(graph) -> Chain:
    """``graph`` (a ``nir.NIRGraph``) as a :class:`Chain`; anything outside the supported shape
    raises ``ValueError`` naming the node (module docstring)."""
    order = _walk(graph)
    for name in order[1:-1]:
        kind = type(graph.nodes[name]).__name__
        if kind in NOT_SIMULATED:
            raise ValueError(f"node {name!r} is a NIR {kind} ({NOT_SIMULATED[kind]}), which neurosim "
                             f"does not simulate; supported: {SUPPORTED}")
        if kind not in NEURON_TYPES + MAP_TYPES:
            raise ValueError(f"node {name!r} has type {kind!r}, which neurosim does not know; "
                             f"supported: {SUPPORTED}")
    shape = _input_shape(graph.nodes[order[0]], order[0])
    chain = Chain(order[0], shape, [], order[-1], dict(graph.metadata or {}))
    maps, source, in_shape = [], order[0], shape
    for name in order[1:-1]:
        node = graph.nodes[name]
        if type(node).__name__ in MAP_TYPES:
            maps.append((name, node))
            continue
        stage = Stage(name, node, maps, source, in_shape, _neuron_shape(node, name))
        got = map_shape(stage)
        if got != stage.shape:
            last = maps[-1][0] if maps else source
            raise ValueError(f"shape mismatch: node {last!r} gives {got}, node {name!r} takes "
                             f"{stage.shape}")
        chain.stages.append(stage)
        maps, source, in_shape = [], name, stage.shape
    if maps:
        raise ValueError(f"node {maps[-1][0]!r} ({type(maps[-1][1]).__name__}) comes after the last "
                         f"neuron layer; the Output {order[-1]!r} must read a neuron node")
    if not chain.stages:
        raise ValueError(f"the graph has no neuron node between {order[0]!r} and {order[-1]!r}")
    return chain


def read_chain_file(path) -> tuple[object, Chain]:
    """The graph in the NIR file ``path`` and its chain; errors name the file (and the node)."""
    graph = read_graph(path)
    try:
        return graph, read_chain(graph)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _neuron_shape(node, name: str) -> tuple[int, ...]:
    param = node.v_threshold if hasattr(node, "v_threshold") else node.r
    shape = np.asarray(param).shape
    if not shape:
        raise ValueError(f"node {name!r}: its parameters are scalars; NIR neuron parameters are "
                         "arrays of the layer's shape")
    return tuple(int(n) for n in shape)


# -- linear maps ------------------------------------------------------------------------------

def _pair(value) -> tuple[int, int] | str:
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    flat = np.asarray(value).reshape(-1)
    return (int(flat[0]),) * 2 if flat.size == 1 else (int(flat[0]), int(flat[1]))


def _apply(name: str, node, x, bias: bool):
    """One map on a batch ``x`` (batch, *shape), float64; ``bias=False`` leaves out additive terms."""
    import torch
    import torch.nn.functional as F

    kind = type(node).__name__
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    if kind in ("Linear", "Affine"):
        w = t(node.weight)
        if w.dim() != 2:
            raise ValueError(f"node {name!r} ({kind}): weight of shape {tuple(w.shape)}; neurosim "
                             "takes 2-d weights (out, in)")
        if x.dim() != 2:
            raise ValueError(f"node {name!r} ({kind}) takes a flat input of {w.shape[1]} values but "
                             f"gets shape {tuple(x.shape[1:])}; put a Flatten node before it")
        y = x @ w.T
        return y + t(node.bias) if kind == "Affine" and bias else y
    if kind == "Conv2d":
        padding = _pair(node.padding)
        return F.conv2d(x, t(node.weight), t(node.bias) if bias else None, _pair(node.stride),
                        padding, _pair(node.dilation), int(np.asarray(node.groups).reshape(-1)[0]))
    if kind in ("SumPool2d", "AvgPool2d"):
        k = _pair(node.kernel_size)
        y = F.avg_pool2d(x, k, _pair(node.stride), _pair(node.padding), count_include_pad=True)
        return y * (k[0] * k[1]) if kind == "SumPool2d" else y
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        return torch.flatten(x, start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    return x * t(node.scale)  # Scale


def apply_maps(stage: Stage, x, bias: bool = True):
    """The stage's current from the activity ``x`` ``(batch, *in_shape)`` of the layer below."""
    for name, node in stage.maps:
        try:
            x = _apply(name, node, x, bias)
        except RuntimeError as err:
            raise ValueError(f"node {name!r} ({type(node).__name__}) cannot take an input of shape "
                             f"{tuple(x.shape[1:])}: {str(err).splitlines()[0]}") from None
    return x


def map_shape(stage: Stage) -> tuple[int, ...]:
    import torch

    return tuple(apply_maps(stage, torch.zeros((1, *stage.in_shape), dtype=torch.float64)).shape[1:])


def stage_matrix(stage: Stage, chunk: int = 1024):
    """The stage's maps as ``(M, c)``: a scipy CSR matrix ``(N_l, N_{l-1})`` over the flattened
    layers and the constant current ``c`` ``(N_l,)``, so ``I_l = M s_{l-1} + c`` (the maps are
    affine; ``M`` is built column block by column block from unit inputs)."""
    import scipy.sparse as sp
    import torch

    n_in = math.prod(stage.in_shape)
    c = apply_maps(stage, torch.zeros((1, *stage.in_shape), dtype=torch.float64)).reshape(-1).numpy()
    if len(stage.maps) == 1 and type(stage.maps[0][1]).__name__ in ("Linear", "Affine"):
        return sp.csr_matrix(np.asarray(stage.maps[0][1].weight, dtype=np.float64)), c
    blocks = []
    for a in range(0, n_in, chunk):
        eye = torch.eye(n_in, dtype=torch.float64)[a:a + chunk].reshape(-1, *stage.in_shape)
        cols = apply_maps(stage, eye, bias=False).reshape(len(eye), -1).numpy()
        blocks.append(sp.csr_matrix(cols.T))
    return sp.hstack(blocks, format="csr"), c


# -- neuron dynamics ------------------------------------------------------------------------

@dataclass
class Dynamics:
    """One step of a neuron layer at ``dt`` (module docstring), flattened per neuron."""

    kind: str
    decay: np.ndarray
    gain: np.ndarray
    leak: np.ndarray
    threshold: np.ndarray | None = None  # None: never spikes (LI, I)
    v_reset: np.ndarray | None = None
    reset: str | None = None  # "subtract" or "zero"; None without spikes
    syn_decay: np.ndarray | None = None  # CubaLIF only
    syn_gain: np.ndarray | None = None

    @property
    def spiking(self) -> bool:
        return self.threshold is not None


def _param(stage: Stage, key: str) -> np.ndarray:
    value = np.asarray(getattr(stage.node, key), dtype=np.float64)
    try:
        value = np.broadcast_to(value, stage.shape).reshape(-1).copy()
    except ValueError:
        raise ValueError(f"node {stage.name!r}: {key} has shape {value.shape}, the layer "
                         f"{stage.shape}") from None
    if not np.isfinite(value).all():
        raise ValueError(f"node {stage.name!r}: {key} holds non-finite values")
    return value


def _rate(stage: Stage, key: str, dt: float) -> np.ndarray:
    """``dt / tau`` for the time constant ``key``, refused where the Euler step is unstable."""
    tau = _param(stage, key)
    if (tau <= 0).any():
        raise ValueError(f"node {stage.name!r}: {key} must be > 0 s, got {tau.min():g}")
    if (dt / tau > 1).any():
        raise ValueError(f"node {stage.name!r}: {key} {tau.min():g} s is shorter than the step dt "
                         f"{dt:g} s, so the forward-Euler step is unstable; give a smaller --dt")
    return dt / tau


def reset_of(stage: Stage, graph_metadata: dict) -> str:
    """The reset of a spiking stage: its node's metadata ``reset``, else the graph's, else zero."""
    reset = metadata_value(stage.node.metadata, "reset") or metadata_value(graph_metadata, "reset") or "zero"
    if reset not in RESETS:
        raise ValueError(f"node {stage.name!r}: reset {reset!r} in its metadata; neurosim knows "
                         f"{', '.join(RESETS)}")
    return reset


def dynamics(stage: Stage, dt: float, graph_metadata: dict | None = None) -> Dynamics:
    """The discrete update of ``stage`` at step ``dt`` seconds (module docstring)."""
    kind = stage.kind
    zeros = np.zeros(stage.size)
    if kind in ("IF", "I"):
        d = Dynamics(kind, np.ones(stage.size), _param(stage, "r") * dt, zeros)
    else:
        k = _rate(stage, "tau_mem" if kind == "CubaLIF" else "tau", dt)
        d = Dynamics(kind, 1.0 - k, _param(stage, "r") * k, k * _param(stage, "v_leak"))
    if kind == "CubaLIF":
        k_syn = _rate(stage, "tau_syn", dt)
        d.syn_decay, d.syn_gain = 1.0 - k_syn, _param(stage, "w_in") * k_syn
    if kind not in ("LI", "I"):
        d.threshold, d.v_reset = _param(stage, "v_threshold"), _param(stage, "v_reset")
        d.reset = reset_of(stage, graph_metadata or {})
    return d


# -- simulation settings ----------------------------------------------------------------------

@dataclass
class Settings:
    """How a graph is presented: step ``dt`` (s), ``num_steps`` per sample, the encoder of the
    intensities ``x`` in [0, 1] into the input ``s_0[t]`` (``current``: ``b + (1 - b) x`` every
    step; ``rate``: Bernoulli spikes of that probability), ``input_baseline`` b."""

    dt: float
    num_steps: int
    encoder: str = "current"
    input_baseline: float = 0.0


def settings(chain: Chain, dt: float | None = None, num_steps: int | None = None,
             encoder: str | None = None, input_baseline: float | None = None,
             source: str = "the graph") -> Settings:
    """The graph's metadata (``dt``, ``num_steps``, ``encoder``, ``input_baseline``), overridden by
    the arguments given; dt and num_steps must come from one of the two."""
    meta = chain.metadata
    dt = dt if dt is not None else metadata_value(meta, "dt")
    num_steps = num_steps if num_steps is not None else metadata_value(meta, "num_steps")
    if dt is None:
        raise ValueError(f"{source} has no dt in its metadata (NIR graphs are continuous-time); give "
                         "--dt SECONDS, the step it was trained at (snnTorch's exports: 1e-4)")
    if num_steps is None:
        raise ValueError(f"{source} has no num_steps in its metadata; give --num-steps N, the steps "
                         "each sample is shown for")
    encoder = encoder or metadata_value(meta, "encoder") or "current"
    b = input_baseline if input_baseline is not None else metadata_value(meta, "input_baseline", 0.0)
    checks = [(float(dt) > 0 and math.isfinite(float(dt)), f"dt must be > 0 seconds, got {dt}"),
              (int(num_steps) >= 1, f"num_steps must be >= 1, got {num_steps}"),
              (encoder in ("current", "rate"), f"encoder {encoder!r}: NIR graphs run with the "
               "current or rate encoder"),
              (0.0 <= float(b) < 1.0, f"input_baseline must be in [0, 1), got {b}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    return Settings(float(dt), int(num_steps), encoder, float(b))
