"""The connectivity analyzer: bidirectional-synapse statistics of any network beside cortex.

``graph`` (the directed weighted graph and its input checks), ``adapters`` (files, networkx,
rate models and run folders, Brian2 networks), ``stats`` (pairs, reciprocity, weights,
alignment, populations), ``triads`` (census, nulls, rewiring), ``analysis`` (all of it as one
dict), ``references`` (Song 2005, Campagnola 2022, Cossell 2015), ``report`` (the side-by-side
table), ``plots``, ``generate`` (graphs with prescribed pair statistics) and ``cli``. Imports
neither torch nor brian2 until a rate model or circuit is read.
"""

from neurosim.connectivity.analysis import analyze
from neurosim.connectivity.graph import Graph, build_graph

__all__ = ["Graph", "analyze", "build_graph"]
