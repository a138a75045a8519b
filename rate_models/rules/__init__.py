"""Each rule's rate-backend implementation, one file per family:

``gradient.py`` (BP), ``feedback.py`` (FA, sign symmetry, Kolen-Pollack, weight mirror),
``direct.py`` (DFA, sDFA, DRTP), ``pepita.py`` (PEPITA and its variants), ``pfa.py`` (PFA, PFA-o).
"""

from __future__ import annotations

from neurosim.rules import get_rule
from rate_models.rules import direct, feedback, gradient, pepita, pfa
from rate_models.rules.base import Rule

RULE_CLASSES: dict[str, type[Rule]] = {
    "bp": gradient.Backprop,
    "fa": feedback.FeedbackAlignment,
    "sign-symmetry": feedback.SignSymmetry,
    "kolen-pollack": feedback.KolenPollack,
    "weight-mirror": feedback.WeightMirror,
    "dfa": direct.DFA,
    "sdfa": direct.SignDFA,
    "drtp": direct.DRTP,
    "pepita": pepita.Pepita,
    "pepita-f0": pepita.PepitaF0,
    "pepita-random": pepita.PepitaRandom,
    "pepita-hebbian": pepita.PepitaHebbian,
    "pepita-time-local": pepita.PepitaTimeLocal,
    "pepita-afa": pepita.PepitaAFA,
    "pepita-wm": pepita.PepitaWeightMirror,
    "pfa": pfa.PFA,
    "pfa-o": pfa.PFAOrthogonal,
}


def build_rule(name: str, net, cfg, seed: int) -> Rule:
    """The rate-backend rule ``name`` bound to ``net`` with feedback drawn from ``seed``."""
    get_rule(name)  # clear error for unknown names
    if name not in RULE_CLASSES:
        raise ValueError(f"rule {name!r} has no rate-backend implementation")
    return RULE_CLASSES[name](net, cfg, seed)
