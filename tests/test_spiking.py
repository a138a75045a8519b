"""The spiking mode (``rate_models/spiking``): each rule's update against a hand computation, the
long-simulation limit against the rate rule, memory that does not grow with the number of steps,
and ``neurosim train --neuron lif`` end to end."""

from __future__ import annotations

import json
import numpy as np
import pytest
import torch

from neurosim.cli import main
from neurosim.config import RunConfig
from neurosim.metrics import angle_deg
from rate_models.architectures import FCNetwork
from rate_models.rules import build_rule
from rate_models.spiking import LIFNetwork, build_lif_rule
from rate_models.spiking.updates import pepita_updates, pfa_updates
from rate_models.spiking.lif import Presentation
from rate_models.spiking.memory import LiveTensorBytes


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def lif(rule: str, sizes: list[int], **kw):
    cfg = RunConfig(rule=rule, neuron="lif", hidden=sizes[1:-1], dropout=0.0, **kw)
    cfg.validate()
    net = LIFNetwork(sizes, cfg, seed=0).double()
    return net, build_lif_rule(rule, net, cfg, 0).double(), cfg


def batch(n_in: int, n_out: int, n: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=g, dtype=torch.float64)
    y = torch.eye(n_out, dtype=torch.float64)[torch.randint(0, n_out, (n,), generator=g)]
    return x, y


def softmax(a):
    z = np.exp(a - a.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@pytest.mark.parametrize("rule", ["dfa", "sdfa", "drtp"])
def test_three_factor_update_of_two_steps_by_hand(rule):
    """Two steps of the LIF dynamics (leak, reset by subtraction, traces) and the three-factor
    window update (the window's signal, projected, × the mean rate slope ``(1 + k theta)/theta`` ×
    fast-sigmoid × the mean presynaptic trace) written out in numpy."""
    net, r, cfg = lif(rule, [6, 7, 3], num_steps=2, encoder="current", beta=0.75, threshold=0.5,
                      surrogate_slope=5.0)
    x, y = batch(6, 3)
    r.compute_grads(x, y, [None])
    W1, W2 = (w.detach().numpy() for w in net.weights)
    B = r.feedbacks()[0].numpy()
    X, Y, N, b, th, k = x.numpy(), y.numpy(), len(x), 0.75, 0.5, 5.0  # exact in float32 (snnTorch keeps beta in float32)
    U1 = X @ W1.T  # step 1: potentials start at 0
    S1 = (U1 > th).astype(float)
    UL = S1 @ W2.T
    U1b = b * U1 + X @ W1.T - th * S1  # step 2: leak, input, reset by the step-1 spikes
    S1b = (U1b > th).astype(float)
    ULb = b * UL + S1b @ W2.T
    pre = (X + (b * X + X)) / 2  # mean input trace
    hid_trace = (S1 + (b * S1 + S1b)) / 2
    slope = lambda U: (1.0 + k * th) / th / (1.0 + k * np.abs(U - th)) ** 2
    logits = (UL + ULb) / 2
    e = softmax(logits) - Y  # the window's error, delivered once the readout has integrated
    m = {"dfa": e / N, "sdfa": np.sign(e) / N, "drtp": -Y / N}[rule]
    dW1 = ((m @ B.T) * (slope(U1) + slope(U1b)) / 2).T @ pre
    dW2 = (e / N).T @ hid_trace
    np.testing.assert_allclose(net.weights[0].grad.numpy(), dW1, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.weights[1].grad.numpy(), dW2, rtol=1e-10, atol=1e-14)
    assert np.abs(dW1).sum() > 0  # the case exercises a nonzero hidden update


def test_pepita_update_from_two_presentations_by_hand():
    """D&K eqs. 3-4 with rates: (r1 - r2)/N ⊗ r2_pre for hidden layers, e/N ⊗ mean trace output."""
    g = torch.Generator().manual_seed(0)
    rates1 = [torch.rand(5, n, generator=g, dtype=torch.float64) for n in (4, 6)]
    rates2 = [torch.rand(5, n, generator=g, dtype=torch.float64) for n in (4, 6)]
    traces2 = [torch.rand(5, n, generator=g, dtype=torch.float64) for n in (4, 6)]
    e = torch.rand(5, 3, generator=g, dtype=torch.float64)
    clean = Presentation(torch.zeros(5, 3), rates1, None)
    modulated = Presentation(torch.zeros(5, 3), rates2, traces2[1])
    dW1, dW2 = pepita_updates(clean, modulated, e)
    n = 5
    np.testing.assert_allclose(dW1.numpy(), ((rates1[1] - rates2[1]).numpy() / n).T @ rates2[0].numpy())
    np.testing.assert_allclose(dW2.numpy(), (e.numpy() / n).T @ traces2[1].numpy())


def test_pepita_presentations_share_their_input_draws():
    """With F = 0 the modulated presentation repeats the clean one spike for spike (rate encoder),
    so every hidden update is exactly zero and only the output layer learns."""
    net, r, _ = lif("pepita", [8, 10, 3], num_steps=20)
    r.F.zero_()
    x, y = batch(8, 3)
    r.compute_grads(x, y, [None])
    assert float(net.weights[0].grad.abs().max()) == 0.0
    assert float(net.weights[1].grad.abs().max()) > 0.0


def test_pfa_updates_by_hand():
    """PFA's window updates through two hidden layers: ebar = delta B^T, delta = (ebar R^T) ⊙ phi'."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64) - 0.5
    sizes, n_bar, N = [5, 4, 3, 2], [30, 20], 6
    Bs = [r(n_bar[0], sizes[2]), r(n_bar[1], sizes[3])]
    Rs = [r(sizes[1], n_bar[0]), r(sizes[2], n_bar[1])]
    slopes = [r(N, sizes[1]), r(N, sizes[2])]
    traces = [r(N, n) for n in sizes[:3]]
    m = r(N, sizes[3])
    dWs, dRs = pfa_updates(m, Bs, Rs, slopes, traces)
    ebar2 = m @ Bs[1].T
    d2 = (ebar2 @ Rs[1].T) * slopes[1]
    ebar1 = d2 @ Bs[0].T
    d1 = (ebar1 @ Rs[0].T) * slopes[0]
    for got, want in [(dWs[1], d2.T @ traces[1]), (dWs[0], d1.T @ traces[0]),
                      (dRs[1], traces[2].T @ ebar2), (dRs[0], traces[1].T @ ebar1)]:
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("rule", ["dfa", "drtp", "pfa", "pepita"])
def test_long_simulation_points_like_the_rate_rule(rule):
    """A constant-current input presented for 400 steps: the LIF network is at steady state, where
    a neuron's rate is close to relu(I)/theta and the readout potential to W_L r / (1 - beta). The
    spiking update of W_1 is compared with the rate rule's on that rate network (same weights and
    feedback). Measured: 9-17 degrees for these rules (the surrogate derivative is not relu', the LIF
    rate curve not exactly linear); the bound is 25 degrees. A wrong sign or factor gives ≥ 60."""
    sizes, beta = [30, 40, 5], 0.95
    net, r, cfg = lif(rule, sizes, num_steps=400, beta=beta, encoder="current", input_baseline=0.0)
    x, y = batch(30, 5, n=64)
    net.eval()
    r.compute_grads(x, y, [None])
    rate_net = FCNetwork(sizes, dropout=0.0, seed=0).double()
    with torch.no_grad():
        rate_net.weights[0].copy_(net.weights[0] / cfg.lif.threshold)
        rate_net.weights[1].copy_(net.weights[1] / (1 - beta))
    rate_rule = build_rule(rule, rate_net, cfg, 0).double()
    rate_net.eval()
    rate_rule.compute_grads(x, y, [None])
    angle = angle_deg(net.weights[0].grad.numpy(), rate_net.weights[0].grad.numpy())
    assert angle < 25.0, f"{rule}: spiking W_1 update {angle:.1f}° from the rate rule's"


@pytest.mark.parametrize("rule", ["dfa", "drtp", "pepita", "pfa"])
def test_local_rule_memory_does_not_grow_with_steps(rule):
    """Peak live tensor memory of one training step at T = 10 and T = 200 steps is the same for
    the local rules, while BPTT saves tensors for its backward pass at every step."""
    x, y = batch(50, 10, n=32)

    def peak(name, steps):
        net, r, _ = lif(name, [50, 80, 10], num_steps=steps)
        opt = torch.optim.SGD(list(net.parameters()) + r.feedback_parameters(), lr=0.01)
        r.train_step(x, y, opt)  # optimizer state exists before measuring
        with LiveTensorBytes() as mem:
            r.train_step(x, y, opt)
        return mem.peak

    short, long = peak(rule, 10), peak(rule, 200)
    assert long <= short * 1.05, f"{rule}: {short} bytes at T=10, {long} at T=200"

    assert peak("bp", 200) > 5 * peak("bp", 10)  # the tracker sees BPTT's stored history


def test_bad_lif_configurations_are_clear_errors():
    for kw, match in [({"rule": "fa"}, "--neuron lif trains the rules"),
                      ({"beta": 1.5}, "beta"), ({"encoder": "poisson"}, "encoder"),
                      ({"num_steps": 0}, "num_steps"), ({"arch": "resnet20"}, "fully connected"),
                      ({"bias": True}, "biases")]:
        cfg = RunConfig(**{"rule": "dfa", "neuron": "lif", **kw})
        with pytest.raises(ValueError, match=match):
            cfg.validate()


def test_cli_trains_a_lif_network_on_digits(tmp_path, capsys):
    """``neurosim train --neuron lif`` writes the rate mode's run folder plus spike statistics,
    and a DRTP-trained spiking network learns the digits well above chance."""
    out = tmp_path / "run"
    code = main(["train", "--rule", "drtp", "--neuron", "lif", "--dataset", "digits", "--arch", "128",
                 "--epochs", "2", "--lr", "0.01", "--batch-size", "32", "--num-steps", "15",
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    for name in ("config.json", "metrics.csv", "summary.json", "learning_curves.png", "alignment.png",
                 "output_weights.png", "checkpoints/seed0.pt"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["network"]["neuron"] == "lif" and config["lif"]["num_steps"] == 15
    assert summary["arch"] == "64-128-10 LIF"  # report tables keep LIF runs apart from rate runs
    stats = summary["spike_statistics"]
    assert 0 < stats["rate_l1_hz"] < 1000 and 0 <= stats["silent_fraction_l1"] < 1
    assert summary["test_accuracy"] > 70.0
    assert "bp_update_angle_l1_deg" in (out / "metrics.csv").read_text()


def test_lif_resume_is_bit_identical(tmp_path):
    """An interrupted spiking run resumed from its checkpoint ends with the same weights."""
    args = ["train", "--rule", "pepita", "--neuron", "lif", "--dataset", "digits", "--arch", "64",
            "--lr", "0.01", "--batch-size", "64", "--num-steps", "8", "--quiet"]
    assert main(args + ["--epochs", "2", "--out", str(tmp_path / "full")]) == 0
    assert main(args + ["--epochs", "1", "--out", str(tmp_path / "cut")]) == 0
    cfg = json.loads((tmp_path / "cut" / "config.json").read_text())
    cfg["training"]["epochs"] = 2
    (tmp_path / "cut" / "config.json").write_text(json.dumps(cfg))
    assert main(args + ["--epochs", "2", "--out", str(tmp_path / "cut"), "--resume"]) == 0
    full = torch.load(tmp_path / "full" / "checkpoints" / "seed0.pt", weights_only=True)["rule"]
    cut = torch.load(tmp_path / "cut" / "checkpoints" / "seed0.pt", weights_only=True)["rule"]
    for k in full:
        assert torch.equal(full[k], cut[k]), k


def test_conv_three_factor_update_equals_autograd_through_the_pool():
    """One step of DFA on ``pepita-conv`` (conv 5×5, 2×2 max pool, LIF, readout): the kernel update
    routed through the pool positions (``accumulate_conv``) equals autograd's gradient of
    ``sum(post ⊙ maxpool(K * x))`` with the postsynaptic factor held fixed."""
    net, r, cfg = lif("dfa", [64, 1, 10], num_steps=1, encoder="current", arch="pepita-conv",
                      surrogate_slope=5.0)
    x, y = batch(64, 10, n=6)
    r.compute_grads(x, y, [None])
    K = net.weights[0].detach().clone().requires_grad_(True)
    img = x.reshape(-1, 1, 8, 8)
    U = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(img, K), 2)
    S = (U > cfg.lif.threshold).double()
    e = torch.softmax(S.flatten(1) @ net.weights[1].detach().T, -1) - y
    th = cfg.lif.threshold
    psi = (1.0 + 5.0 * th) / th / (1.0 + 5.0 * (U.detach() - th).abs()) ** 2
    post = ((e / len(x)) @ r.feedbacks()[0].T).reshape(U.shape) * psi
    (post * U).sum().backward()
    torch.testing.assert_close(net.weights[0].grad, K.grad)
    assert K.grad.abs().sum() > 0


def test_lif_conv_archs_are_the_rate_backends():
    from neurosim.config import LIF_CONV_ARCHS
    from rate_models.architectures import PLAIN_CONV_SPECS

    assert set(LIF_CONV_ARCHS) == set(PLAIN_CONV_SPECS)
    with pytest.raises(ValueError, match="no convolutional LIF form"):
        lif("pepita", [64, 1, 10], arch="pepita-conv")


@pytest.mark.parametrize("rule", ["drtp", "bp"])
def test_cli_trains_a_convolutional_lif_network(tmp_path, rule):
    out = tmp_path / rule
    assert main(["train", "--rule", rule, "--neuron", "lif", "--dataset", "digits", "--arch", "pepita-conv",
                 "--epochs", "1", "--lr", "0.01", "--batch-size", "32", "--num-steps", "8",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == "pepita-conv LIF" and summary["test_accuracy"] > 50.0


def test_encoders():
    """rate: Bernoulli with p = intensity per step; latency: one spike, brighter earlier, none for
    dark pixels; current: the intensity itself at every step."""
    x = torch.tensor([[0.0, 0.2, 0.5, 1.0]], dtype=torch.float64).repeat(4000, 1)
    for encoder in ("rate", "latency", "current"):
        net, _, _ = lif("dfa", [4, 3, 2], num_steps=10, encoder=encoder)
        spikes = []
        net.simulate(x, on_step=lambda step: spikes.append(step.spikes[0]))
        s = torch.stack(spikes)  # (T, N, inputs)
        if encoder == "rate":
            torch.testing.assert_close(s.mean((0, 1)), x[0], atol=0.01, rtol=0)
        elif encoder == "latency":
            assert s.sum(0)[0].tolist() == [0.0, 1.0, 1.0, 1.0]
            first = s[:, 0].argmax(0)
            assert first[3] < first[2] < first[1]
        else:
            assert torch.equal(s, x.expand(10, -1, -1))


def test_pepita_baseline_removes_the_rectification_bias():
    """Dark pixels with a baseline leave room for x + F e below them: the modulated presentation
    then carries no systematic excess of input spikes (without it, the clip at 0 passes only the
    positive half of F e)."""
    x = torch.zeros(2000, 20, dtype=torch.float64)
    x[:, :10] = 0.6  # half the pixels dark
    g = torch.Generator().manual_seed(0)
    modulation = 0.05 * torch.randn(2000, 20, generator=g, dtype=torch.float64)
    excess = {}
    for b in (0.0, 0.1):
        net, _, _ = lif("pepita", [20, 5, 3], num_steps=50, input_baseline=b)
        state = net.noise.get_state()
        clean = net.simulate(x).rates[0]
        net.noise.set_state(state)
        excess[b] = float((net.simulate(x + modulation).rates[0] - clean).mean())
    assert excess[0.0] > 0.005 and abs(excess[0.1]) < 0.001, excess


@pytest.mark.parametrize("rule", ["dfa", "sdfa", "drtp", "pepita", "pfa", "bp"])
def test_lif_hidden_learning_moves_hidden_weights_and_the_control_freezes_them(rule):
    """One training step with the optimizer ``neurosim train`` builds (``rate_models.train.build``):
    every hidden weight (and PFA's R) moves; with ``--freeze-hidden`` (the control) they stay
    bit-identical while the readout still learns. Fails if a rule's hidden update is dropped."""
    from rate_models.train import build

    x, y = batch(20, 4, n=32)
    for freeze in (False, True):
        cfg = RunConfig(rule=rule, neuron="lif", hidden=[12], num_steps=10, lr=0.01, dropout=0.0,
                        freeze_hidden=freeze)
        cfg.validate()
        net, r, opt, _ = build(cfg, [20, 12, 4], 0, torch.device("cpu"))
        net.double(), r.double()
        hidden = list(net.weights[:-1]) + r.feedback_parameters()
        before = [p.detach().clone() for p in hidden]
        readout = net.weights[-1].detach().clone()
        r.train_step(x, y, opt)
        moved = [not torch.equal(p, b) for p, b in zip(hidden, before)]
        assert not torch.equal(net.weights[-1], readout), f"{rule}: the readout did not learn"
        if freeze:
            assert not any(moved), f"{rule}: a hidden tensor moved under --freeze-hidden"
        else:
            assert all(moved), f"{rule}: a hidden tensor did not move ({moved})"


# Per-rule changes for the 16-hidden task, with the reason: PEPITA's hidden update has no
# phi' to scale it up beside the readout's (rate_models/spiking/rules.py, SpikingPepita), so its
# hidden layers learn at 10x the readout's rate, with a larger F (f_scale 0.2) whose mismatch
# stands above the spike counts' resolution (measured, seed 0: 72.8% vs the control's 55.6%;
# at the test's plain settings, f_scale 0.05 and one rate: 55.6% vs 56.1%).
CHANGES_16_HIDDEN = {"pepita": {"f_scale": 0.2, "hidden_lr_scale": 10.0}}


def _small_task_accuracy(rule: str, freeze: bool) -> float:
    """digits through 16 LIF hidden units (10 steps, lr 0.005, 8 epochs, seed 0; plus the rule's
    ``CHANGES_16_HIDDEN``): few enough that random hidden features are clearly worse than learned
    ones."""
    from neurosim.datasets import load_dataset
    from rate_models.data import epoch_batches, to_split
    from rate_models.evaluation import evaluate
    from rate_models.train import build

    cfg = RunConfig(rule=rule, neuron="lif", hidden=[16], num_steps=10, lr=0.005, epochs=8,
                    lr_milestones=[], freeze_hidden=freeze, **CHANGES_16_HIDDEN.get(rule, {}))
    cfg.validate()
    data = load_dataset("digits")
    train = to_split(data.x_train, data.y_train, data.n_classes, torch.device("cpu"))
    test = to_split(data.x_test, data.y_test, data.n_classes, torch.device("cpu"))
    net, r, opt, _ = build(cfg, [64, 16, 10], 0, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(cfg.training.epochs):
        for idx in epoch_batches(len(train.x), cfg.training.batch_size, gen, torch.device("cpu")):
            r.train_step(train.x[idx], train.target[idx], opt)
    return evaluate(net, test)[1]


@pytest.mark.parametrize("rule", ["dfa", "pepita"])
def test_lif_rule_beats_its_frozen_hidden_control_on_a_small_task(rule):
    """With 16 hidden units random features reach ~63% on digits; DFA's learned ones ~79%
    (measured, seed 0). The rule must beat its frozen-hidden control by at least 5 points."""
    learned, control = _small_task_accuracy(rule, False), _small_task_accuracy(rule, True)
    assert learned > control + 5.0, f"{rule}: {learned:.1f}% vs frozen-hidden control {control:.1f}%"
