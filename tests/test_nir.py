"""NIR interchange (issue 18): export of trained LIF runs, the round trip through snnTorch's
importer, the Brian2 simulation of NIR graphs against the LIF simulation, graphs written by
another tool's conventions, the import into the LIF mode, and bad files.

Brian2 runs on its numpy code generation (no compilation) except the one cpp_standalone test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
pytest.importorskip("brian2")

from circuits.nir_network import simulate  # noqa: E402
from neurosim.cli import main  # noqa: E402
from neurosim.config import RunConfig  # noqa: E402
from neurosim.datasets import load_dataset  # noqa: E402
from neurosim.nir_chain import read_chain, settings  # noqa: E402
from neurosim.nir_files import read_graph, write_graph  # noqa: E402
from rate_models.spiking import LIFNetwork, build_lif_rule  # noqa: E402
from rate_models.spiking.nir_io import (export_run, lif_config_from_nir,  # noqa: E402
                                        lif_network_from_nir, load_lif_run, to_nir)

HIDDEN = 16


pytestmark = pytest.mark.usefixtures("numpy_codegen")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained one-epoch DFA LIF run on digits (current encoder: deterministic)."""
    out = tmp_path_factory.mktemp("runs") / "lif"
    assert main(["train", "--rule", "dfa", "--neuron", "lif", "--dataset", "digits", "--arch",
                 str(HIDDEN), "--epochs", "1", "--lr", "5e-3", "--encoder", "current",
                 "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return data.x_test.reshape(len(data.x_test), -1).astype(np.float32), np.asarray(data.y_test)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    path = tmp_path_factory.mktemp("nir") / "net.nir"
    assert main(["export", str(run), "--format", "nir", "--out", str(path)]) == 0
    return path


def _refused(capsys, argv, *needles) -> str:
    """Run ``argv``: exit 2, one ``error:`` line holding every needle, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


# -- export -------------------------------------------------------------------------------------

def test_export_writes_a_typed_graph_with_the_exact_mapping(run, exported):
    graph = nir.read(exported)
    net, cfg, _ = load_lif_run(run)
    assert set(graph.nodes) == {"input", "fc1", "lif1", "fc2", "readout", "output"}
    assert [type(graph.nodes[n]).__name__ for n in ("fc1", "lif1", "fc2", "readout")] == \
        ["Linear", "LIF", "Linear", "LI"]
    for name, node in graph.nodes.items():  # explicit input and output types everywhere
        for types in (node.input_type, node.output_type):
            assert types and all(v is not None and np.prod(v) > 0 for v in types.values()), name
    for l, name in ((0, "fc1"), (1, "fc2")):
        assert np.array_equal(graph.nodes[name].weight, net.weights[l].detach().numpy())
    m = graph.metadata
    assert (m["dt"], m["num_steps"], m["reset"], m["encoder"]) == (cfg.lif.dt, cfg.lif.num_steps, "subtract", "current")
    lif = graph.nodes["lif1"]
    # forward Euler at dt: 1 - dt/tau = beta and r dt/tau = 1
    assert np.allclose(1 - cfg.lif.dt / lif.tau, cfg.lif.beta) and np.allclose(lif.r * cfg.lif.dt / lif.tau, 1.0)
    assert np.all(lif.v_threshold == cfg.lif.threshold) and lif.metadata["reset"] == "subtract"


def test_export_refuses_an_existing_file_and_leaves_no_temporary_file(run, exported, capsys):
    before = exported.read_bytes()
    _refused(capsys, ["export", str(run), "--out", str(exported)], "exists", "--overwrite")
    assert exported.read_bytes() == before
    assert main(["export", str(run), "--out", str(exported), "--overwrite", "--dt", "1e-3"]) == 0
    assert sorted(p.name for p in exported.parent.iterdir()) == ["net.nir"]


def test_a_conv_lif_net_is_refused_for_its_max_pooling():
    cfg = RunConfig.for_rule("dfa", neuron="lif", arch="pepita-conv", dataset="mnist")
    net = LIFNetwork([784, 10], cfg)
    with pytest.raises(ValueError, match="no max pooling"):
        to_nir(net, 1e-3)


# -- round trip through snnTorch ----------------------------------------------------------------

def test_round_trip_through_snntorch_gives_the_same_readout_potentials(run, digits, tmp_path):
    import snntorch.utils

    from rate_models.spiking.nir_snntorch import to_snntorch

    path = tmp_path / "snntorch.nir"
    assert main(["export", str(run), "--out", str(path), "--dt", "1e-4"]) == 0  # snnTorch's step
    module = to_snntorch(nir.read(path))
    net, cfg, _ = load_lif_run(run)
    x = torch.from_numpy(digits[0])
    ours, theirs = [], []
    with torch.no_grad():
        net.simulate(x, on_step=lambda step: ours.append(step.mems[-1].clone()))
        snntorch.utils.reset(module)
        for _ in range(cfg.lif.num_steps):
            module(x)
            theirs.append(module.readout.mem.clone())
    ours, theirs = torch.stack(ours), torch.stack(theirs)
    assert float((ours - theirs).abs().max()) <= 1e-5 * float(ours.abs().max())
    acc = lambda v: float((v.mean(0).argmax(1).numpy() == digits[1]).mean())  # noqa: E731
    assert acc(ours) == acc(theirs)


# -- Brian2 against the LIF simulation -----------------------------------------------------------

def _lif_counts(net: LIFNetwork, x: np.ndarray):
    with torch.no_grad():
        p = net.simulate(torch.from_numpy(x))
    return p.logits.numpy(), [np.rint(r.numpy() * net.num_steps) for r in p.rates[1:]]


def test_brian2_gives_the_lif_simulations_spike_counts(run, exported, digits):
    """Tolerance: the same forward-Euler difference equation with the same layer order within a
    step, but Brian2 in float64 and neurosim in float32, so a potential within rounding
    (~1e-7 relative) of the threshold may cross in one and not the other; the spike then moves by
    a step. At most 0.1% of the (sample, neuron) counts may differ, by at most one spike; the
    readout's mean potentials agree to 1e-4 and the accuracies within 0.5 points (measured on the
    whole digits test set: every count equal, logits within 5e-6)."""
    x, y = digits
    graph = read_graph(exported)
    chain = read_chain(graph)
    b2 = simulate(chain, settings(chain), x)
    net = load_lif_run(run)[0]
    logits, counts = _lif_counts(net, x)
    diff = np.abs(counts[0] - b2.counts["lif1"])
    assert counts[0].sum() > 1000  # the hidden layer spikes
    assert (diff > 0).mean() <= 1e-3 and diff.max() <= 1
    assert np.abs(logits - b2.scores).max() <= 1e-4
    acc = [100 * (s.argmax(1) == y).mean() for s in (logits, b2.scores)]
    assert abs(acc[0] - acc[1]) <= 0.5


@pytest.mark.slow
def test_cpp_standalone_gives_the_runtime_devices_spikes(exported, digits):
    chain = read_chain(read_graph(exported))
    s = settings(chain)
    x = digits[0][:20]
    runtime, standalone = simulate(chain, s, x), simulate(chain, s, x, device="cpp_standalone")
    assert np.array_equal(runtime.counts["lif1"], standalone.counts["lif1"])
    assert np.allclose(runtime.readout, standalone.readout, rtol=0, atol=1e-9)


# -- import into the LIF mode -------------------------------------------------------------------

def test_lif_import_evaluates_identically_and_trains_with_a_local_rule(run, exported, digits):
    net = load_lif_run(run)[0]
    cfg = lif_config_from_nir(exported, rule="dfa", lr=5e-3, dataset="digits")
    imported = lif_network_from_nir(exported, cfg)
    x = torch.from_numpy(digits[0])
    with torch.no_grad():
        assert torch.equal(net(x), imported(x))
    rule = build_lif_rule("dfa", imported, cfg, 0)
    opt = torch.optim.SGD(imported.parameters(), lr=cfg.training.lr)
    before = [W.detach().clone() for W in imported.weights]
    imported.train()
    target = torch.nn.functional.one_hot(torch.as_tensor(digits[1][:64]), 10).float()
    loss = rule.train_step(x[:64], target, opt)
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, imported.weights))


def test_a_non_leaky_net_exports_as_if_and_i_and_imports_back(digits):
    cfg = RunConfig.for_rule("dfa", neuron="lif", hidden=[12], beta=1.0, encoder="current", num_steps=10)
    net = LIFNetwork([64, 12, 10], cfg, seed=3).eval()
    graph = to_nir(net, 1e-3)
    assert [type(graph.nodes[n]).__name__ for n in ("lif1", "readout")] == ["IF", "I"]
    x = torch.from_numpy(digits[0][:50])
    with torch.no_grad():
        assert torch.equal(net(x), lif_network_from_nir(graph)(x))
    chain = read_chain(graph)
    assert np.array_equal(simulate(chain, settings(chain), x.numpy()).counts["lif1"], _lif_counts(net, x.numpy())[1][0])


# -- graphs written by another tool's conventions ------------------------------------------------

def _reference(x, W1, W2, beta, gain, theta, T):
    """NIR's LIF with its reset to zero at the spike, forward Euler, and an LI readout, in numpy."""
    v1, v2 = np.zeros((len(x), W1.shape[0])), np.zeros((len(x), W2.shape[0]))
    counts, vsum = np.zeros_like(v1), np.zeros_like(v2)
    for _ in range(T):
        v1 = beta * v1 + gain * (x @ W1.T)
        z = (v1 > theta).astype(float)
        v1 = np.where(z > 0, 0.0, v1)
        v2 = beta * v2 + gain * (z @ W2.T)
        counts += z
        vsum += v2
    return counts, vsum / T


def test_a_graph_built_with_nir_constructors_runs_in_brian2_and_the_lif_mode(digits, tmp_path):
    """snnTorch's conventions (dt 1e-4 s, tau = dt/(1 - beta)), NIR's reset to zero, no neurosim
    metadata, and an input gain r dt/tau = 2 that the LIF mode folds into the weights."""
    rng = np.random.default_rng(1)
    dt, beta, theta, T = 1e-4, 0.9, 1.0, 20
    W1, W2 = rng.normal(0, 0.3, (24, 64)).astype(np.float32), rng.normal(0, 0.5, (10, 24)).astype(np.float32)
    tau = dt / (1 - beta)

    def params(n):
        return dict(tau=np.full(n, tau), r=np.full(n, 2 * tau / dt), v_leak=np.zeros(n))

    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([64])}), "dense": nir.Linear(weight=W1),
        "spiking": nir.LIF(**params(24), v_threshold=np.full(24, theta), v_reset=np.zeros(24)),
        "dense2": nir.Linear(weight=W2), "li": nir.LI(**params(10)),
        "out": nir.Output(output_type={"output": np.array([10])})},
        edges=[("in", "dense"), ("dense", "spiking"), ("spiking", "dense2"), ("dense2", "li"), ("li", "out")])
    path = write_graph(graph, tmp_path / "foreign.nir")
    x = digits[0][:60]
    counts, scores = _reference(x.astype(np.float64), W1, W2, beta, 2.0, theta, T)
    assert counts.sum() > 100
    chain = read_chain(read_graph(path))
    b2 = simulate(chain, settings(chain, dt=dt, num_steps=T), x)
    assert np.array_equal(b2.counts["spiking"], counts) and np.allclose(b2.scores, scores, atol=1e-9)
    net = lif_network_from_nir(path, dt=dt, num_steps=T)
    logits, lif_counts = _lif_counts(net, x)
    assert np.array_equal(lif_counts[0], counts) and np.allclose(logits, scores, atol=1e-4)


def test_a_conv_graph_with_pooling_biases_and_cuba_neurons_runs_in_brian2(tmp_path):
    rng = np.random.default_rng(2)
    dt, T = 1e-3, 12
    conv = nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 0.8, (2, 1, 3, 3)), stride=1, padding=1,
                      dilation=1, groups=1, bias=np.array([0.05, -0.02]))
    k = 0.25  # dt / tau
    lif = nir.LIF(tau=np.full((2, 3, 3), dt / k), r=np.ones((2, 3, 3)), v_leak=np.zeros((2, 3, 3)),
                  v_threshold=np.full((2, 3, 3), 0.5), v_reset=np.zeros((2, 3, 3)))
    W, c = rng.normal(0, 1.0, (3, 18)), np.array([0.1, 0.0, -0.1])
    cuba = nir.CubaLIF(tau_syn=np.full(3, 2 * dt), tau_mem=np.full(3, 4 * dt), r=np.ones(3),
                       v_leak=np.zeros(3), v_threshold=np.full(3, 0.2), v_reset=np.zeros(3), w_in=np.full(3, 2.0))
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}), "conv": conv,
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "lif": lif, "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=W, bias=c), "cuba": cuba, "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "conv"), ("conv", "pool"), ("pool", "lif"), ("lif", "flat"), ("flat", "fc"),
               ("fc", "cuba"), ("cuba", "output")], metadata={"dt": dt, "num_steps": T})
    path = write_graph(graph, tmp_path / "conv.nir")
    x = rng.uniform(0, 1, (5, 36))
    # reference in torch: conv + sum pool, LIF (reset to 0), flatten, affine, CubaLIF (current first)
    I1 = torch.nn.functional.avg_pool2d(torch.nn.functional.conv2d(
        torch.from_numpy(x).reshape(5, 1, 6, 6), torch.from_numpy(conv.weight), torch.from_numpy(conv.bias),
        padding=1), 2) * 4
    I1 = I1.reshape(5, -1).numpy()
    v1, isyn, v2 = np.zeros((5, 18)), np.zeros((5, 3)), np.zeros((5, 3))
    counts1, counts2 = np.zeros((5, 18)), np.zeros((5, 3))
    for _ in range(T):
        v1 = (1 - k) * v1 + k * I1
        z1 = v1 > 0.5
        v1[z1] = 0.0
        isyn = 0.5 * isyn + 0.5 * 2.0 * (z1 @ W.T + c)
        v2 = 0.75 * v2 + 0.25 * isyn
        z2 = v2 > 0.2
        v2[z2] = 0.0
        counts1 += z1
        counts2 += z2
    assert counts1.sum() > 10 and counts2.sum() > 1
    chain = read_chain(read_graph(path))
    b2 = simulate(chain, settings(chain), x)
    assert np.array_equal(b2.counts["lif"], counts1) and np.array_equal(b2.scores, counts2)
    with pytest.raises(ValueError, match="'conv'"):
        lif_network_from_nir(path)


# -- the command line -----------------------------------------------------------------------------

def test_nir_run_reports_accuracy_and_compares_with_the_lif_mode(exported, tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert main(["nir-run", str(exported), "--dataset", "digits", "--test-samples", "40",
                 "--compare-lif", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert f"test accuracy: {figures['test_accuracy']:.2f}%" in printed
    assert figures["test_samples"] == 40 and figures["lif_test_accuracy"] == figures["test_accuracy"]
    assert figures["spike_counts_equal_fraction"] >= 0.999
    _refused(capsys, ["nir-run", str(exported), "--dataset", "digits", "--out", str(out)], "exists")


def test_connectivity_analyzes_a_nir_file(exported, capsys):
    assert main(["connectivity", str(exported), "--json", "--bootstrap", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    text = json.dumps(result)
    assert str(64 + HIDDEN + 10) in text and "NIR graph" in text


# -- bad files ------------------------------------------------------------------------------------

def _chain_nodes(lif_size=3, fc_rows=3):
    def lif(n):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 20.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    return {"input": nir.Input(input_type={"input": np.array([64])}),
            "fc": nir.Affine(weight=np.ones((fc_rows, 64)), bias=np.zeros(fc_rows)), "lif": lif(lif_size),
            "fc2": nir.Linear(weight=np.ones((10, lif_size))),
            "readout": nir.LI(tau=np.full(10, 2e-3), r=np.full(10, 20.0), v_leak=np.zeros(10)),
            "output": nir.Output(output_type={"output": np.array([10])})}


CHAIN = [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "readout"), ("readout", "output")]


def _bad_file(kind: str, folder):
    path = folder / f"{kind}.nir"
    if kind == "missing":
        return path, ["does not exist"]
    if kind == "corrupt":
        path.write_bytes(b"\x89HDF not really" + bytes(range(200)))
        return path, ["not a NIR file"]
    if kind == "mismatch":
        graph = nir.NIRGraph(nodes=_chain_nodes(lif_size=5), edges=CHAIN, type_check=False)
        write_graph(graph, path)
        return path, ["fc", "lif", "mismatch"]
    nodes = _chain_nodes()
    edges = CHAIN
    if kind == "cycle":
        nodes["rec"] = nir.Linear(weight=np.eye(3))
        edges = CHAIN + [("lif", "rec"), ("rec", "lif")]
    write_graph(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "num_steps": 5}), path)
    if kind == "cycle":
        return path, ["cycle", "'lif'", "lif -> rec -> lif"]
    import h5py  # unknown node type: rename the LIF's type in the file

    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif"].create_dataset("type", data="Quantum", dtype=h5py.string_dtype())
    return path, ["'lif'", "'Quantum'"]


@pytest.mark.parametrize("kind", ["missing", "corrupt", "mismatch", "cycle", "unknown"])
def test_bad_nir_files_get_one_error_line_naming_the_node_or_file(kind, tmp_path, capsys):
    path, needles = _bad_file(kind, tmp_path)
    for argv in (["nir-run", str(path), "--dataset", "digits"], ["connectivity", str(path)]):
        _refused(capsys, argv, *needles, *([str(path)] if kind != "missing" else [path.name]))


def test_unsupported_nodes_are_named(tmp_path, capsys):
    nodes = _chain_nodes()
    nodes["lif"] = nir.Threshold(threshold=np.ones(3))
    path = write_graph(nir.NIRGraph(nodes=nodes, edges=CHAIN, metadata={"dt": 1e-3, "num_steps": 5}),
                       tmp_path / "threshold.nir")
    _refused(capsys, ["nir-run", str(path), "--dataset", "digits"], "'lif'", "Threshold", "supported")
    _refused(capsys, ["nir-run", str(path.with_name("x.nir")), "--dataset", "digits"], "does not exist")
    graph = nir.NIRGraph(nodes=_chain_nodes(), edges=CHAIN)
    write_graph(graph, tmp_path / "nodt.nir")
    _refused(capsys, ["nir-run", str(tmp_path / "nodt.nir"), "--dataset", "digits"], "no dt", "--dt")


def test_a_run_folder_that_is_not_a_lif_run_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    _refused(capsys, ["export", str(tmp_path), "--out", str(tmp_path / "x.nir")], "--neuron lif")
    assert not (tmp_path / "x.nir").exists()
    with pytest.raises(FileNotFoundError):
        export_run(tmp_path / "nothing")
