"""K seeds trained as one batched model equal K separate runs (``rate_models.seed_batch``).

Each rule trains 2 seeds for 2 epochs of 3 batches on small random float64 data, with dropout,
biases, momentum, weight decay and an lr milestone, once as a seed batch and once seed by seed;
every stacked tensor must equal the separate run's to ~1e-10. The command line's ``--seed-batch``
must write the same per-seed rows as sequential seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurosim.cli import main
from neurosim.config import RunConfig
from neurosim.io import read_csv_rows
from rate_models.data import epoch_batches
from rate_models.rules.gradient import Backprop
from rate_models.seed_batch import SEED_BATCH_LIF_RULES, SEED_BATCH_RULES, check_seed_batch
from rate_models.train import seed_rules

SIZES = [7, 6, 5, 3]
SEEDS = [3, 4]
N, BATCH, EPOCHS = 24, 8, 2
RULE_OPTIONS = {  # per rule: settings that make its update nontrivial or valid
    "pepita": {"f_scale": 2.0}, "pepita-random": {"f_scale": 2.0}, "pepita-hebbian": {"f_scale": 2.0},
    "pepita-time-local": {"f_scale": 2.0}, "pepita-afa": {"f_scale": 2.0},
    "pepita-wm": {"f_scale": 2.0, "modulation_sign": -1.0, "wm_weight_decay": 0.01},
    "weight-mirror": {"pre_mirror_epochs": 1}, "pfa": {"pfa_expansion": 2.0},
    "pfa-o": {"pfa_expansion": 2.0},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(rule: str, **overrides) -> RunConfig:
    values = dict(rule=rule, hidden=SIZES[1:-1], activation="tanh", bias=True, dropout=0.3,
                  batch_size=BATCH, epochs=EPOCHS, lr=0.05, momentum=0.9, weight_decay=1e-3,
                  lr_milestones=[1], lr_gamma=0.5, seed=SEEDS[0], seeds=len(SEEDS))
    values.update(RULE_OPTIONS.get(rule, {}))
    values.update(overrides)
    cfg = RunConfig(**values)
    cfg.validate()
    return cfg


def _data(intensities: bool = False):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random(size=(N, SIZES[0])) if intensities else rng.normal(size=(N, SIZES[0])))
    y = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, SIZES[-1], N)), SIZES[-1]).double()
    return x, y


def _train(cfg: RunConfig, seeds: list[int], x, y):
    """The training loop of ``rate_models.loop`` reduced to its updates, in float64."""
    rule, opt, sched, _ = seed_rules(cfg, seeds, SIZES, torch.device("cpu"))
    rule.double()
    if cfg.mirror.pre_mirror_epochs:
        rule.pre_train(cfg.mirror.pre_mirror_epochs * N // BATCH, BATCH)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    losses = []
    for _ in range(cfg.training.epochs):
        for idx in epoch_batches(N, BATCH, gens if cfg.training.seed_batch else gens[0], "cpu"):
            losses.append(rule.train_step(x[idx], y[idx], opt))
        sched.step()
    return rule, torch.stack(losses)


@pytest.mark.parametrize("rule", SEED_BATCH_RULES)
def test_seed_batch_equals_separate_runs(rule):
    x, y = _data()
    batched, batched_losses = _train(_cfg(rule, seed_batch=True), SEEDS, x, y)
    state = batched.state_dict()
    moved = 0
    for k, seed in enumerate(SEEDS):
        single, losses = _train(_cfg(rule, seed=seed, seeds=1), [seed], x, y)
        torch.testing.assert_close(batched_losses[:, k], losses, rtol=1e-10, atol=1e-12)
        for name, tensor in single.state_dict().items():
            assert state[name].shape == (len(SEEDS), *tensor.shape), name
            torch.testing.assert_close(state[name][k], tensor, rtol=1e-10, atol=1e-12, msg=name)
        initial = dict(seed_rules(_cfg(rule, seed=seed, seeds=1), [seed], SIZES, "cpu")[0].state_dict())
        moved += sum(not torch.allclose(t, initial[n].double()) for n, t in single.state_dict().items())
    assert moved > 0  # training changed something: the comparison is not trivial
    # the seeds differ: nothing is shared between the slices
    assert not torch.allclose(state["net.weights.0"][0], state["net.weights.0"][1])


@pytest.mark.parametrize("rule", SEED_BATCH_LIF_RULES)
def test_lif_seed_batch_equals_separate_runs(rule):
    """LIF networks (rate encoder, dropout on spikes): stacked seeds spike as separate runs do."""
    x, y = _data(intensities=True)
    lif = dict(neuron="lif", bias=False, activation="relu", num_steps=6, f_scale=1.0)
    batched, batched_losses = _train(_cfg(rule, seed_batch=True, **lif), SEEDS, x, y)
    state = batched.state_dict()
    for k, seed in enumerate(SEEDS):
        single, losses = _train(_cfg(rule, seed=seed, seeds=1, **lif), [seed], x, y)
        torch.testing.assert_close(batched_losses[:, k], losses, rtol=1e-10, atol=1e-12)
        for name, tensor in single.state_dict().items():
            torch.testing.assert_close(state[name][k], tensor, rtol=1e-10, atol=1e-12, msg=name)
    assert not torch.allclose(state["net.weights.0"][0], state["net.weights.0"][1])
    assert batched.net.weights[0].grad.abs().sum() > 0  # the hidden layer learned


def test_seed_batch_with_adam_and_no_dropout():
    x, y = _data()
    batched, _ = _train(_cfg("bp", seed_batch=True, optimizer="adam", dropout=0.0, lr=0.01), SEEDS, x, y)
    for k, seed in enumerate(SEEDS):
        single, _ = _train(_cfg("bp", seed=seed, seeds=1, optimizer="adam", dropout=0.0, lr=0.01), [seed], x, y)
        for name, tensor in single.state_dict().items():
            torch.testing.assert_close(batched.state_dict()[name][k], tensor, rtol=1e-10, atol=1e-12)


def test_rule_outside_the_batched_set_is_named():
    class Custom(Backprop):
        pass

    rule, *_ = seed_rules(_cfg("bp", seeds=1), [0], SIZES, "cpu")
    custom = Custom(rule.net, rule.cfg, 0)
    with pytest.raises(ValueError, match=r"rule 'bp' on a FCNetwork cannot be batched over seeds.*--seed-batch"):
        check_seed_batch(custom)


def _run(tmp_path, name, *extra, code=0):
    out = tmp_path / name
    args = ["train", "--rule", "pepita", "--dataset", "digits", "--epochs", "2", "--arch", "32",
            "--seeds", "2", "--seed", "5", "--lr", "0.05", "--dropout", "0.2", "--out", str(out), "--quiet"]
    assert main(args + list(extra)) == code
    return out


def _same_rows(a, b):
    assert [(r["seed"], r["epoch"]) for r in a] == [(r["seed"], r["epoch"]) for r in b]
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for key in ra:
            if key in ("seconds", "samples_per_second"):
                continue
            if ra[key] == rb[key]:
                continue
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-4, abs=1e-4), key


def test_cli_seed_batch_writes_the_same_run_folder(tmp_path, capsys):
    seq = _run(tmp_path, "sequential")
    bat = _run(tmp_path, "batched", "--seed-batch")
    rows_seq, rows_bat = read_csv_rows(seq / "metrics.csv"), read_csv_rows(bat / "metrics.csv")
    assert [(r["seed"], r["epoch"]) for r in rows_bat] == [(s, e) for s in ("5", "6") for e in ("1", "2")]
    _same_rows(rows_bat, rows_seq)
    s_seq = json.loads((seq / "summary.json").read_text())
    s_bat = json.loads((bat / "summary.json").read_text())
    assert s_bat["seeds"] == 2
    assert s_bat["test_accuracy"] == pytest.approx(s_seq["test_accuracy"], abs=0.2)
    assert json.loads((bat / "config.json").read_text())["training"]["seed_batch"] is True
    assert (bat / "checkpoints" / "seeds5-6.pt").exists()


def test_cli_seed_batch_resumes(tmp_path, monkeypatch):
    straight = _run(tmp_path, "straight", "--seed-batch")
    import rate_models.loop as loop_module

    real_evaluate, calls = loop_module.evaluate, {"n": 0}

    def crash_in_epoch_2(*a, **k):  # 2 seeds × 2 evaluations per epoch
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("simulated interruption")
        return real_evaluate(*a, **k)

    monkeypatch.setattr(loop_module, "evaluate", crash_in_epoch_2)
    _run(tmp_path, "resumed", "--seed-batch", code=130)  # main reports the interruption
    monkeypatch.setattr(loop_module, "evaluate", real_evaluate)
    resumed = _run(tmp_path, "resumed", "--seed-batch", "--resume")
    a = torch.load(straight / "checkpoints" / "seeds5-6.pt", weights_only=True)["rule"]
    b = torch.load(resumed / "checkpoints" / "seeds5-6.pt", weights_only=True)["rule"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert read_csv_rows(straight / "metrics.csv")[-1]["test_accuracy"] == \
        read_csv_rows(resumed / "metrics.csv")[-1]["test_accuracy"]
