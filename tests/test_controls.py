"""The frozen-hidden control: ``--freeze-hidden`` keeps every hidden tensor and plastic feedback
at its initial value while the readout learns; ``--control`` trains it beside the run."""

import json

import pytest
import torch

from neurosim.cli import main
from neurosim.config import RunConfig
from neurosim.datasets import load_dataset
from neurosim.io import read_csv_rows
from neurosim.rules import rules_with
from rate_models.rules import CONV_RULES
from rate_models.data import ResidentBatches, to_split
from rate_models.loop import train_seeds
from rate_models.train import build, readout_parameters, seed_rules
from tqdm.auto import tqdm

HIDDEN_STATIC = {"pepita-f0"}  # F = 0: its hidden layers never learn, frozen or not


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    n = 192  # three batches of 64: enough for every tensor to move
    return (to_split(data.x_train[:n], data.y_train[:n], 10, torch.device("cpu")),
            to_split(data.x_test[:64], data.y_test[:64], 10, torch.device("cpu")))


def _train(cfg: RunConfig, digits, tmp_path) -> tuple[dict, dict]:
    """The rule's state (network, feedback) before and after one epoch of the training loop."""
    train, test = digits
    cfg.validate()
    seeds = [cfg.training.seed + k for k in range(cfg.training.seeds)]
    sizes = [train.x.shape[1], *cfg.network.hidden, 10]
    if cfg.training.seed_batch:  # the initial state of each seed, built as a separate run builds it
        before = [build(cfg, sizes, s, "cpu")[1].state_dict() for s in seeds]
        before = {k: torch.stack([b[k] for b in before]) for k in before[0]}
    else:
        before = build(cfg, sizes, cfg.training.seed, "cpu")[1].state_dict()
    with tqdm(disable=True) as bar:
        _, nets = train_seeds(cfg, seeds, seed_rules(cfg, seeds, sizes, torch.device("cpu")),
                              ResidentBatches(train, test, seeds, cfg), tmp_path, False, bar)
    state = torch.load(tmp_path / "checkpoints" / next((tmp_path / "checkpoints").iterdir()).name,
                       weights_only=True)["rule"]
    return {k: v.clone() for k, v in before.items()}, state, nets[0]


def _readout_keys(cfg, digits) -> set[str]:
    sizes = [digits[0].x.shape[1], *cfg.network.hidden, 10]
    net, rule, _, _ = build(cfg, sizes, 0, "cpu")
    ids = {id(p) for p in readout_parameters(net)}
    return {name for name, p in rule.named_parameters() if id(p) in ids}


def _check(cfg: RunConfig, digits, tmp_path):
    readout = _readout_keys(cfg, digits)
    before, after, _ = _train(RunConfig(**{**cfg.to_dict(), "freeze_hidden": True}), digits,
                              tmp_path / "frozen")
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and set(moved) <= readout, f"frozen run changed {sorted(set(moved) - readout)}"
    assert readout <= set(moved), f"the readout {sorted(readout - set(moved))} did not learn"
    if cfg.rule in HIDDEN_STATIC:
        return
    before, after, _ = _train(cfg, digits, tmp_path / "free")
    hidden = [k for k in before if k not in readout and k.startswith("net.") and "weight" in k]
    assert hidden and all(not torch.equal(before[k], after[k]) for k in hidden), \
        f"without --freeze-hidden {cfg.rule}'s hidden weights must learn"


@pytest.mark.parametrize("rule", rules_with("rate"))
def test_freeze_hidden_fc(rule, digits, tmp_path):
    extra = {"weight-mirror": {"pre_mirror_epochs": 1}, "pepita-wm": {"modulation_sign": -1.0}}.get(rule, {})
    _check(RunConfig(rule=rule, hidden=[24, 16], bias=True, lr=0.01, epochs=1, **extra), digits, tmp_path)


@pytest.mark.parametrize("rule", rules_with("lif"))
def test_freeze_hidden_lif(rule, digits, tmp_path):
    _check(RunConfig(rule=rule, neuron="lif", hidden=[24], num_steps=4, lr=0.05, epochs=1), digits, tmp_path)


@pytest.mark.parametrize("rule", ["dfa", "pepita", "pfa", "kolen-pollack"])
def test_freeze_hidden_conv(rule, digits, tmp_path):
    assert rule in CONV_RULES
    _check(RunConfig(rule=rule, arch="pepita-conv", lr=0.01, epochs=1, bias=True, pfa_expansion=2.0),
           digits, tmp_path)


def test_freeze_hidden_lif_conv(digits, tmp_path):
    _check(RunConfig(rule="dfa", neuron="lif", arch="pepita-conv", num_steps=3, lr=0.05, epochs=1),
           digits, tmp_path)


@pytest.mark.parametrize("rule", ["pfa", "pepita-wm"])
def test_freeze_hidden_seed_batch(rule, digits, tmp_path):
    _check(RunConfig(rule=rule, hidden=[16], seeds=2, seed_batch=True, lr=0.01, epochs=1,
                     modulation_sign=-1.0 if rule == "pepita-wm" else 1.0), digits, tmp_path)


def test_control_writes_gain_curve_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--rule", "dfa", "--dataset", "digits", "--epochs", "2", "--arch", "32",
            "--lr", "0.01", "--quiet", "--out", str(out)]
    assert main(args + ["--control"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    control = json.loads((out / "control" / "summary.json").read_text())
    assert control["freeze_hidden"] and not summary["freeze_hidden"]
    assert summary["control_test_accuracy"] == control["test_accuracy"]
    assert summary["hidden_gain"] == pytest.approx(summary["test_accuracy"] - control["test_accuracy"])
    assert "hidden gain" in printed
    # the control alone is --freeze-hidden from the same seed: the very same numbers
    assert main(args[:-1] + [str(tmp_path / "alone"), "--freeze-hidden"]) == 0
    alone = read_csv_rows(tmp_path / "alone" / "metrics.csv")
    assert [r["test_accuracy"] for r in alone] == [r["test_accuracy"] for r in
                                                   read_csv_rows(out / "control" / "metrics.csv")]
    assert (out / "learning_curves.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out
    assert f"control {control['test_accuracy']:.2f}" in table and f"{summary['hidden_gain']:+.2f}" in table


@pytest.mark.parametrize("flags, message", [
    (["--control", "--freeze-hidden"], "drop one of the two flags"),
    (["--control", "--rule", "pepita-f0"], "pepita-f0"),
    (["--control", "--rule", "bp", "--arch", "none"], "has none"),
    (["--freeze-hidden", "--rule", "bp", "--arch", "none"], "has none"),
])
def test_nonsensical_control_options_are_refused_before_anything_runs(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("neuron, rule, decay", [("rate", "fa", 0.0), ("rate", "pfa", 1e-3), ("lif", "pepita", 0.0)])
def test_hidden_lr_scale_multiplies_the_hidden_step_and_not_the_readout_s(digits, neuron, rule, decay):
    """--hidden-lr-scale k: one SGD step (momentum's first step is lr * grad) moves every hidden
    tensor k times as far as at k = 1, and the readout exactly as far; weight decay stays on."""
    x, target = digits[0].x[:64], digits[0].target[:64]
    steps = {}
    for k in (1.0, 10.0):
        cfg = RunConfig.for_rule(rule, neuron=neuron, hidden=[16], dropout=0.0, hidden_lr_scale=k,
                                 weight_decay=decay)
        cfg.validate()
        net, r, opt, _ = build(cfg, [64, 16, 10], 0, "cpu")
        net.double(), r.double()
        before = {n: p.detach().clone() for n, p in r.named_parameters()}
        r.train_step(x.double(), target.double(), opt)
        steps[k] = {n: p.detach() - before[n] for n, p in r.named_parameters() if p.requires_grad}
    readout = _readout_keys(RunConfig.for_rule(rule, neuron=neuron, hidden=[16]), digits)
    moved = [name for name, step in steps[1.0].items() if step.abs().sum()]
    assert readout <= set(moved) and set(moved) - readout, f"{rule}: readout and hidden must both move"
    for name in moved:
        factor = 1.0 if name in readout else 10.0
        assert torch.allclose(steps[10.0][name], factor * steps[1.0][name], rtol=1e-6, atol=1e-12), name
