"""Every rule learns with its own defaults (``neurosim.rules``): what ``neurosim train --rule R``
runs with no preset and no ``--lr``.

The floors only guard against defaults that diverge or stall (chance is 10%); these runs do not
show that a hidden layer learns (that is the frozen-hidden control's job, ``--control``, tested in
``test_controls.py`` and ``test_spiking.py``).
"""

import pytest

from neurosim.config import SPIKING_DIGITS_HIDDEN, RunConfig
from neurosim.rules import RULES, rules_with
from rate_models.train import train_run

RATE_FLOOR = 80.0  # % test accuracy on digits after 3 epochs, fully connected 1024, rate neurons
LIF_FLOOR = 50.0  # % after LIF_EPOCHS epochs, LIF neurons (25 steps), 32 hidden (the digits default)
LIF_EPOCHS = 30  # at the LIF default rates (2e-4 for DFA, DRTP, sDFA) 32 neurons learn digits slowly


@pytest.mark.parametrize("rule", rules_with("rate"))
def test_every_rate_rule_learns_digits_with_its_defaults(rule, tmp_path):
    cfg = RunConfig.for_rule(rule, dataset="digits", epochs=3)
    assert cfg.training.lr == RULES[rule].lr
    summary = train_run(cfg, tmp_path / rule, progress=False)
    assert summary["test_accuracy"] >= RATE_FLOOR, summary["test_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize("rule", rules_with("lif"))
def test_every_lif_rule_learns_digits_with_its_defaults(rule, tmp_path):
    cfg = RunConfig.for_rule(rule, neuron="lif", dataset="digits", epochs=LIF_EPOCHS)
    assert cfg.training.lr == RULES[rule].lif_lr and cfg.network.activation == "relu"
    assert cfg.network.hidden == [SPIKING_DIGITS_HIDDEN]
    summary = train_run(cfg, tmp_path / rule, progress=False)
    assert summary["test_accuracy"] >= LIF_FLOOR, summary["test_accuracy"]


def test_the_cli_applies_rule_defaults_below_presets_and_flags():
    from neurosim.cli import build_parser, resolve_config

    def resolved(*argv):
        return resolve_config(build_parser().parse_args(["train", *argv]))

    drtp = resolved("--rule", "drtp")
    assert (drtp.training.lr, drtp.network.activation, drtp.network.output) == (0.01, "tanh", "sigmoid")
    assert resolved("--rule", "drtp", "--lr", "0.5", "--activation", "relu").network.activation == "relu"
    assert resolved("--rule", "drtp", "--neuron", "lif").network.activation == "relu"  # LIF neurons spike
    assert resolved("--rule", "dfa", "--neuron", "lif").training.lr == RULES["dfa"].lif_lr
    # a LIF network on digits defaults to 32 hidden neurons; --arch, other data and rate neurons do not
    assert resolved("--rule", "dfa", "--neuron", "lif").network.hidden == [SPIKING_DIGITS_HIDDEN]
    assert resolved("--rule", "dfa", "--neuron", "lif", "--arch", "64").network.hidden == [64]
    assert resolved("--rule", "dfa", "--neuron", "lif", "--dataset", "mnist").network.hidden == [1024]
    assert resolved("--rule", "dfa").network.hidden == [1024]
    assert resolved("--rule", "pepita-wm").pepita.modulation_sign == -1.0
    assert resolved("--rule", "fa", "--preset", "pepita2022-cifar10").training.lr == 0.001  # the preset wins
