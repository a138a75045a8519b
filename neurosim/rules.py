"""The registry of learning rules: one :class:`RuleSpec` per rule, back-end neutral.

A spec names the rule, the paper and equations it implements, its family (how the update is
delivered) and the backends that implement it. Each backend keeps its implementation in one
obvious place (``rate_models/rules/<family>.py``); ``tests/test_registry.py`` fails when a rule
claims a backend that does not provide it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleSpec:
    name: str  # command-line name, e.g. "pepita"
    family: str  # "gradient" | "feedback" | "direct" | "pepita" | "pfa"
    summary: str  # one line for `neurosim train --help`
    source: str  # paper and equation numbers the update implements
    backends: tuple[str, ...] = ("rate",)  # "rate" (rate_models), "circuit" (circuits),
    # "lif" (rate_models/spiking: LIF networks; "bp" there is surrogate-gradient BPTT)


_SPECS = [
    RuleSpec("bp", "gradient", "backpropagation (autograd)",
             "Rumelhart et al. 1986; PFA paper eqs. 2-3", ("rate", "lif")),
    RuleSpec("fa", "feedback", "feedback alignment: fixed random B_l replaces W_l^T",
             "Lillicrap et al. 2016; PFA paper Sec. 2 (FA)", ("rate", "circuit")),
    RuleSpec("dfa", "direct", "direct feedback alignment: delta_l = (B_l e) * phi'(a_l)",
             "Noekland 2016; PFA paper Sec. 2 (DFA); DRTP paper Fig. 1C", ("rate", "circuit", "lif")),
    RuleSpec("sdfa", "direct", "error-sign DFA: delta_l = (B_l sign(e)) * phi'(a_l)",
             "Frenkel et al. 2021 (DRTP paper) Sec. 2.2", ("rate", "lif")),
    RuleSpec("drtp", "direct", "direct random target projection: delta_l = -(B_l y*) * phi'(a_l)",
             "Frenkel et al. 2021, Algorithm 1", ("rate", "circuit", "lif")),
    RuleSpec("sign-symmetry", "feedback", "sign-concordant feedback: B_l = sign(W_l^T)·mean|W_l|",
             "Liao et al. 2016; PFA paper Sec. 2 (SF)"),
    RuleSpec("kolen-pollack", "feedback", "Kolen-Pollack: B_l learns with the transposed W update, both decay",
             "Kolen & Pollack 1994; Akrout et al. 2019; PFA paper Sec. 2 (KP)"),
    RuleSpec("weight-mirror", "feedback", "FA whose B_l is trained in mirror mode: dB = xi r^T, r = W xi",
             "Akrout et al. 2019; Srinivasan et al. 2023 Sec. 2.1"),
    RuleSpec("pepita", "pepita", "PEPITA: two forward passes, input modulated by F e",
             "Dellaferrera & Kreiman 2022, eqs. 1-5, Algorithm 1", ("rate", "circuit", "lif")),
    RuleSpec("pepita-interneuron", "pepita", "PEPITA circuit storing the first pass in interneurons",
             "Dellaferrera & Kreiman 2022, eqs. 1-5 (Discussion: storage in interneurons)",
             ("circuit",)),
    RuleSpec("pepita-f0", "pepita", "PEPITA control with F = 0: only the output layer learns",
             "Dellaferrera & Kreiman 2022, Appendix D eq. 10"),
    RuleSpec("pepita-random", "pepita", "PEPITA control: input perturbed by F (k r), r ~ U[0,1)",
             "Dellaferrera & Kreiman 2022, Appendix D eq. 11"),
    RuleSpec("pepita-hebbian", "pepita", "PEPITA-Hebbian: h h^T - h_err h_err^T",
             "Srinivasan et al. 2023, eqs. 7, 13-14"),
    RuleSpec("pepita-time-local", "pepita", "PEPITA-time-local: Hebbian phase, then anti-Hebbian phase",
             "Srinivasan et al. 2023, Algorithm 2"),
    RuleSpec("pepita-afa", "pepita", "adaptive feedback alignment: dW_1 = [(W_1 F e) * h_1'] x^T",
             "Srinivasan et al. 2023, eq. 11"),
    RuleSpec("pepita-wm", "pepita", "PEPITA with weight mirroring of a factorized F = F_1...F_L",
             "Srinivasan et al. 2023, Sec. 6.1"),
    RuleSpec("pfa", "pfa", "product feedback alignment: e_l = phi' * R_l (B_l e_{l+1}), B Glorot",
             "Li Ji-An & Benna, eqs. 4-6", ("rate", "circuit", "lif")),
    RuleSpec("pfa-o", "pfa", "PFA with semi-orthogonal B",
             "Li Ji-An & Benna, eqs. 4-6, Sec. 'PFA-o'"),
]

RULES: dict[str, RuleSpec] = {spec.name: spec for spec in _SPECS}


def rules_with(backend: str) -> list[str]:
    """Names of the rules implemented by ``backend`` ("rate", "circuit" or "lif")."""
    return [name for name, spec in RULES.items() if backend in spec.backends]


def get_rule(name: str) -> RuleSpec:
    """Return the spec of ``name``; a ValueError lists the known rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose one of: {', '.join(RULES)}") from None
