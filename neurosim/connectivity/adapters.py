"""Graphs from files, networkx, trained rate models and Brian2 networks.

Orientation: a graph's ``W[i, j]`` is the weight of ``i -> j``. Dense files follow the same
convention (row = presynaptic neuron; as ``networkx.to_numpy_array``); a rate layer's forward
weight ``W_l`` (``(N_post, N_pre)``) is transposed on the way in.

Neuron-level connections of a rate model (populations ``input``, ``hidden1`` ... ``output``):

* forward ``W_l``: ``layer l-1 -> layer l``, every rule;
* BP: the implicit feedback ``W_l^T``, ``layer l -> layer l-1`` for l = 2..L, equal weights:
  every forward pair above the input is bidirectional. No error reaches the input (it does not
  learn), so ``input -> hidden1`` pairs stay one-way; this holds for FA-like rules too;
* FA, sign symmetry, Kolen-Pollack, weight mirror: ``B_l`` (the shape of ``W_l^T``) on the same
  pairs, ``layer l -> layer l-1``, l = 2..L (KP/WM: the learned ``B``, sign symmetry its
  ``sign(W^T)·mean|W|``): every forward pair above the input is bidirectional;
* DFA, sDFA: ``B_l``, ``output -> hidden l``; the output neurons carry the error, so the last
  hidden layer's pairs with the output are bidirectional;
* DRTP: ``B_l`` from a separate population ``target`` (the label, not the error) to hidden l:
  no bidirectional pair;
* PEPITA family: ``F``, ``output -> input`` (pepita-wm: the product ``F_1 ⋯ F_L``);
* PFA, PFA-o: separate error populations ``error1`` ... ``errorL`` and intermediate populations
  ``ebar1`` ... : ``B_l`` ``error(l+1) -> ebar l``, ``R_l`` ``ebar l -> error l``. The
  one-to-one links by which a layer produces or gates its error (``e_L = x_L − y*``,
  ``φ'(a_l)``) are multiplicative, not weighted synapses, and are left out: no neuron pair is
  connected both ways.

A Brian2 network: every ``Synapses`` object, its weight variable ``w`` (1 where it has none),
groups ordered by name and indexed one after another (subgroups map into their parent), several
synapses between one ordered pair merged by summing their weights.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from neurosim.connectivity.graph import Graph, build_graph

FILE_TYPES = ".csv / .tsv edge list (pre,post[,weight]), .npy dense matrix, .npz (dense or scipy sparse)"


def from_matrix(W, source: str = "matrix", labels=None, populations=None, threshold: float = 0.0,
                notes=()) -> Graph:
    """From a square dense array or scipy sparse matrix, ``W[i, j]`` = weight of ``i -> j``;
    zero entries are absent connections."""
    shape = W.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{source}: a connectivity matrix must be square (N x N, row = pre, "
                         f"column = post), got shape {tuple(shape)}")
    if sp.issparse(W):
        coo = sp.coo_array(W)
        pre, post, w = coo.row, coo.col, coo.data
    else:
        W = np.asarray(W, dtype=np.float64)
        bad = ~np.isfinite(W)
        pre, post = np.nonzero((W != 0) | bad)
        w = W[pre, post]
    return build_graph(pre, post, w, n=shape[0], labels=labels, populations=populations,
                       source=source, threshold=threshold, notes=notes)


def from_networkx(G, weight: str = "weight", source: str = "networkx graph",
                  threshold: float = 0.0) -> Graph:
    """From a networkx ``DiGraph`` (or ``MultiDiGraph``: parallel edges merged). Node order is
    ``G.nodes`` order; edge attribute ``weight`` (default 1); node attribute ``population``
    gives the population labels when every node has one."""
    if not G.is_directed():
        raise ValueError(f"{source}: an undirected graph has no direction to analyze; pass "
                         "G.to_directed() if every edge means both directions")
    nodes = list(G.nodes)
    index = {v: k for k, v in enumerate(nodes)}
    edges = list(G.edges(data=weight, default=1.0))
    pre = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
    post = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
    w = np.array([float(x) for _, _, x in edges])
    pops = [G.nodes[v].get("population") for v in nodes]
    labels = populations = None
    if nodes and all(p is not None for p in pops):
        populations = sorted(set(map(str, pops)))
        labels = np.array([populations.index(str(p)) for p in pops])
    return build_graph(pre, post, w, n=len(nodes), labels=labels, populations=populations,
                       source=source, threshold=threshold)


def _read_edge_list(path: Path, threshold: float) -> Graph:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh, delimiter=delimiter) if r and not r[0].startswith("#")]
    if not rows:
        raise ValueError(f"{path}: the edge list is empty; write one 'pre,post,weight' line per connection")
    header = [c.strip().lower() for c in rows[0]]
    cols = (0, 1, 2)
    if not _is_number(header[0]):
        rows = rows[1:]
        names = {"pre": ("pre", "source", "from"), "post": ("post", "target", "to"),
                 "weight": ("weight", "w")}
        found = [next((header.index(a) for a in names[k] if a in header), None) for k in names]
        if found[0] is None or found[1] is None:
            raise ValueError(f"{path}: header {header} lacks 'pre' and 'post' columns; "
                             "name them pre,post,weight (or source,target,weight)")
        cols = tuple(found)
    if any(len(r) < 2 for r in rows):
        bad = next(k for k, r in enumerate(rows) if len(r) < 2)
        raise ValueError(f"{path}: line {bad + 2} has fewer than two columns (pre, post)")
    pre_s = [r[cols[0]].strip() for r in rows]
    post_s = [r[cols[1]].strip() for r in rows]
    has_w = cols[2] is not None and all(len(r) > cols[2] for r in rows)
    try:
        w = np.array([float(r[cols[2]]) for r in rows]) if has_w else None
    except ValueError as err:
        raise ValueError(f"{path}: a weight is not a number ({err})") from None
    ids = pre_s + post_s
    if all(_is_int(s) for s in ids):
        pre, post = np.array(pre_s, dtype=np.int64), np.array(post_s, dtype=np.int64)
        n = None
    else:  # neuron names: indexed in sorted order
        names = sorted(set(ids))
        index = {s: k for k, s in enumerate(names)}
        pre = np.array([index[s] for s in pre_s], dtype=np.int64)
        post = np.array([index[s] for s in post_s], dtype=np.int64)
        n = len(names)
    notes = () if has_w else ("no weight column: every connection has weight 1",)
    return build_graph(pre, post, w, n=n, source=str(path), threshold=threshold, notes=notes)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def _read_npz(path: Path, threshold: float) -> Graph:
    with np.load(path, allow_pickle=False) as data:
        keys = list(data.keys())
        if {"format", "shape", "data"} <= set(keys):
            return from_matrix(sp.load_npz(path), str(path), threshold=threshold)
        matrix_keys = [k for k in ("W", "weights", "adjacency") if k in keys]
        arrays = [k for k in keys if k not in ("labels", "populations")]
        key = matrix_keys[0] if matrix_keys else (arrays[0] if len(arrays) == 1 else None)
        if key is None:
            raise ValueError(f"{path}: cannot tell which array is the matrix (keys {keys}); "
                             "name it 'W' (optionally with 'labels' and 'populations')")
        labels = data["labels"] if "labels" in keys else None
        pops = [str(p) for p in data["populations"]] if "populations" in keys else None
        if labels is not None and pops is None:
            pops = [str(k) for k in range(int(labels.max()) + 1)]
        return from_matrix(data[key], str(path), labels, pops, threshold=threshold)


def load_file(path, threshold: float = 0.0) -> Graph:
    """A graph from a file: CSV/TSV edge list, ``.npy`` dense or ``.npz`` dense/sparse matrix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; give a connectivity file ({FILE_TYPES}) "
                                "or a run folder")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _read_edge_list(path, threshold)
    if suffix == ".npy":
        return from_matrix(np.load(path, allow_pickle=False), str(path), threshold=threshold)
    if suffix == ".npz":
        return _read_npz(path, threshold)
    raise ValueError(f"{path}: unknown file type {suffix or '(none)'!r}; give {FILE_TYPES}, "
                     "or a run folder holding config.json")


# -- rate models ---------------------------------------------------------------------------------

def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def rate_model_blocks(net, rule, rule_name: str) -> tuple[list[tuple[str, int]], list[tuple[str, str, np.ndarray]]]:
    """Populations ``[(name, size)]`` and weighted projections ``[(pre, post, M)]`` with
    ``M[i, j]`` the weight of ``pre neuron i -> post neuron j`` (module docstring)."""
    from rate_models.rules import direct, feedback, gradient, pepita, pfa

    sizes = net.sizes
    L = len(sizes) - 1
    layer = ["input", *[f"hidden{l}" for l in range(1, L)], "output"]
    pops = list(zip(layer, sizes))
    Ws = [_np(W) for W in net.weights]  # W_l: (N_l, N_{l-1})
    blocks = [(layer[l - 1], layer[l], Ws[l - 1].T) for l in range(1, L + 1)]
    if isinstance(rule, gradient.Backprop):
        blocks += [(layer[l], layer[l - 1], Ws[l - 1]) for l in range(2, L + 1)]
    elif isinstance(rule, feedback.LayerFeedbackRule):
        blocks += [(layer[l], layer[l - 1], _np(B).T) for l, B in zip(range(2, L + 1), rule.feedbacks())]
    elif isinstance(rule, direct.DRTP):
        pops.append(("target", sizes[-1]))
        blocks += [("target", layer[l], _np(getattr(rule, f"B{l}")).T) for l in range(1, L)]
    elif isinstance(rule, direct.DirectFeedbackRule):
        blocks += [("output", layer[l], _np(getattr(rule, f"B{l}")).T) for l in range(1, L)]
    elif isinstance(rule, pepita.Pepita):
        blocks.append(("output", "input", _np(rule.projection()).T))
    elif isinstance(rule, pfa.PFA):
        pops += [(f"error{l}", sizes[l]) for l in range(1, L + 1)]
        for l, (R, B) in enumerate(zip(rule.Rs, rule.Bs()), start=1):
            pops.append((f"ebar{l}", B.shape[0]))
            blocks.append((f"error{l + 1}", f"ebar{l}", _np(B).T))
            blocks.append((f"ebar{l}", f"error{l}", _np(R).T))
    else:
        raise ValueError(f"rule {rule_name!r}: no neuron-level feedback mapping; supported: bp, "
                         "fa, sign-symmetry, kolen-pollack, weight-mirror, dfa, sdfa, drtp, "
                         "pepita*, pfa, pfa-o")
    return pops, blocks


def from_blocks(pops: list[tuple[str, int]], blocks, source: str, threshold: float = 0.0,
                notes=()) -> Graph:
    """A graph from populations and dense projections between them (one global index, the
    populations in the order given)."""
    names = [p for p, _ in pops]
    offset = dict(zip(names, np.cumsum([0] + [n for _, n in pops[:-1]])))
    pre, post, w = [], [], []
    for a, b, M in blocks:
        i, j = np.nonzero(M)
        pre.append(i + offset[a])
        post.append(j + offset[b])
        w.append(M[i, j])
    labels = np.repeat(np.arange(len(pops)), [n for _, n in pops])
    return build_graph(np.concatenate(pre), np.concatenate(post), np.concatenate(w),
                       n=int(sum(n for _, n in pops)), labels=labels, populations=names,
                       source=source, threshold=threshold, notes=notes)


def from_rate_model(net, rule, rule_name: str, source: str | None = None,
                    threshold: float = 0.0) -> Graph:
    """Neuron-level graph of an ``FCNetwork`` and its rule object (module docstring)."""
    pops, blocks = rate_model_blocks(net, rule, rule_name)
    return from_blocks(pops, blocks, source or f"{rule_name} rate model", threshold,
                       (f"rate model {rule_name}, sizes {'-'.join(map(str, net.sizes))}: forward "
                        "and feedback projections as neuron-level connections (dense layers: "
                        "every weight is a connection unless |w| <= threshold)",))


def from_run_folder(folder, seed: int | None = None, threshold: float = 0.0) -> Graph:
    """The trained network of one seed of a run folder (``config.json`` and
    ``checkpoints/seed<k>.pt``; default: the run's first seed)."""
    import torch

    from neurosim.config import RunConfig
    from rate_models.network import FCNetwork
    from rate_models.rules import build_rule

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; a run folder is written by "
                                "'neurosim train --out FOLDER'")
    cfg = RunConfig.from_dict(json.loads(cfg_path.read_text()))
    seed = cfg.seed if seed is None else seed
    ckpt = folder / "checkpoints" / f"seed{seed}.pt"
    if not ckpt.is_file():
        have = sorted(p.name for p in (folder / "checkpoints").glob("seed*.pt"))
        raise FileNotFoundError(f"{ckpt} does not exist (checkpoints: {have or 'none'}); "
                                "train the run first or choose another --seed")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["rule"]
    n_layers = len([k for k in state if k.startswith("net.weights.")])
    shapes = [state[f"net.weights.{l}"].shape for l in range(n_layers)]
    sizes = [shapes[0][1], *[s[0] for s in shapes]]
    net = FCNetwork(sizes, cfg.activation, cfg.output, cfg.dropout, cfg.bias, cfg.init, seed,
                    cfg.normalize_activations)
    rule = build_rule(cfg.rule, net, cfg, seed)
    rule.load_state_dict(state)
    return from_rate_model(net, rule, cfg.rule, f"{folder} (seed {seed})", threshold)


# -- Brian2 --------------------------------------------------------------------------------------

def _root(group) -> tuple[object, int]:
    """A group and the index offset of ``group`` within it (subgroups map into their parent)."""
    from brian2.groups.subgroup import Subgroup

    start = 0
    while isinstance(group, Subgroup):
        start += int(group.start)
        group = group.source
    return group, start


def from_brian2(network, source: str | None = None, threshold: float = 0.0) -> Graph:
    """Every ``Synapses`` of a ``brian2.Network`` as one graph (module docstring)."""
    from brian2 import NeuronGroup, PoissonGroup, SpikeGeneratorGroup, Synapses

    synapses = [o for o in network.objects if isinstance(o, Synapses)]
    groups = {o.name: o for o in network.objects
              if isinstance(o, (NeuronGroup, PoissonGroup, SpikeGeneratorGroup))}
    for syn in synapses:
        for g in (syn.source, syn.target):
            root = _root(g)[0]
            groups.setdefault(root.name, root)
    names = sorted(groups)
    if not names:
        raise ValueError(f"{source or 'Brian2 network'}: holds no neuron group; nothing to analyze")
    sizes = [len(groups[k]) for k in names]
    offset = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    pre, post, w, notes = [], [], [], []
    for syn in synapses:
        (src, s0), (tgt, t0) = _root(syn.source), _root(syn.target)
        i, j = np.asarray(syn.i[:], dtype=np.int64), np.asarray(syn.j[:], dtype=np.int64)
        pre.append(i + s0 + offset[src.name])
        post.append(j + t0 + offset[tgt.name])
        if "w" in syn.variables:
            w.append(np.asarray(syn.state("w", use_units=False)[:], dtype=np.float64))
        else:
            w.append(np.ones(len(i)))
            notes.append(f"{syn.name}: no weight variable 'w', weight 1 per synapse")
    labels = np.repeat(np.arange(len(names)), sizes)
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))
    return build_graph(cat(pre).astype(np.int64), cat(post).astype(np.int64), cat(w),
                       n=int(sum(sizes)), labels=labels, populations=names,
                       source=source or f"Brian2 network {network.name}", threshold=threshold,
                       notes=[f"{len(synapses)} Synapses objects among {len(names)} groups "
                              f"({', '.join(names)})", *notes])
