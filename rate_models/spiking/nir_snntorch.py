"""Run a NIR graph written by ``neurosim export`` in snnTorch, through snnTorch's own importer.

``snntorch.import_from_nir`` (snnTorch 1.0) builds each ``LIF`` as a ``Leaky`` neuron with
``beta = 1 - 1e-4/tau`` and threshold ``v_threshold / (r 1e-4/tau)``: it assumes a step of 1e-4 s
and forward Euler, and it resets every neuron to zero at the spike. It has no ``LI`` node. Three
preparations, none of which changes the network, make it run neurosim's graphs:

* time is rescaled so that the graph's ``dt`` (metadata) becomes snnTorch's 1e-4 s: every ``tau``
  is multiplied by ``1e-4 / dt`` (``r`` is per step and stays);
* an ``LI`` readout is passed as an ``LIF`` with an infinite threshold, which never fires or resets;
* after the import, every ``Leaky`` whose node has ``reset: subtract`` in its metadata (or the
  graph's) is rebuilt with the same beta and threshold and snnTorch's ``reset_mechanism="subtract"``
  (reset at the next step, as in neurosim).

The result is snnTorch's module (a ``torch.fx.GraphModule``): one call ``module(s0)`` is one step
and returns ``(output, state)``; the neurons keep their potentials between calls
(``init_hidden=True``), so ``snntorch.utils.reset(module)`` starts a new sample. The readout
potential of the step is ``module.readout.mem``.
"""

from __future__ import annotations

import copy

import numpy as np

from neurosim.nir_chain import reset_of, read_chain
from neurosim.nir_files import metadata_value

SNNTORCH_DT = 1e-4  # the step (s) snntorch.import_from_nir assumes


def to_snntorch(graph):
    """snnTorch's module for the NIR graph ``graph`` of LIF layers and an LI readout (module
    docstring); its metadata must give ``dt``."""
    import nir
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    chain = read_chain(graph)
    dt = metadata_value(graph.metadata, "dt")
    if dt is None:
        raise ValueError("the graph has no dt in its metadata; snnTorch's importer needs to know "
                         "which step the time constants refer to")
    kinds = {s.name: s.kind for s in chain.stages}
    for name, kind in kinds.items():
        if kind not in ("LIF", "LI"):
            raise ValueError(f"node {name!r} is a {kind}; this bridge to snnTorch covers LIF layers "
                             "and an LI readout")
    scale = SNNTORCH_DT / float(dt)
    g = copy.deepcopy(graph)
    subtract = []
    for stage in chain.stages:
        node = g.nodes[stage.name]
        if stage.kind == "LI":
            g.nodes[stage.name] = nir.LIF(tau=node.tau * scale, r=node.r, v_leak=node.v_leak,
                                          v_threshold=np.full(node.tau.shape, np.inf),
                                          v_reset=np.zeros(node.tau.shape))
        else:
            node.tau = node.tau * scale
            if reset_of(stage, graph.metadata) == "subtract":
                subtract.append(stage.name)
    module = import_from_nir(g)
    for name in subtract:
        old = getattr(module, name)
        setattr(module, name, snn.Leaky(beta=old.beta, threshold=old.threshold,
                                        reset_mechanism="subtract", init_hidden=True))
    return module
