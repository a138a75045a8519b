"""K seeds of one configuration trained at once as one batched model.

Every tensor of a rule — forward weights, biases, fixed and plastic feedback, PEPITA's ``F`` —
is stacked along a new leading seed dimension: ``W_l`` becomes ``(K, N_l, N_{l-1})``, a batch of
inputs ``(K, batch, N_0)`` (each seed its own shuffled samples). The rules are written for
either shape (samples are dimension -2, transposes ``.mT``, ``rate_models.network.linear``), so
one call computes all K updates with batched matrix products, and the seeds never mix: each
seed's update depends only on its own slice. Torch's optimizers (SGD with momentum and weight
decay, Adam) and ``MultiStepLR`` are elementwise, so one optimizer over the stacked tensors is
K separate optimizers.

LIF networks (``rate_models.spiking``) stack the same way: their neurons act elementwise and
their encoders draw from the same per-seed generators.

What makes the result equal K separate runs (to floating-point rounding of the batched
products): each seed's tensors are built by the same ``build`` as a separate run, the shuffling
uses each seed's own generator, and the per-step randomness (dropout masks, PEPITA's random
perturbation, mirror noise) comes from each seed's own ``StepNoise`` generator, as it does in a
separate run. ``tests/test_seed_batch.py`` checks it rule by rule.
"""

from __future__ import annotations

import torch

from neurosim.rules import rules_with
from rate_models.architectures import FCNetwork
from rate_models.network import StepNoise
from rate_models.rules import RULE_CLASSES
from rate_models.rules.base import Rule

SEED_BATCH_RULES = tuple(RULE_CLASSES)  # every fully connected rate rule
SEED_BATCH_LIF_RULES = tuple(rules_with("lif"))  # every rule of the spiking mode (--neuron lif)


def _is_lif_rule(rule: Rule) -> bool:
    """Whether ``rule`` is its name's rule of the spiking mode on a LIF network (snnTorch is
    imported only for LIF runs, so a rate run never loads it)."""
    if rule.cfg.network.neuron != "lif":
        return False
    from rate_models.spiking import LIF_RULES, LIFNetwork

    return type(rule) is LIF_RULES.get(rule.cfg.rule) and isinstance(rule.net, LIFNetwork)


def check_seed_batch(rule: Rule) -> None:
    """Raise ValueError naming the rule when it cannot be trained as a seed batch."""
    name = rule.cfg.rule
    rate = type(rule) is RULE_CLASSES.get(name) and isinstance(rule.net, FCNetwork)
    if not (rate or _is_lif_rule(rule)):
        raise ValueError(f"--seed-batch covers the fully connected rules {', '.join(SEED_BATCH_RULES)} "
                         f"and, with --neuron lif, {', '.join(SEED_BATCH_LIF_RULES)}; "
                         f"rule {name!r} on a {type(rule.net).__name__} cannot be batched over seeds: "
                         "train its seeds one after another (drop --seed-batch)")


def _stacked(rules: list[Rule], get, name: str) -> torch.Tensor:
    parts = [get(r, name).detach() for r in rules]
    if any(p.shape != parts[0].shape for p in parts):
        raise ValueError(f"{name} has different shapes across seeds: {[tuple(p.shape) for p in parts]}")
    return torch.stack(parts)


def stack_into(batched: Rule, rules: list[Rule], seeds: list[int], device) -> None:
    """Make ``batched`` hold the K seeds' tensors stacked along dimension 0, with one noise
    generator per seed on ``device``.

    ``batched`` is a rule built like the others (seed ``seeds[0]``'s, with its optimizer and
    scheduler); ``rules`` are the K seeds' own rules, none of them ``batched`` itself. Only each
    Parameter's ``.data`` is replaced, so optimizers made beforehand (the training optimizer,
    weight mirroring's) hold the stacked tensors.
    """
    for r in [batched, *rules]:
        check_seed_batch(r)
    if any(r is batched for r in rules):
        raise ValueError("stack_into: the seeds' rules must be copies, not the rule being stacked into")
    with torch.no_grad():
        for name, p in batched.named_parameters():
            p.data = _stacked(rules, Rule.get_parameter, name)
        for name, _ in list(batched.named_buffers()):
            owner, _, attr = name.rpartition(".")
            setattr(batched.get_submodule(owner), attr, _stacked(rules, Rule.get_buffer, name))
    batched.net.noise = StepNoise(seeds, device, stacked=True)


@torch.no_grad()
def unstack_into(batched: Rule, rules: list[Rule]) -> None:
    """Copy seed k's slice of every tensor of ``batched`` into ``rules[k]``, so the per-seed code
    (evaluation, alignment figures, the divergence check) runs on each seed unchanged."""
    for k, r in enumerate(rules):
        for name, p in batched.named_parameters():
            r.get_parameter(name).copy_(p[k])
        for name, b in batched.named_buffers():
            r.get_buffer(name).copy_(b[k])
