"""Convolutional forms of the rate-backend rules, one file per family as in ``rate_models/rules``:

``gradient.py`` (BP), ``feedback.py`` (FA, sign symmetry, Kolen-Pollack: :class:`FeedbackConv2d`),
``direct.py`` (DFA, sDFA, DRTP: :class:`DirectInjection`), ``pfa.py`` (PFA, PFA-o:
:class:`ProductFeedbackConv2d`, PFA paper eqs. 11-12), ``pepita.py`` (PEPITA and its F = 0 /
random controls, PEPITA paper Sec. 3.3); ``base.py`` holds the seeded layers, the layer factory
and the :class:`Pass` context shared by all.

Design: each rule is a ``Rule`` subclass (the interface of ``rate_models/rules/base.py``:
``compute_grads``, ``feedback_parameters``, ``alignment``) that also names its layer classes. An
architecture (``rate_models/architectures.py``) is built from the rule's ``layer_factory``, so
the rule's error routing lives in its own layers and any rule runs on any architecture; a rule's
whole convolutional form — autograd function, layers, rule class — sits in the file of its
family, next to the FC form's file name. Rules without a convolutional form here (weight mirror,
PEPITA's Hebbian / time-local / AFA / weight-mirror variants) raise a ValueError naming the rule,
the architecture and the rules that work; PEPITA itself refuses residual architectures (no form in
the paper).
"""

from __future__ import annotations

from neurosim.rules import get_rule
from rate_models.architectures import build_architecture, image_shape
from rate_models.conv import direct, feedback, gradient, pepita, pfa
from rate_models.conv.base import ConvRule

CONV_RULES: dict[str, type[ConvRule]] = {
    "bp": gradient.Backprop,
    "fa": feedback.FeedbackAlignment,
    "sign-symmetry": feedback.SignSymmetry,
    "kolen-pollack": feedback.KolenPollack,
    "dfa": direct.DFA,
    "sdfa": direct.SignDFA,
    "drtp": direct.DRTP,
    "pfa": pfa.PFA,
    "pfa-o": pfa.PFAOrthogonal,
    "pepita": pepita.Pepita,
    "pepita-f0": pepita.PepitaF0,
    "pepita-random": pepita.PepitaRandom,
}


def build_conv_model(cfg, input_dim: int, n_out: int, seed: int):
    """Network ``cfg.arch`` built with rule ``cfg.rule``'s layers, and the rule bound to it.

    ``input_dim``: values per sample, viewed as the image shape of ``cfg.dataset``.
    """
    get_rule(cfg.rule)  # clear error for unknown names
    if cfg.rule not in CONV_RULES:
        raise ValueError(f"rule {cfg.rule!r} has no convolutional form (arch {cfg.arch!r}); rules that "
                         f"run on convolutional architectures: {', '.join(CONV_RULES)}; "
                         f"or train {cfg.rule!r} on a fully connected network (--arch 1024)")
    if cfg.normalize_activations:
        raise ValueError(f"activation normalization is defined for fully connected networks only, "
                         f"not arch {cfg.arch!r}; drop --normalize")
    cls = CONV_RULES[cfg.rule]
    net = build_architecture(cfg.arch, cls.layer_factory(cfg, seed), image_shape(cfg.dataset, input_dim),
                             n_out, cfg)
    cls.check_architecture(cfg.rule, net)
    return net, cls(net, cfg, seed)
