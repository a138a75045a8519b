"""Adapters of the connectivity analyzer (files, networkx, rate models, Brian2) and its CLI."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from neurosim.cli import main
from neurosim.connectivity import analyze
from neurosim.connectivity.adapters import (from_brian2, from_matrix, from_networkx,
                                            from_rate_model, from_run_folder, load_file)
from neurosim.connectivity.stats import pair_statistics, population_breakdown

RNG = np.random.default_rng(0)
MATRIX = np.where(RNG.random((12, 12)) < 0.3, RNG.lognormal(size=(12, 12)), 0.0)
np.fill_diagonal(MATRIX, 0)


def same_graph(a, b):
    assert a.n == b.n
    assert (a.W != b.W).nnz == 0


def test_matrix_edge_lists_networkx_and_npz_give_the_same_graph(tmp_path):
    g = from_matrix(MATRIX)
    pre, post = np.nonzero(MATRIX)
    lines = [f"{i},{j},{float(MATRIX[i, j])!r}" for i, j in zip(pre, post)]
    (tmp_path / "e.csv").write_text("pre,post,weight\n" + "\n".join(lines) + "\n")
    (tmp_path / "e.tsv").write_text("\n".join(l.replace(",", "\t") for l in lines) + "\n")
    np.save(tmp_path / "m.npy", MATRIX)
    np.savez(tmp_path / "d.npz", W=MATRIX)
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(MATRIX))
    G = nx.DiGraph()
    G.add_nodes_from(range(12))
    G.add_weighted_edges_from((int(i), int(j), MATRIX[i, j]) for i, j in zip(pre, post))
    for other in [load_file(tmp_path / f) for f in ("e.csv", "e.tsv", "m.npy", "d.npz", "s.npz")] + [from_networkx(G)]:
        same_graph(g, other)
    assert pair_statistics(g)["n_connections"] == len(pre)


def test_edge_list_with_names_and_without_weights(tmp_path):
    (tmp_path / "names.csv").write_text("source,target\nA,B\nB,A\nB,C\n")
    g = load_file(tmp_path / "names.csv")
    assert g.n == 3 and g.n_edges == 3 and set(g.W.data) == {1.0}
    assert pair_statistics(g)["pairs"]["bidirectional"] == 1
    assert any("weight 1" in n for n in g.notes)


def test_edge_list_with_a_byte_order_mark_header(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffpre,post,weight\n0,1,0.5\n1,0,2\n".encode("utf-8"))
    g = load_file(tmp_path / "bom.csv")
    assert g.n == 2 and g.W[0, 1] == 0.5 and g.W[1, 0] == 2.0


def test_edge_list_with_huge_ids_is_remapped_with_a_note(tmp_path):
    (tmp_path / "huge.csv").write_text(f"0,{10**12},1.5\n{10**12},7,2\n")
    g = load_file(tmp_path / "huge.csv")
    assert g.n == 3 and g.n_edges == 2  # ids 0, 7, 10^12 -> 0, 1, 2 in increasing order
    assert g.W[0, 2] == 1.5 and g.W[2, 1] == 2.0
    assert any("remapped" in note for note in g.notes)


@pytest.mark.parametrize("content,match", [
    ("pre,post,weight\n0,1,0.5\n1.5,2,1\n", "line 3 .*mixes id kinds"),  # 1.5: neither index nor name
    ("pre,post\nA,B\nB,3\nC,A\n", "line 3 .*mixes id kinds"),  # names with a number among them
    ("0,1,0.5\n1,2\n2,0,1\n", "line 2 has no weight while other lines have one"),
    ("pre,post,weight\n0,1,0.5\n1,2,\n", "line 3 has no weight"),
    ("pre,post,weight\n0,1,1\n,2,1\n", "line 3 lacks a pre or post id"),
])
def test_ambiguous_edge_lists_are_errors_naming_the_line(tmp_path, content, match):
    (tmp_path / "e.csv").write_text(content)
    with pytest.raises(ValueError, match=match):
        load_file(tmp_path / "e.csv")


def test_networkx_populations_and_multigraphs():
    G = nx.MultiDiGraph()
    G.add_nodes_from([(0, {"population": "e"}), (1, {"population": "e"}), (2, {"population": "i"})])
    G.add_edge(0, 1, weight=1.0)
    G.add_edge(0, 1, weight=2.0)
    G.add_edge(1, 2, weight=-1.0)
    g = from_networkx(G)
    assert g.populations == ("e", "i") and list(g.labels) == [0, 0, 1]
    assert g.W[0, 1] == 3 and g.synapses_merged == 1


@pytest.mark.parametrize("content,name,match", [
    (None, "w.xyz", "unknown file type '.xyz'"),
    (np.zeros((3, 4)), "m.npy", r"must be square .* got shape \(3, 4\)"),
    (np.array([[0, np.nan], [1, 0]]), "m.npy", "NaN or infinite"),
    ("pre,post,weight\n0,1,inf\n", "e.csv", "NaN or infinite"),
    ("", "e.csv", "edge list is empty"),
    ("a,b,c\n1,2,3\n", "e.csv", "lacks 'pre' and 'post'"),
    ("pre,post,weight\n0,1,heavy\n", "e.csv", "not a number"),
])
def test_bad_files_are_refused_with_a_clear_message(tmp_path, content, name, match):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content or "")
    with pytest.raises(ValueError, match=match):
        load_file(path)


def test_missing_file_undirected_graph_and_ambiguous_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_file(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="undirected"):
        from_networkx(nx.Graph([(0, 1)]))
    np.savez(tmp_path / "two.npz", a=MATRIX, b=MATRIX)
    with pytest.raises(ValueError, match="name it 'W'"):
        load_file(tmp_path / "two.npz")


# -- rate models ----------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def rate_graph(rule, sizes=(8, 6, 5, 3)):
    from neurosim.config import RunConfig
    from rate_models.architectures import FCNetwork
    from rate_models.rules import build_rule

    cfg = RunConfig(rule=rule, hidden=list(sizes[1:-1]))
    net = FCNetwork(list(sizes), seed=1)
    return from_rate_model(net, build_rule(rule, net, cfg, 1), rule)


def breakdown(g):
    return {tuple(r["populations"]): r for r in population_breakdown(g)}


@pytest.mark.parametrize("rule", ["fa", "bp", "kolen-pollack", "sign-symmetry"])
def test_layer_feedback_makes_every_forward_pair_above_the_input_bidirectional(rule):
    rows = breakdown(rate_graph(rule))
    for pair, n_pairs in ((("hidden1", "hidden2"), 6 * 5), (("hidden2", "output"), 5 * 3)):
        r = rows[pair]
        assert r["bidirectional"] == n_pairs and r["unidirectional"] == 0
    assert rows[("input", "hidden1")]["bidirectional"] == 0  # no error reaches the input
    assert rows[("input", "hidden1")]["unidirectional"] == 8 * 6
    if rule == "bp":  # W^T: equal weights
        assert rows[("hidden1", "hidden2")]["reciprocal_weight_correlation_log"] == pytest.approx(1)
        assert rows[("hidden2", "output")]["alignment_angle_deg"] == pytest.approx(0, abs=1e-4)
    if rule == "fa":  # random B: unrelated to W
        assert 60 < rows[("hidden2", "output")]["alignment_angle_deg"] < 120


def test_pfa_has_no_bidirectional_pair_and_drtp_none_either():
    g = rate_graph("pfa")
    assert pair_statistics(g)["pairs"]["bidirectional"] == 0
    assert {"error1", "error3", "ebar1", "ebar2"} <= set(g.populations)
    sizes = dict(zip(g.populations, g.population_sizes()))
    assert sizes["ebar1"] == 50 and sizes["ebar2"] == 30  # expansion 10 of N_{l+1}
    # forward; B_1 (error2 -> ebar1), R_1 (ebar1 -> error1); B_2, R_2
    assert g.n_edges == 8 * 6 + 6 * 5 + 5 * 3 + (5 * 50 + 50 * 6) + (3 * 30 + 30 * 5)
    d = rate_graph("drtp")
    assert pair_statistics(d)["pairs"]["bidirectional"] == 0 and "target" in d.populations


def test_dfa_reciprocates_only_the_last_hidden_layer():
    rows = breakdown(rate_graph("dfa"))
    assert rows[("hidden2", "output")]["bidirectional"] == 5 * 3
    assert rows[("hidden1", "output")]["bidirectional"] == 0
    assert rows[("hidden1", "output")]["connections_ba"] == 3 * 6


def test_run_folder_is_rebuilt_from_its_checkpoint(tmp_path):
    from neurosim.config import RunConfig
    from rate_models.train import train_run

    cfg = RunConfig(rule="kolen-pollack", dataset="digits", hidden=[16], epochs=1, lr_milestones=[])
    train_run(cfg, tmp_path / "run", progress=False)
    g = from_run_folder(tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoints" / "seed0.pt", weights_only=True)["rule"]
    W2, B2 = state["net.weights.1"].numpy(), state["Bs.0"].numpy()
    off = 64  # input neurons come first
    assert g.W[off + 3, off + 16 + 2] == pytest.approx(W2[2, 3])  # hidden 3 -> output 2
    assert g.W[off + 16 + 2, off + 3] == pytest.approx(B2[3, 2])  # learned feedback
    with pytest.raises(FileNotFoundError, match="seed5.pt does not exist"):
        from_run_folder(tmp_path / "run", seed=5)
    assert main(["connectivity", str(tmp_path / "run"), "--json", "--bootstrap", "0"]) == 0


def test_seed_batch_run_folder_is_analyzed_per_seed(tmp_path):
    from neurosim.config import RunConfig
    from rate_models.train import train_run

    cfg = RunConfig(rule="dfa", dataset="digits", hidden=[16], epochs=1, lr_milestones=[], seeds=2,
                    seed_batch=True)
    train_run(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "seeds0-1.pt", weights_only=True)["rule"]
    W2 = state["net.weights.1"].numpy()  # (seed, output, hidden)
    off = 64
    for seed in (0, 1):
        g = from_run_folder(tmp_path / "run", seed=seed)
        assert g.W[off + 3, off + 16 + 2] == pytest.approx(W2[seed, 2, 3])


# -- Brian2 ---------------------------------------------------------------------------------------

def test_brian2_network_with_subgroups_multisynapses_and_no_weight():
    b2 = pytest.importorskip("brian2")
    b2.prefs.codegen.target = "numpy"
    a = b2.NeuronGroup(4, "v : 1", name="pop_a")
    b = b2.NeuronGroup(3, "v : 1", name="pop_b")
    ab = b2.Synapses(a, b, "w : 1", name="ab")
    ab.connect(i=[0, 1, 2, 2], j=[0, 1, 2, 2])  # 2 -> 2 twice
    ab.w = [1.0, 2.0, 3.0, 4.0]
    ba = b2.Synapses(b, a[1:3], name="ba")  # no w; targets a subgroup
    ba.connect(i=[0, 1], j=[0, 0])  # b0 -> a1, b1 -> a1
    g = from_brian2(b2.Network(a, b, ab, ba))
    assert g.populations == ("pop_a", "pop_b") and g.n == 7
    assert g.W[2, 4 + 2] == 7 and g.synapses_merged == 1
    assert g.W[4 + 1, 1] == 1 and g.W[4 + 0, 1] == 1
    s = pair_statistics(g)
    assert s["pairs"]["bidirectional"] == 1 and s["n_connections"] == 5  # {a1, b1}
    assert any("no weight variable" in n for n in g.notes)


# -- command line ---------------------------------------------------------------------------------

@pytest.fixture
def edge_file(tmp_path):
    pre, post = np.nonzero(MATRIX)
    path = tmp_path / "e.csv"
    path.write_text("pre,post,weight\n" + "".join(f"{i},{j},{MATRIX[i, j]}\n" for i, j in zip(pre, post)))
    return path


def test_cli_json_has_every_required_key(edge_file, capsys):
    assert main(["connectivity", str(edge_file), "--json", "--shuffles", "3", "--bootstrap", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = analyze(load_file(edge_file), n_boot=100)
    for key in ("n_neurons", "n_connections", "connection_probability", "pairs",
                "bidirectional_fraction_of_connected", "reciprocity_ratio",
                "reciprocal_weight_correlation", "definitions"):
        assert out[key] == expected[key], key
    assert set(out["pairs"]) >= {"unconnected", "unidirectional", "bidirectional"}
    assert set(out["triad_census"]["300"]) == {"observed", "expected_er", "expected_pair_null", "shuffled"}
    assert out["reference"]["name"] == "song2005"


def test_cli_plots_and_markdown(edge_file, tmp_path, capsys):
    assert main(["connectivity", str(edge_file), "--plot", str(tmp_path / "fig"),
                 "--reference", "cossell2015", "--bootstrap", "50"]) == 0
    assert "| bidirectional_fraction_of_connected |" in capsys.readouterr().out
    for name in ("pair_types.png", "triad_ratios.png", "weight_histogram.png",
                 "reciprocal_weights.png", "connectivity.json", "report.md"):
        assert (tmp_path / "fig" / name).stat().st_size > 0, name


@pytest.mark.parametrize("argv,match", [
    (["connectivity"], "either SOURCE"),
    (["connectivity", "x.csv", "--circuit", "pfa"], "either SOURCE"),
    (["connectivity", "missing.csv"], "does not exist"),
    (["connectivity", "{tmp}/w.xyz"], "unknown file type"),
])
def test_cli_errors_exit_2_with_a_message(argv, match, tmp_path, capsys):
    (tmp_path / "w.xyz").write_text("1")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert match in capsys.readouterr().err


def test_cli_circuit(capsys):
    assert main(["connectivity", "--circuit", "pfa", "--json", "--bootstrap", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_connections"] > 0 and out["pairs"]["bidirectional"] == 0
