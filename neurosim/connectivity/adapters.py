"""Graphs from files, networkx, trained rate models and Brian2 networks.

Orientation: a graph's ``W[i, j]`` is the weight of ``i -> j``. Dense files follow the same
convention (row = presynaptic neuron; as ``networkx.to_numpy_array``); a rate layer's forward
weight ``W_l`` (``(N_post, N_pre)``) is transposed on the way in.

Neuron-level connections of a rate model (populations ``input``, ``hidden1`` ... ``output``, plus
any a rule's feedback needs): the rule reports them (``Rule.connectivity_blocks`` in
``rate_models/rules/``), the forward ``W_l`` as ``layer l-1 -> layer l`` and its feedback
pathways, e.g. BP's implicit ``W_l^T`` and FA's ``B_l`` as ``layer l -> layer l-1``, DFA's
``B_l`` as ``output -> hidden l``, DRTP's from a population ``target``, PEPITA's ``F`` as
``output -> input``, PFA's through separate error and intermediate populations.

A Brian2 network: every ``Synapses`` object, its weight variable ``w`` (1 where it has none),
groups ordered by name and indexed one after another (subgroups map into their parent), several
synapses between one ordered pair merged by summing their weights.
"""

from __future__ import annotations

import csv
import zipfile
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


MAX_INDEX = 10_000_000  # integer ids above this are remapped to 0..k-1 (no dense array of 10^12 neurons)


def _read_edge_list(path: Path, threshold: float) -> Graph:
    """``pre,post[,weight]`` lines, with or without a header (a UTF-8 byte-order mark is allowed).

    Ids are all integers (neuron indices) or all names (indexed in sorted order); a mix, or a
    weight given on some rows and not on others, is an error naming the first offending line.
    """
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = [(k, r) for k, r in enumerate(csv.reader(fh, delimiter=delimiter), start=1)
                     if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start}); give a "
                         "CSV/TSV edge list") from None
    except csv.Error as err:
        raise ValueError(f"{path}: not a readable CSV/TSV edge list ({err})") from None
    if not lines:
        raise ValueError(f"{path}: the edge list is empty; write one 'pre,post,weight' line per connection")
    header = [c.strip().lower() for c in lines[0][1]]
    cols = (0, 1, 2)
    if not _is_number(header[0]):
        lines = lines[1:]
        names = {"pre": ("pre", "source", "from"), "post": ("post", "target", "to"),
                 "weight": ("weight", "w")}
        found = [next((header.index(a) for a in names[k] if a in header), None) for k in names]
        if found[0] is None or found[1] is None:
            raise ValueError(f"{path}: header {header} lacks 'pre' and 'post' columns; "
                             "name them pre,post,weight (or source,target,weight)")
        cols = tuple(found)
    if not lines:
        raise ValueError(f"{path}: the edge list has a header but no connections")
    for k, r in lines:
        if len(r) <= max(cols[0], cols[1]) or not r[cols[0]].strip() or not r[cols[1]].strip():
            raise ValueError(f"{path}: line {k} lacks a pre or post id ({delimiter.join(r)!r}); "
                             "every line needs pre and post")
    pre_s = [r[cols[0]].strip() for _, r in lines]
    post_s = [r[cols[1]].strip() for _, r in lines]
    w = _weights(path, lines, cols[2])
    pre, post, n, notes = _indices(path, lines, pre_s, post_s)
    if w is None:
        notes = (*notes, "no weight column: every connection has weight 1")
    return build_graph(pre, post, w, n=n, source=str(path), threshold=threshold, notes=notes)


def _weights(path: Path, lines: list, col: int | None) -> np.ndarray | None:
    """The weight column, None when no line has one; a line missing it while others have it, or
    one that is not a number, is an error naming the line."""
    if col is None:
        return None
    has = [len(r) > col and r[col].strip() != "" for _, r in lines]
    if not any(has):
        return None
    if not all(has):
        k = lines[has.index(False)][0]
        raise ValueError(f"{path}: line {k} has no weight while other lines have one; give every "
                         "line a weight, or none (then every weight is 1)")
    w = []
    for k, r in lines:
        try:
            w.append(float(r[col]))
        except ValueError:
            raise ValueError(f"{path}: line {k}: weight {r[col].strip()!r} is not a number") from None
    return np.array(w)


def _indices(path: Path, lines: list, pre_s: list[str], post_s: list[str]) -> tuple:
    """Neuron indices of the ids: integers as given (remapped to 0..k-1 above
    :data:`MAX_INDEX`), or names in sorted order; a mix is an error naming the first line."""
    kinds = ["int" if _is_int(a) and _is_int(b) else "name" if not (_is_number(a) or _is_number(b))
             else "other" for a, b in zip(pre_s, post_s)]
    if all(kind == "int" for kind in kinds):
        pre, post = np.array(pre_s, dtype=np.int64), np.array(post_s, dtype=np.int64)
        top = int(max(pre.max(), post.max()))
        if top < MAX_INDEX:
            return pre, post, None, ()
        ids, inverse = np.unique(np.concatenate([pre, post]), return_inverse=True)
        note = (f"ids up to {top} remapped to 0..{len(ids) - 1} in increasing order: neurons in no "
                "connection are left out")
        return inverse[:len(pre)], inverse[len(pre):], len(ids), (note,)
    if all(kind == "name" for kind in kinds):
        index = {s: k for k, s in enumerate(sorted(set(pre_s + post_s)))}
        return (np.array([index[s] for s in pre_s], dtype=np.int64),
                np.array([index[s] for s in post_s], dtype=np.int64), len(index), ())
    usual = "int" if kinds.count("int") >= kinds.count("name") else "name"
    k, r = next((k, r) for (k, r), kind in zip(lines, kinds) if kind != usual)
    raise ValueError(f"{path}: line {k} ({','.join(c.strip() for c in r)!r}) mixes id kinds: ids must be "
                     "all whole numbers (neuron indices) or all names, and a number such as 1.5 is "
                     "neither; fix that line or rename the neurons")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def _read_npz(path: Path, threshold: float) -> Graph:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:  # pickled objects: refused unread
        raise ValueError(f"{path}: not a readable .npz archive ({str(err).splitlines()[0]}); save it "
                         "with numpy.savez or scipy.sparse.save_npz (no object arrays)") from None
    if not hasattr(archive, "keys"):
        raise ValueError(f"{path}: a single .npy array, not an .npz archive; rename it to .npy")
    with archive as data:
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
    if suffix in (".npy", ".npz"):
        try:
            matrix = np.load(path, allow_pickle=False) if suffix == ".npy" else None
        except (OSError, EOFError, ValueError) as err:  # pickled objects are refused, never loaded
            raise ValueError(f"{path}: not a readable .npy matrix ({str(err).splitlines()[0]}); save it "
                             "with numpy.save (no object arrays)") from None
        if matrix is not None:
            return from_matrix(matrix, str(path), threshold=threshold)
        try:
            return _read_npz(path, threshold)
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:  # a damaged member
            raise ValueError(f"{path}: not a readable .npz archive ({err}); save it with numpy.savez "
                             "or scipy.sparse.save_npz") from None
    raise ValueError(f"{path}: unknown file type {suffix or '(none)'!r}; give {FILE_TYPES}, "
                     "or a run folder holding config.json")


# -- rate models ---------------------------------------------------------------------------------

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
    """Neuron-level graph of an ``FCNetwork`` and its rule object, whose
    ``connectivity_blocks()`` gives the populations and projections (module docstring)."""
    pops, blocks = rule.connectivity_blocks()
    return from_blocks(pops, blocks, source or f"{rule_name} rate model", threshold,
                       (f"rate model {rule_name}, sizes {'-'.join(map(str, net.sizes))}: forward "
                        "and feedback projections as neuron-level connections (dense layers: "
                        "every weight is a connection unless |w| <= threshold)",))


def from_run_folder(folder, seed: int | None = None, threshold: float = 0.0) -> Graph:
    """The trained network of one seed of a run folder (default: the run's first seed), loaded by
    :func:`rate_models.saved_runs.load_seed`, so every checkpoint layout training writes (one or
    several seeds, a seed batch) is found."""
    from rate_models.saved_runs import load_seed, run_config

    folder = Path(folder)
    arch = run_config(folder).network.arch
    if arch != "fc":
        raise ValueError(f"{folder}: a {arch} run; the connectivity of run folders covers fully "
                         "connected networks (arch fc)")
    cfg, seed, net, rule = load_seed(folder, seed)
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
