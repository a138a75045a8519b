"""Each rule's rate-backend implementation, one file per family (``neurosim.rules.RuleSpec.family``):

``gradient.py`` (BP), ``feedback.py`` (FA, sign symmetry, Kolen-Pollack, weight mirror),
``direct.py`` (DFA, sDFA, DRTP), ``pepita.py`` (PEPITA and its variants), ``pfa.py`` (PFA, PFA-o).

A family file holds the family's update (pure functions, autograd functions), its layers for the
convolutional architectures and its rule classes, and ends with ``FORMS``: rule name ->
:class:`~rate_models.rules.base.Forms`, the rule's fully connected (``dense``) and convolutional
(``conv``) form. :data:`FORMS` below gathers them, the one registry of implementations;
:data:`RULE_CLASSES` and :data:`CONV_RULES` are its two columns. ``tests/test_registry.py`` checks
it against the backends each ``RuleSpec`` claims ("rate": dense, "conv").
:func:`build_model` builds any network with its rule.
"""

from __future__ import annotations

import importlib

from neurosim.rules import RULES, get_rule
from rate_models.architectures import build_architecture, image_shape
from rate_models.network import FCNetwork
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


def build_conv_model(cfg, input_dim: int, n_out: int, seed: int):
    """Network ``cfg.network.arch`` built with rule ``cfg.rule``'s layers, and the rule bound to it.

    ``input_dim``: values per sample, viewed as the image shape of ``cfg.data.dataset``. Rules without
    a convolutional form (weight mirror, PEPITA's Hebbian / time-local / AFA / weight-mirror
    variants) raise a ValueError naming the rule, the architecture and the rules that work; PEPITA
    itself refuses residual architectures (no form in the paper).
    """
    get_rule(cfg.rule)  # clear error for unknown names
    if cfg.rule not in CONV_RULES:
        raise ValueError(f"rule {cfg.rule!r} has no convolutional form (arch {cfg.network.arch!r}); rules that "
                         f"run on convolutional architectures: {', '.join(CONV_RULES)}; "
                         f"or train {cfg.rule!r} on a fully connected network (--arch 1024)")
    if cfg.network.normalize_activations:
        raise ValueError(f"activation normalization is defined for fully connected networks only, "
                         f"not arch {cfg.network.arch!r}; drop --normalize")
    cls = CONV_RULES[cfg.rule]
    net = build_architecture(cfg.network.arch, cls.layer_factory(cfg, seed), image_shape(cfg.data.dataset, input_dim),
                             n_out, cfg)
    cls.check_architecture(cfg.rule, net)
    return net, cls(net, cfg, seed)


def build_model(cfg, input_dim: int, n_out: int, seed: int):
    """``(net, rule)`` of one seed: the network ``cfg`` describes — fully connected ``[input_dim,
    *cfg.network.hidden, n_out]`` (``cfg.network.arch == "fc"``), a convolutional architecture, or with
    ``cfg.network.neuron == "lif"`` a LIF network — and rule ``cfg.rule``'s form for it."""
    sizes = [input_dim, *cfg.network.hidden, n_out]
    if cfg.network.neuron == "lif":  # spiking mode: LIF network trained by the rule's spiking form
        from rate_models.spiking import LIFNetwork, build_lif_rule

        net = LIFNetwork(sizes, cfg, seed)
        return net, build_lif_rule(cfg.rule, net, cfg, seed)
    if cfg.network.arch == "fc":
        net = FCNetwork(sizes, cfg.network.activation, cfg.network.output, cfg.network.dropout, cfg.network.bias, cfg.network.init, seed,
                        cfg.network.normalize_activations)
        return net, build_rule(cfg.rule, net, cfg, seed)
    return build_conv_model(cfg, input_dim, n_out, seed)  # cfg.network.hidden is not used
