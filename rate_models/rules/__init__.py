"""Each rule's rate-backend implementation, one file per family (``neurosim.rules.RuleSpec.family``):

``gradient.py`` (BP), ``feedback.py`` (FA, sign symmetry, Kolen-Pollack, weight mirror),
``direct.py`` (DFA, sDFA, DRTP), ``pepita.py`` (PEPITA and its variants), ``pfa.py`` (PFA, PFA-o).

A family file holds the family's update (pure functions, autograd functions), its layers for the
convolutional architectures and its rule classes, and ends with ``FORMS``: rule name ->
:class:`~rate_models.rules.base.Forms`, the rule's fully connected (``dense``) and convolutional
(``conv``) form. :data:`FORMS` below gathers them, the one registry of implementations;
:data:`RULE_CLASSES` and :data:`CONV_RULES` are its two columns. ``tests/test_registry.py`` checks
it against the backends each ``RuleSpec`` claims ("rate": dense, "conv").
:func:`build_model` builds any architecture with the layers of its rule's form for it, and the rule.
"""

from __future__ import annotations

import importlib

from neurosim.rules import RULES, get_rule
from rate_models.architectures import build_architecture
from rate_models.rules.base import ConvRule, Forms, Rule

FAMILIES = tuple(dict.fromkeys(spec.family for spec in RULES.values()))  # the family files, in spec order

FORMS: dict[str, Forms] = {name: forms for family in FAMILIES
                           for name, forms in importlib.import_module(f"{__name__}.{family}").FORMS.items()}
RULE_CLASSES: dict[str, type[Rule]] = {name: f.dense for name, f in FORMS.items() if f.dense is not None}
CONV_RULES: dict[str, type[ConvRule]] = {name: f.conv for name, f in FORMS.items() if f.conv is not None}


def build_rule(name: str, net, cfg, seed: int) -> Rule:
    """The rate-backend rule ``name`` bound to the fully connected ``net`` with feedback drawn
    from ``seed``."""
    get_rule(name)  # clear error for unknown names
    if name not in RULE_CLASSES:
        raise ValueError(f"rule {name!r} has no rate-backend implementation")
    return RULE_CLASSES[name](net, cfg, seed)


def build_model(cfg, input_dim: int, n_out: int, seed: int):
    """``(net, rule)`` of one seed: architecture ``cfg.network.arch`` (``rate_models.architectures``;
    ``fc`` is ``[input_dim, *cfg.network.hidden, n_out]``) built with the layers of rule
    ``cfg.rule``'s form for it — dense on ``fc``, convolutional on the others — and that form bound
    to it; with ``cfg.network.neuron == "lif"`` a LIF network and the rule's spiking form.

    ``input_dim``: values per sample, viewed as the image shape of ``cfg.data.dataset`` by the
    convolutional architectures. Rules without a convolutional form (weight mirror, PEPITA's
    Hebbian / time-local / AFA / weight-mirror variants) raise a ValueError there naming the rule,
    the architecture and the rules that work; PEPITA itself refuses residual architectures (no form
    in the paper).
    """
    if cfg.network.neuron == "lif":  # spiking mode: LIF network trained by the rule's spiking form
        from rate_models.spiking import LIFNetwork, build_lif_rule

        net = LIFNetwork([input_dim, *cfg.network.hidden, n_out], cfg, seed)
        return net, build_lif_rule(cfg.rule, net, cfg, seed)
    get_rule(cfg.rule)  # clear error for unknown names
    if cfg.network.arch == "fc":
        if cfg.rule not in RULE_CLASSES:
            raise ValueError(f"rule {cfg.rule!r} has no rate-backend implementation")
        cls = RULE_CLASSES[cfg.rule]
    elif cfg.rule not in CONV_RULES:
        raise ValueError(f"rule {cfg.rule!r} has no convolutional form (arch {cfg.network.arch!r}); rules that "
                         f"run on convolutional architectures: {', '.join(CONV_RULES)}; "
                         f"or train {cfg.rule!r} on a fully connected network (--arch 1024)")
    else:
        cls = CONV_RULES[cfg.rule]
    net = build_architecture(cfg.network.arch, cls.layer_factory(cfg, seed), input_dim, n_out, cfg)
    cls.check_architecture(cfg.rule, net)
    return net, cls(net, cfg, seed)
