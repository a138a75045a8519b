"""One analysis of a graph: every statistic of the connectivity analyzer in one JSON-ready dict.

Signed weights are never mixed silently: pair and triad statistics count a connection whatever
its sign (``weights.sign_split`` gives the numbers of each sign), weight statistics use
magnitudes ``|w|`` and are repeated for the excitatory (w > 0) and inhibitory (w < 0) subgraphs
under ``by_sign`` whenever both signs occur. ``definitions`` states each figure's definition.
"""

from __future__ import annotations

import numpy as np

from neurosim.connectivity.graph import Graph
from neurosim.connectivity.stats import (graph_alignment_deg, pair_statistics,
                                         population_breakdown, reciprocal_index,
                                         reciprocal_weights,
                                         weight_correlations, weight_statistics)
from neurosim.connectivity.triads import (TRIAD_NAMES, expected_erdos_renyi, expected_pair_null,
                                          shuffle_zscores, triad_census)

DEFINITIONS = {
    "connection_probability": "p = E / (N (N - 1)): connections over ordered pairs of distinct neurons",
    "pairs": "unordered pairs of distinct neurons: unconnected, one direction only, both directions",
    "bidirectional_fraction_of_connected": "bidirectional / (unidirectional + bidirectional) pairs; chance p / (2 - p)",
    "bidirectional_pair_probability": "bidirectional pairs / (N (N - 1) / 2); chance p²",
    "reciprocity_ratio": "P(bidirectional pair) / p² (Song et al. 2005's '4x'); chance 1",
    "edge_reciprocity": "2 · bidirectional / E = P(j -> i | i -> j) (networkx.reciprocity); chance p",
    "reciprocal_weight_correlation": "Pearson (centred) r of ln|w(i->j)| vs ln|w(j->i)| over bidirectional pairs, i < j; absent connections not counted",
    "reciprocal_weight_correlations": "Pearson r of ln|w| ('log') and of |w| ('linear') over bidirectional pairs, i < j, absent connections not counted; 95 % percentile bootstrap over pairs",
    "alignment_angle_deg": "arccos(<W, W^T> / |W|²): uncentred (cosine), linear signed weights, absent connections counted as 0; 90° = unrelated",
    "median_weight_ratio_bi_uni": "median |w| of connections in bidirectional pairs / median |w| in unidirectional pairs",
    "lognormal": "maximum-likelihood lognormal (location 0) of |w| per sign: mu, sigma of the natural log",
    "triad_census": "16 classes (networkx names); expected_er: Erdős–Rényi with the same p; expected_pair_null: each pair independently unconnected / one-way / two-way at the observed pair frequencies (Song et al. 2005); shuffled: degree- and reciprocity-preserving rewiring",
    "populations": "the pair statistics per unordered population pair; ratio P(bi) / (p(a->b) p(b->a)); alignment between W[a->b] and W[b->a]^T",
}


def weight_summary(graph: Graph, n_boot: int, seed: int) -> dict:
    """Reciprocal weight correlations, lognormal fits and the bi/uni median ratio."""
    _, _, w, has, _ = reciprocal_index(graph)
    _, _, x, y = reciprocal_weights(graph)
    corr = weight_correlations(x, y, n_boot, seed)
    mags = np.abs(w)
    ratio = (float(np.median(mags[has]) / np.median(mags[~has]))
             if has.any() and (~has).any() else None)
    return {"reciprocal_weight_correlation": corr["log"]["r"],
            "reciprocal_weight_correlations": corr,
            "median_weight_ratio_bi_uni": ratio,
            "weights": weight_statistics(graph)}


def analyze(graph: Graph, shuffles: int = 0, seed: int = 0, n_boot: int = 1000,
            progress: bool = False) -> dict:
    """Every statistic of ``graph`` (see :data:`DEFINITIONS`); ``shuffles`` rewired graphs give
    triad z-scores."""
    result = {"source": graph.source, "notes": list(graph.notes)}
    pairs = pair_statistics(graph)
    result.update(pairs)
    result.update(weight_summary(graph, n_boot, seed))
    result["alignment_angle_deg"] = graph_alignment_deg(graph)
    observed = triad_census(graph)
    n = graph.n
    er = expected_erdos_renyi(n, pairs["connection_probability"] or 0.0)
    pn = (expected_pair_null(n, **{k: pairs["pairs"][k] for k in ("unconnected", "unidirectional", "bidirectional")})
          if n > 1 else {k: 0.0 for k in TRIAD_NAMES})
    census = {k: {"observed": observed[k], "expected_er": er[k], "expected_pair_null": pn[k]}
              for k in TRIAD_NAMES}
    if shuffles > 0 and graph.n_edges:
        for k, z in shuffle_zscores(graph, observed, shuffles, seed, progress).items():
            census[k]["shuffled"] = z
    result["triad_census"] = census
    result["shuffles"] = shuffles
    result["populations"] = population_breakdown(graph)
    split = result["weights"]["sign_split"]
    if split["positive"] and split["negative"]:
        result["by_sign"] = {}
        for sign, name in ((1, "excitatory"), (-1, "inhibitory")):
            sub = graph.with_sign(sign)
            entry = pair_statistics(sub)
            entry.update(weight_summary(sub, n_boot, seed))
            result["by_sign"][name] = entry
    result["definitions"] = DEFINITIONS
    return result
