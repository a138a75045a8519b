"""The directed weighted graph every connectivity statistic is computed on.

A :class:`Graph` holds ``N`` neurons, each with a population label, and a sparse weight matrix
``W`` (``scipy.sparse.csr_array``, shape ``(N, N)``) with ``W[i, j]`` the weight of the
connection **from neuron i to neuron j** (row = presynaptic, column = postsynaptic; note that
the forward weights of a rate layer, ``(N_post, N_pre)``, are the transpose of this).

What counts as a connection: a stored entry with ``|w| > threshold`` (default 0, so explicit zero
weights are absent connections). :func:`build_graph` is the one entry point and states its
treatment of bad input:

* indices out of range, NaN or infinite weights, a label array of the wrong length: ``ValueError``;
* self-loops ``i -> i``: excluded, their number kept in ``self_loops_removed`` (a pair needs two
  neurons);
* several synapses between the same ordered pair: merged into one connection whose weight is the
  sum, their number kept in ``synapses_merged``;
* no neuron at all: ``ValueError``. A graph with neurons but no connection is valid (its ratios
  are undefined and reported as ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Graph:
    """``W``: ``(N, N)`` CSR weights (pre -> post); ``labels``: population index per neuron;
    ``populations``: population names; ``notes``: how the source was turned into this graph."""

    W: sp.csr_array
    labels: np.ndarray
    populations: tuple[str, ...]
    source: str = ""
    self_loops_removed: int = 0
    synapses_merged: int = 0
    below_threshold_removed: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def n(self) -> int:
        return self.W.shape[0]

    @property
    def n_edges(self) -> int:
        return self.W.nnz

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pre, post, weight)`` arrays of every connection, sorted by (pre, post)."""
        coo = self.W.tocoo()
        order = np.lexsort((coo.col, coo.row))
        return coo.row[order].astype(np.int64), coo.col[order].astype(np.int64), coo.data[order]

    def population_sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.populations))

    def with_sign(self, sign: int) -> "Graph":
        """The subgraph of the excitatory (``sign=+1``, w > 0) or inhibitory (``-1``, w < 0)
        connections, with weights replaced by their magnitudes."""
        pre, post, w = self.edges()
        keep = np.sign(w) == sign
        W = sp.csr_array((np.abs(w[keep]), (pre[keep], post[keep])), shape=self.W.shape)
        kind = "excitatory (w > 0)" if sign > 0 else "inhibitory (w < 0, as |w|)"
        return Graph(W, self.labels, self.populations, self.source,
                     notes=self.notes + (f"{kind} connections only",))


def build_graph(pre, post, weight=None, n: int | None = None, labels=None,
                populations=None, source: str = "graph", threshold: float = 0.0,
                notes=()) -> Graph:
    """A :class:`Graph` from connection lists ``pre -> post`` (weights default to 1).

    ``n`` defaults to ``max index + 1``; ``labels`` (population index per neuron) and
    ``populations`` (their names) default to one population named ``"all"``. ``threshold``:
    connections with ``|w| <= threshold`` are dropped (after merging multi-synapses).
    """
    pre = np.asarray(pre).ravel()
    post = np.asarray(post).ravel()
    weight = np.ones(len(pre)) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
    if not (len(pre) == len(post) == len(weight)):
        raise ValueError(f"{source}: pre, post and weight have different lengths "
                         f"({len(pre)}, {len(post)}, {len(weight)})")
    for name, idx in (("pre", pre), ("post", post)):
        if len(idx) and not np.issubdtype(idx.dtype, np.integer):
            if not np.all(np.isfinite(idx)) or np.any(idx != np.round(idx)):
                raise ValueError(f"{source}: {name} indices must be whole numbers")
    pre, post = pre.astype(np.int64), post.astype(np.int64)
    if n is None:
        n = int(max(pre.max(initial=-1), post.max(initial=-1))) + 1
    if n <= 0:
        raise ValueError(f"{source}: the graph is empty (no neurons); give a matrix or edge list "
                         "with at least one connection or an explicit number of neurons")
    bad = ~np.isfinite(weight)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{source}: {int(bad.sum())} weight(s) are NaN or infinite (first: "
                         f"{pre[k]} -> {post[k]} = {weight[k]}); remove or replace them")
    out = (pre < 0) | (pre >= n) | (post < 0) | (post >= n)
    if out.any():
        k = int(np.argmax(out))
        raise ValueError(f"{source}: connection {pre[k]} -> {post[k]} lies outside neurons "
                         f"0..{n - 1}")
    if labels is None:
        labels, populations = np.zeros(n, dtype=np.int64), ("all",)
    labels = np.asarray(labels, dtype=np.int64)
    populations = tuple(populations)
    if labels.shape != (n,):
        raise ValueError(f"{source}: {labels.shape[0]} population labels for {n} neurons")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(populations)):
        raise ValueError(f"{source}: population labels must index the {len(populations)} populations")

    loops = pre == post
    pre, post, weight = pre[~loops], post[~loops], weight[~loops]
    key = pre * n + post
    uniq, inverse = np.unique(key, return_inverse=True)
    merged = len(key) - len(uniq)
    summed = np.bincount(inverse, weights=weight, minlength=len(uniq))
    strong = np.abs(summed) > threshold
    W = sp.csr_array((summed[strong], (uniq[strong] // n, uniq[strong] % n)), shape=(n, n))
    W.sort_indices()
    notes = list(notes)
    if loops.any():
        notes.append(f"{int(loops.sum())} self-loop(s) i -> i excluded")
    if merged:
        notes.append(f"{merged} extra synapse(s) between already connected ordered pairs merged "
                     "(weights summed)")
    if (~strong).any():
        notes.append(f"{int((~strong).sum())} connection(s) with |w| <= {threshold:g} dropped")
    return Graph(W, labels, populations, source, int(loops.sum()), int(merged),
                 int((~strong).sum()), tuple(notes))
