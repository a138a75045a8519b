"""The neuron-level graph of a NIR file (``neurosim connectivity FILE.nir``).

Populations are the graph's input and its neuron nodes, in chain order (``neurosim.nir_chain``).
Each layer's composed linear map ``M_l`` (``Linear``/``Affine`` weights; ``Conv2d`` and pooling
expanded into the connections they make) gives ``layer l-1 neuron j -> layer l neuron i`` with
weight ``M_l[i, j]``; constant currents (biases) are not connections and are left out. A NIR
inference graph has no feedback pathway, so no neuron pair is connected both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurosim.connectivity.graph import Graph, build_graph
from neurosim.nir_chain import read_chain_file, stage_matrix


def from_nir_file(path, threshold: float = 0.0) -> Graph:
    """The graph of the NIR file ``path`` (module docstring)."""
    chain = read_chain_file(Path(path))[1]
    names = [chain.input_name, *[s.name for s in chain.stages]]
    offsets = np.cumsum([0, *chain.sizes[:-1]])
    pre, post, w = [], [], []
    for k, stage in enumerate(chain.stages):
        coo = stage_matrix(stage)[0].tocoo()
        pre.append(coo.col + offsets[k])
        post.append(coo.row + offsets[k + 1])
        w.append(coo.data)
    labels = np.repeat(np.arange(len(names)), chain.sizes)
    return build_graph(np.concatenate(pre), np.concatenate(post), np.concatenate(w),
                       n=int(sum(chain.sizes)), labels=labels, populations=names, source=str(path),
                       threshold=threshold,
                       notes=(f"NIR graph {' -> '.join(names)} ({'-'.join(map(str, chain.sizes))}): "
                              "each layer's linear maps as neuron-level connections; biases are "
                              "not connections; no feedback pathway",))
