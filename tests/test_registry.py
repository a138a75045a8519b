"""The rule registry, the presets and the torch-free promise of the ``neurosim`` package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from neurosim.config import RunConfig
from neurosim.presets import PRESETS, apply_preset
from neurosim.rules import RULES

RATE_RULES = [name for name, spec in RULES.items() if "rate" in spec.backends]
# per-rule settings a rule needs to build at all (documented requirements, not tuning)
REQUIRED = {"pepita-wm": {"modulation_sign": -1.0}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_specs_are_consistent():
    for name, spec in RULES.items():
        assert spec.name == name
        assert spec.family in ("gradient", "feedback", "direct", "pepita", "pfa")
        assert spec.summary and spec.source and spec.backends


def test_rate_rule_classes_match_the_registry():
    from rate_models.rules import RULE_CLASSES

    missing = [name for name in RATE_RULES if name not in RULE_CLASSES]
    assert not missing, f"rules claiming the rate backend without a class: {missing}"
    orphans = [name for name in RULE_CLASSES if name not in RULES or "rate" not in RULES[name].backends]
    assert not orphans, f"rate classes for rules the registry does not list: {orphans}"
    for name in RATE_RULES:  # one obvious place: rate_models/rules/<family>.py
        assert RULE_CLASSES[name].__module__ == f"rate_models.rules.{RULES[name].family}", name


def test_conv_rule_classes_match_the_registry():
    from rate_models.rules import CONV_RULES, FORMS

    assert sorted(CONV_RULES) == sorted(name for name, spec in RULES.items() if "conv" in spec.backends)
    for name, forms in FORMS.items():  # both forms in one obvious place: rate_models/rules/<family>.py
        for cls in (forms.dense, forms.conv):
            assert cls is None or cls.__module__ == f"rate_models.rules.{RULES[name].family}", (name, cls)


@pytest.mark.parametrize("name", RATE_RULES)
def test_conv_forms_build_and_step_and_the_others_are_refused(name):
    import torch

    from rate_models.rules import build_model

    cfg = RunConfig(rule=name, arch="pepita-conv", dataset="digits", bias=True, dropout=0.1,
                    batch_size=4, pfa_expansion=2.0, **REQUIRED.get(name, {}))
    cfg.validate()
    if "conv" not in RULES[name].backends:
        with pytest.raises(ValueError, match=f"'{name}' has no convolutional form"):
            build_model(cfg, 64, 10, 0)
        return
    net, rule = build_model(cfg, 64, 10, 0)
    opt = torch.optim.SGD(list(net.parameters()) + rule.feedback_parameters(), lr=0.05)
    before = [W.detach().clone() for W in net.weights]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 64, generator=g)
    y = torch.eye(10)[torch.randint(0, 10, (4,), generator=g)]
    net.train()
    assert torch.isfinite(torch.as_tensor(rule.train_step(x, y, opt))).all(), name
    assert not torch.equal(before[-1], net.weights[-1]), f"{name}'s readout did not learn"


def test_lif_rule_classes_match_the_registry():
    from rate_models.spiking import LIF_RULES

    assert sorted(LIF_RULES) == sorted(name for name, spec in RULES.items() if "lif" in spec.backends)
    for cls in LIF_RULES.values():  # one obvious place: rate_models/spiking/rules.py
        assert cls.__module__ == "rate_models.spiking.rules", cls


def test_unknown_rule_is_a_clear_error():
    from rate_models.architectures import FCNetwork
    from rate_models.rules import build_rule

    net = FCNetwork([4, 3, 2])
    with pytest.raises(ValueError, match="unknown rule"):
        build_rule("no-such-rule", net, RunConfig(), 0)


@pytest.mark.parametrize("name", RATE_RULES)
def test_every_rate_rule_builds_and_steps(name):
    import torch

    from rate_models.architectures import FCNetwork
    from rate_models.rules import build_rule

    sizes = [6, 5, 4, 3]
    cfg = RunConfig(rule=name, hidden=sizes[1:-1], bias=True, dropout=0.1, batch_size=8,
                    pfa_expansion=2.0, **REQUIRED.get(name, {}))
    cfg.validate()
    torch.manual_seed(0)
    net = FCNetwork(sizes, cfg.network.activation, cfg.network.output, cfg.network.dropout, cfg.network.bias, cfg.network.init, seed=0)
    rule = build_rule(name, net, cfg, seed=0)
    rule.pre_train(2, 8)
    params = list(net.parameters()) + rule.feedback_parameters()
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, sizes[0], generator=g)
    y = torch.eye(sizes[-1])[torch.randint(0, sizes[-1], (8,), generator=g)]
    net.train()
    for _ in range(2):
        loss = rule.train_step(x, y, opt)
        assert torch.isfinite(torch.as_tensor(loss)).all(), name
    for p in list(rule.parameters()) + list(rule.buffers()):
        assert torch.isfinite(p).all(), name
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, params)), f"{name} did not learn"
    net.eval()
    assert torch.isfinite(net(x)).all()
    updates = rule.hidden_updates(x, y)
    assert [u.shape for u in updates] == [w.shape for w in net.weights[:-1]]
    for value in rule.alignment().values():
        assert value == value  # not NaN


PRESET_RULES = [(preset, rule) for preset, spec in PRESETS.items()
                for rule in (spec["per_rule"] or [RunConfig().rule])]


@pytest.mark.parametrize("preset,rule", PRESET_RULES)
def test_presets_resolve_to_valid_configs(preset, rule):
    assert rule in RULES, f"preset {preset} names unknown rule {rule}"
    assert PRESETS[preset]["source"]
    overrides = apply_preset(preset, rule)
    cfg = RunConfig.from_dict({**RunConfig().to_dict(), **overrides, "rule": rule})
    cfg.validate()
    assert cfg.preset == preset
    for key, value in PRESETS[preset]["per_rule"].get(rule, {}).items():
        assert cfg.flat()[key] == value
    # the resolved config builds its rule (on a tiny copy of the architecture)
    if "rate" in RULES[rule].backends:
        from rate_models.architectures import FCNetwork
        from rate_models.rules import build_rule

        sizes = [6] + [3] * len(cfg.network.hidden) + [4]
        net = FCNetwork(sizes, cfg.network.activation, cfg.network.output, cfg.network.dropout, cfg.network.bias, cfg.network.init, seed=0,
                        normalize=cfg.network.normalize_activations)
        build_rule(rule, net, cfg, seed=0)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset("no-such-preset", "bp")


def test_neurosim_imports_neither_torch_nor_brian2():
    modules = ["neurosim", "neurosim.cli", "neurosim.datasets", "neurosim.metrics", "neurosim.config",
               "neurosim.rules", "neurosim.presets", "neurosim.feedback", "neurosim.io",
               "neurosim.report", "neurosim.plotting", "neurosim.runs"]
    code = ("import sys, importlib\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "bad = [m for m in ('torch', 'brian2') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
