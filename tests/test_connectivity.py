"""The connectivity analyzer's statistics on graphs whose answers are known."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from neurosim.connectivity import analyze, build_graph
from neurosim.connectivity.generate import song2005_graph
from neurosim.connectivity.references import REFERENCES, get_reference, wilson
from neurosim.connectivity.report import comparison_rows, format_report
from neurosim.connectivity.stats import (graph_alignment_deg, pair_statistics,
                                         population_breakdown, weight_correlations)
from neurosim.connectivity.triads import (TRIAD_NAMES, expected_census, expected_erdos_renyi,
                                          expected_pair_null, rewire, triad_census)


def graph_of(edges, n=None, weights=None, **kw):
    pre, post = zip(*edges) if edges else ((), ())
    return build_graph(np.array(pre, dtype=np.int64), np.array(post, dtype=np.int64), weights, n=n, **kw)


def random_digraph(n, p, p_back, seed):
    rng = np.random.default_rng(seed)
    A = rng.random((n, n)) < p
    A |= A.T & (rng.random((n, n)) < p_back)
    np.fill_diagonal(A, False)
    return np.nonzero(A)


# -- pair statistics -------------------------------------------------------------------------------

def test_pair_counts_and_ratios_of_a_hand_built_graph():
    # 0<->1, 2<->3 bidirectional, 1->2 one way, three pairs unconnected
    s = pair_statistics(graph_of([(0, 1), (1, 0), (1, 2), (2, 3), (3, 2)], n=4))
    assert s["n_neurons"] == 4 and s["n_connections"] == 5
    assert s["connection_probability"] == pytest.approx(5 / 12)
    assert s["pairs"] == {"unconnected": 3, "unidirectional": 1, "bidirectional": 2, "total": 6}
    assert s["bidirectional_fraction_of_connected"] == pytest.approx(2 / 3)
    assert s["reciprocity_ratio"] == pytest.approx((2 / 6) / (5 / 12) ** 2)  # 1.92
    assert s["edge_reciprocity"] == pytest.approx(0.8)
    assert s["chance"]["bidirectional_fraction_of_connected"] == pytest.approx((5 / 12) / (2 - 5 / 12))


def test_edge_reciprocity_equals_networkx():
    pre, post = random_digraph(80, 0.08, 0.4, seed=3)
    G = nx.DiGraph(list(zip(pre.tolist(), post.tolist())))
    s = pair_statistics(graph_of(list(zip(pre, post)), n=80))
    assert s["edge_reciprocity"] == pytest.approx(nx.reciprocity(G))


def test_self_loops_are_excluded_and_multi_synapses_merged():
    g = graph_of([(0, 0), (0, 1), (0, 1), (1, 0), (2, 2)], n=3, weights=np.array([5, 1, 2, 4, 1.0]))
    assert g.self_loops_removed == 2 and g.synapses_merged == 1
    assert g.W[0, 1] == 3 and g.W[1, 0] == 4 and g.n_edges == 2
    assert pair_statistics(g)["pairs"]["bidirectional"] == 1
    assert any("self-loop" in n for n in g.notes) and any("merged" in n for n in g.notes)


def test_threshold_drops_weak_connections():
    g = graph_of([(0, 1), (1, 0), (1, 2)], n=3, weights=np.array([0.5, -0.05, 0.2]), threshold=0.1)
    assert g.n_edges == 2 and g.below_threshold_removed == 1
    assert pair_statistics(g)["pairs"]["bidirectional"] == 0


def test_reciprocal_weight_correlation_known_values():
    e = math.e
    # pairs {0,1}, {2,3}, {4,5}: ln x = 0, 1, 2 and ln y = 2, 1, 0 -> r = -1
    edges = [(0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4)]
    w = np.array([1, e ** 2, e, e, e ** 2, 1])
    r = analyze(graph_of(edges, n=6, weights=w), n_boot=50)
    assert r["reciprocal_weight_correlation"] == pytest.approx(-1)
    lin = np.corrcoef([1, e, e ** 2], [e ** 2, e, 1])[0, 1]
    assert r["reciprocal_weight_correlations"]["linear"]["r"] == pytest.approx(lin)
    assert r["reciprocal_weight_correlations"]["n_pairs"] == 3


def test_bootstrap_interval_covers_the_true_correlation():
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal(4000)
    z2 = 0.5 * z1 + math.sqrt(0.75) * rng.standard_normal(4000)
    c = weight_correlations(np.exp(z1), np.exp(z2), n_boot=400)
    lo, hi = c["log"]["ci95"]
    assert lo < 0.5 < hi and hi - lo < 0.06
    assert lo < c["log"]["r"] < hi


def test_alignment_angle_symmetric_antisymmetric_and_feedforward():
    sym = graph_of([(0, 1), (1, 0), (1, 2), (2, 1)], n=3, weights=np.array([1.0, 1, 2, 2]))
    anti = graph_of([(0, 1), (1, 0)], n=2, weights=np.array([1.0, -1]))
    dag = graph_of([(0, 1), (1, 2)], n=3)
    assert graph_alignment_deg(sym) == pytest.approx(0, abs=1e-6)
    assert graph_alignment_deg(anti) == pytest.approx(180)
    assert graph_alignment_deg(dag) == pytest.approx(90)


def test_population_breakdown_between_two_populations():
    # a = {0, 1}, b = {2, 3, 4}; a->b: 0->2, 0->3, 1->4; b->a: 2->0 (bidirectional with 0->2)
    g = graph_of([(0, 2), (0, 3), (1, 4), (2, 0), (0, 1)], n=5, weights=np.array([1.0, 2, 3, 4, 5]),
                 labels=[0, 0, 1, 1, 1], populations=["a", "b"])
    rows = {tuple(r["populations"]): r for r in population_breakdown(g)}
    ab = rows[("a", "b")]
    assert (ab["connections_ab"], ab["connections_ba"], ab["bidirectional"], ab["unidirectional"]) == (3, 1, 1, 2)
    assert ab["possible_pairs"] == 6 and ab["p_ab"] == pytest.approx(0.5)
    assert ab["reciprocity_ratio"] == pytest.approx((1 / 6) / (0.5 * 1 / 6))
    cos = (1 * 4) / math.sqrt((1 + 4 + 9) * 16)
    assert ab["alignment_angle_deg"] == pytest.approx(math.degrees(math.acos(cos)))
    aa = rows[("a", "a")]
    assert aa["connections_ab"] == 1 and aa["bidirectional"] == 0 and aa["p_ab"] == pytest.approx(0.5)
    assert ("b", "b") not in rows


def test_signed_weights_are_split_by_sign():
    edges = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3)]
    r = analyze(graph_of(edges, n=4, weights=np.array([1.0, 2, -1, -3, 0.5])), n_boot=0)
    assert r["weights"]["sign_split"] == {"positive": 3, "negative": 2}
    assert r["pairs"]["bidirectional"] == 2
    assert r["by_sign"]["excitatory"]["pairs"]["bidirectional"] == 1
    assert r["by_sign"]["inhibitory"]["pairs"] == {"unconnected": 5, "unidirectional": 0,
                                                   "bidirectional": 1, "total": 6}
    assert r["weights"]["lognormal_inhibitory"]["all"]["n"] == 2


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(bad):
    with pytest.raises(ValueError, match="NaN or infinite.*first: 1 -> 2"):
        graph_of([(0, 1), (1, 2)], n=3, weights=np.array([1.0, bad]), source="w.csv")


def test_empty_and_out_of_range_graphs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        build_graph([], [], n=0)
    with pytest.raises(ValueError, match="empty"):
        build_graph([], [])
    with pytest.raises(ValueError, match="outside neurons 0..2"):
        graph_of([(0, 3)], n=3)
    with pytest.raises(ValueError, match="3 population labels for 4 neurons"):
        graph_of([(0, 1)], n=4, labels=[0, 0, 0], populations=["a"])


def test_graph_without_connections_reports_undefined_ratios():
    r = analyze(build_graph([], [], n=5), n_boot=0)
    assert r["n_connections"] == 0 and r["connection_probability"] == 0
    assert r["reciprocity_ratio"] is None and r["bidirectional_fraction_of_connected"] is None
    assert r["triad_census"]["003"]["observed"] == math.comb(5, 3)


# -- triads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,p,p_back,seed", [(40, 0.1, 0.5, 0), (70, 0.05, 0.2, 1),
                                              (25, 0.4, 0.6, 2), (60, 0.02, 1.0, 3)])
def test_triad_census_equals_networkx(n, p, p_back, seed):
    pre, post = random_digraph(n, p, p_back, seed)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(zip(pre.tolist(), post.tolist()))
    assert triad_census(graph_of(list(zip(pre, post)), n=n)) == nx.triadic_census(G)


def _census_by_enumeration(p0, q, pb):
    """Sum over the 64 labelled configurations of three pairs, classified by networkx."""
    states = {"none": (p0, []), "ab": (q, [(0, 1)]), "ba": (q, [(1, 0)]), "both": (pb, [(0, 1), (1, 0)])}
    out = dict.fromkeys(TRIAD_NAMES, 0.0)
    for s01, s02, s12 in itertools.product(states, repeat=3):
        G = nx.DiGraph()
        G.add_nodes_from(range(3))
        prob = 1.0
        for s, (u, v) in ((s01, (0, 1)), (s02, (0, 2)), (s12, (1, 2))):
            prob *= states[s][0]
            G.add_edges_from([(u, v) if e == (0, 1) else (v, u) for e in states[s][1]])
        cls = next(k for k, c in nx.triadic_census(G).items() if c)
        out[cls] += prob
    return out


def test_expected_census_equals_enumeration_and_sums_to_the_triads():
    p = 0.13
    er = expected_erdos_renyi(30, p)
    brute = _census_by_enumeration((1 - p) ** 2, p * (1 - p), p * p)
    for k in TRIAD_NAMES:
        assert er[k] == pytest.approx(math.comb(30, 3) * brute[k], rel=1e-12)
    assert sum(er.values()) == pytest.approx(math.comb(30, 3), rel=1e-12)
    pn = expected_pair_null(30, 300, 100, 35)
    brute = _census_by_enumeration(300 / 435, 50 / 435, 35 / 435)
    for k in TRIAD_NAMES:
        assert pn[k] == pytest.approx(math.comb(30, 3) * brute[k], rel=1e-12)
    assert sum(pn.values()) == pytest.approx(math.comb(30, 3), rel=1e-12)
    assert sum(expected_census(3, 1, 0, 0).values()) == 1


def test_er_expectation_matches_random_graphs():
    n, p = 300, 0.05
    rng = np.random.default_rng(5)
    A = rng.random((n, n)) < p
    np.fill_diagonal(A, False)
    obs = triad_census(graph_of(list(zip(*np.nonzero(A))), n=n))
    exp = expected_erdos_renyi(n, A.sum() / (n * (n - 1)))
    for k in ("012", "102", "021C", "111U", "030T"):
        assert abs(obs[k] - exp[k]) < 5 * math.sqrt(exp[k]) + 5, k


def test_rewiring_keeps_degrees_and_pairs_but_moves_connections():
    pre, post = random_digraph(120, 0.05, 0.5, seed=4)
    g = graph_of(list(zip(pre, post)), n=120)
    r = rewire(g, np.random.default_rng(0))
    A, B = g.W.toarray() != 0, r.W.toarray() != 0
    M_a, M_b = A & A.T, B & B.T
    assert (A.sum(0) == B.sum(0)).all() and (A.sum(1) == B.sum(1)).all()
    assert (M_a.sum(1) == M_b.sum(1)).all() and not B.diagonal().any()
    assert pair_statistics(r)["pairs"] == pair_statistics(g)["pairs"]
    assert (A & B).sum() < 0.5 * A.sum()  # most connections moved


def test_shuffle_zscores_detect_planted_cycles():
    # many 3-cycles on top of a sparse random graph: 030C far above the rewired graphs
    rng = np.random.default_rng(1)
    pre, post = random_digraph(150, 0.02, 0.0, seed=6)
    cyc = rng.permutation(150)[:120].reshape(40, 3)
    extra = [(a, b) for a, b, c in cyc] + [(b, c) for a, b, c in cyc] + [(c, a) for a, b, c in cyc]
    edges = {(int(a), int(b)) for a, b in zip(pre, post)} | set(extra)
    edges = {(a, b) for a, b in edges if (b, a) not in edges or a < b}  # keep it one-way
    r = analyze(graph_of(sorted(edges), n=150), shuffles=8, n_boot=0)
    z = r["triad_census"]["030C"]["shuffled"]
    assert r["triad_census"]["030C"]["observed"] >= 40 and z["z"] > 5


# -- references and report ------------------------------------------------------------------------

def test_song2005_figures_equal_the_published_counts():
    song = get_reference("song2005")
    fig = {f.key: f for f in song.figures}
    assert sum(song.triad_census.values()) == 2446
    assert fig["connection_probability"].value == pytest.approx(931 / 8050)
    assert fig["reciprocity_ratio"].value == pytest.approx(4.05, abs=0.005)
    assert fig["bidirectional_fraction_of_connected"].value == pytest.approx(0.306, abs=0.0005)
    assert fig["edge_reciprocity"].value == pytest.approx(0.468, abs=0.0005)
    for k, v in {"300": 7.7, "120D": 4.0, "120U": 3.3, "030C": 3.5, "030T": 2.6, "210": 2.3}.items():
        assert fig[f"triad_ratio_pair_null:{k}"].value == pytest.approx(v, abs=0.05), k
    lo, hi = fig["reciprocity_ratio"].interval
    assert lo < 4.05 < hi and hi - lo < 1
    assert all(f.status in ("measured", "derived") and f.citation for r in REFERENCES.values()
               for f in r.figures)
    assert wilson(218, 713)[0] == pytest.approx(0.2730, abs=1e-4)


def test_unknown_reference_is_refused():
    with pytest.raises(ValueError, match="song2005"):
        get_reference("perin2011")


def test_generated_song_network_recovers_the_published_statistics():
    r = analyze(song2005_graph(600, seed=0), n_boot=200)
    rows = {row["statistic"]: row for row in comparison_rows(r, get_reference("song2005"))}
    # sampling error at n = 600 (179,700 pairs, ~9,700 bidirectional): well inside 3 %
    for key, tol in [("connection_probability", 0.03), ("bidirectional_fraction_of_connected", 0.03),
                     ("reciprocity_ratio", 0.03), ("edge_reciprocity", 0.03),
                     ("lognormal_sigma_bidirectional", 0.03), ("lognormal_sigma_unidirectional", 0.03),
                     ("median_weight_ratio_bi_uni", 0.03)]:
        assert rows[key]["network"] == pytest.approx(rows[key]["reference"], rel=tol), key
        assert rows[key]["within"] in (True, None)
    assert r["reciprocal_weight_correlation"] == pytest.approx(0.36, abs=0.03)
    lo, hi = r["reciprocal_weight_correlations"]["log"]["ci95"]
    assert lo < 0.36 < hi
    # pair statistics only: the triad excess Song found is not built in, ratios stay near 1
    assert rows["triad_ratio_pair_null:300"]["network"] == pytest.approx(1, abs=0.1)
    assert rows["triad_ratio_pair_null:300"]["within"] is False
    text = format_report(r, get_reference("song2005"))
    assert "| reciprocity_ratio |" in text and "Pearson (centred)" in text
