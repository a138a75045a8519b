"""The registry of learning rules: one :class:`RuleSpec` per rule, back-end neutral.

A spec names the rule, the paper and equations it implements, its family (how the update is
delivered), the backends that implement it and its defaults: the learning rate (and the
nonlinearities, where its paper fixes them) that ``neurosim train --rule R`` uses when neither a
preset nor a flag sets them, each with its source. The rates are for the configuration's SGD with
momentum 0.9 and batch 64 (the papers' MNIST settings); they were checked to learn digits, MNIST
and Fashion-MNIST (the closing note of issue 15 lists the runs). Each backend keeps its implementation in one
obvious place (rate and conv forms: ``rate_models/rules/<family>.py``, listed in its ``FORMS``;
LIF: ``rate_models/spiking/rules.py``; circuits: ``circuits/``); ``tests/test_registry.py`` fails
when a rule claims a backend that does not provide it, or a backend provides a rule that does
not claim it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_DRTP_ACTS = {"activation": "tanh", "output": "sigmoid"}  # DRTP paper Sec. 4: tanh, sigmoid + BCE
_DK = "Dellaferrera & Kreiman 2022 Table 2, MNIST"
_PFA = "Li Ji-An & Benna App. 1.1.1, MNIST"
_SRI = "Srinivasan et al. 2023 Table 4, MNIST"
_LIF = "measured: MNIST, 1 epoch, beside the frozen-hidden control (benchmarks/results/lif_controls.json)"
# The direct-feedback family's LIF rate. sDFA's sign(e) and DRTP's y* keep their size as the error
# shrinks. At 5e-4 each fell below the frozen control at the same rate on one set (sDFA MNIST, DRTP
# Fashion-MNIST, DFA Fashion-MNIST -0.51); at 2e-4 all three are above it on both sets (DFA: MNIST
# +4.17, Fashion-MNIST +2.14). sDFA still ends with about a third of its hidden neurons silent and a
# third saturated at every rate tried (1e-4..5e-4)
# PEPITA's LIF form: its hidden update has no phi' to scale it up beside the readout's (as the
# three-factor rules' rate_slope does), so its hidden layers learn at 100x the readout's rate
# (rate_models/spiking/rules.py, SpikingPepita, has the scan)
_LIF_PEPITA = ("measured: MNIST 1 epoch, beside the frozen-hidden control at the same rate, over "
               "hidden_lr_scale 10-400 and f_scale 0.05-0.2 (benchmarks/results/lif_controls.json, "
               "'pepita_hidden_lr')")
_LIF_CONSTANT = ("measured: MNIST and Fashion-MNIST, 1 epoch, beside the frozen-hidden control at the "
                 "same rate (benchmarks/results/lif_controls.json, 'constant_signal_rates')")


@dataclass(frozen=True)
class RuleSpec:
    name: str  # command-line name, e.g. "pepita"
    family: str  # "gradient" | "feedback" | "direct" | "pepita" | "pfa"
    summary: str  # one line for `neurosim train --help`
    source: str  # paper and equation numbers the update implements
    backends: tuple[str, ...] = ("rate",)  # "rate" (rate_models: fully connected, the dense
    # form), "conv" (rate_models: convolutional architectures), "circuit" (circuits),
    # "lif" (rate_models/spiking: LIF networks; "bp" there is surrogate-gradient BPTT)
    lr: float = 0.1  # default learning rate of rate networks (SGD, momentum 0.9, batch 64)
    # RunConfig values the rule's paper fixes for rate networks, e.g. DRTP's tanh and sigmoid
    fixed: dict = field(default_factory=dict, compare=False, hash=False)
    defaults_source: str = ""  # where lr and fixed come from
    lif_lr: float | None = None  # default learning rate with --neuron lif (backend "lif")
    # other RunConfig values of the LIF form, e.g. PEPITA's hidden_lr_scale
    lif_fixed: dict = field(default_factory=dict, compare=False, hash=False)
    lif_source: str = ""  # where lif_lr and lif_fixed come from

    def defaults(self, neuron: str = "rate") -> dict:
        """RunConfig overrides this rule brings when nothing else sets them: learning rate and, for
        rate networks, the fixed values (LIF neurons have their own nonlinearity, and their own
        ``lif_fixed`` values)."""
        if neuron == "lif":
            return ({} if self.lif_lr is None else {"lr": self.lif_lr}) | self.lif_fixed
        return {"lr": self.lr, **self.fixed}

    def describe_defaults(self) -> str:
        """The defaults with their sources, as ``--help`` shows them."""
        fixed = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.fixed.items())
        text = f"lr {self.lr:g}" + (f", {fixed}" if fixed else "") + f" ({self.defaults_source})"
        if self.lif_lr is not None:
            lif_fixed = "".join(f", {k} {v:g}" for k, v in self.lif_fixed.items())
            text += f"; --neuron lif: lr {self.lif_lr:g}{lif_fixed} ({self.lif_source})"
        return text


_SPECS = [
    RuleSpec("bp", "gradient", "backpropagation (autograd)",
             "Rumelhart et al. 1986; PFA paper eqs. 2-3", ("rate", "conv", "lif"),
             lr=0.1, defaults_source=_DK, lif_lr=0.005, lif_source=_LIF),
    RuleSpec("fa", "feedback", "feedback alignment: fixed random B_l replaces W_l^T",
             "Lillicrap et al. 2016; PFA paper Sec. 2 (FA)", ("rate", "conv", "circuit"),
             lr=0.01, defaults_source=_PFA + " (D&K's 0.1 falls to 69% on Fashion-MNIST in 1 epoch)"),
    RuleSpec("dfa", "direct", "direct feedback alignment: delta_l = (B_l e) * phi'(a_l)",
             "Noekland 2016; PFA paper Sec. 2 (DFA); DRTP paper Fig. 1C", ("rate", "conv", "circuit", "lif"),
             lr=0.01, defaults_source=_PFA, lif_lr=0.0002, lif_source=_LIF_CONSTANT),
    RuleSpec("sdfa", "direct", "error-sign DFA: delta_l = (B_l sign(e)) * phi'(a_l)",
             "Frenkel et al. 2021 (DRTP paper) Sec. 2.2", ("rate", "conv", "lif"),
             lr=0.01, fixed=_DRTP_ACTS,
             defaults_source="tanh, sigmoid: DRTP paper Sec. 4; lr: DRTP's, " + _DK,
             lif_lr=0.0002, lif_source=_LIF_CONSTANT),
    RuleSpec("drtp", "direct", "direct random target projection: delta_l = -(B_l y*) * phi'(a_l)",
             "Frenkel et al. 2021, Algorithm 1", ("rate", "conv", "circuit", "lif"),
             lr=0.01, fixed=_DRTP_ACTS, defaults_source=_DK + ", Sec. 4.1",
             lif_lr=0.0002, lif_source=_LIF_CONSTANT),
    RuleSpec("sign-symmetry", "feedback", "sign-concordant feedback: B_l = sign(W_l^T)·mean|W_l|",
             "Liao et al. 2016; PFA paper Sec. 2 (SF)", ("rate", "conv"), lr=0.01, defaults_source=_PFA),
    RuleSpec("kolen-pollack", "feedback", "Kolen-Pollack: B_l learns with the transposed W update, both decay",
             "Kolen & Pollack 1994; Akrout et al. 2019; PFA paper Sec. 2 (KP)", ("rate", "conv"),
             lr=0.01, defaults_source="the rate of BP, SF, PFA in " + _PFA),
    RuleSpec("weight-mirror", "feedback", "FA whose B_l is trained in mirror mode: dB = xi r^T, r = W xi",
             "Akrout et al. 2019; Srinivasan et al. 2023 Sec. 2.1",
             lr=0.01, defaults_source="FA's, " + _PFA + " (0.1 falls to 36% on Fashion-MNIST in 1 epoch)"),
    RuleSpec("pepita", "pepita", "PEPITA: two forward passes, input modulated by F e",
             "Dellaferrera & Kreiman 2022, eqs. 1-5, Algorithm 1", ("rate", "conv", "circuit", "lif"),
             lr=0.1, defaults_source=_DK, lif_lr=5e-4, lif_fixed={"hidden_lr_scale": 100.0, "f_scale": 0.2},
             lif_source=_LIF_PEPITA),
    RuleSpec("pepita-interneuron", "pepita", "PEPITA circuit storing the first pass in interneurons",
             "Dellaferrera & Kreiman 2022, eqs. 1-5 (Discussion: storage in interneurons)",
             ("circuit",), lr=0.1, defaults_source="PEPITA's, " + _DK),
    RuleSpec("pepita-f0", "pepita", "PEPITA control with F = 0: only the output layer learns",
             "Dellaferrera & Kreiman 2022, Appendix D eq. 10", ("rate", "conv"), lr=0.1, defaults_source="PEPITA's, " + _DK),
    RuleSpec("pepita-random", "pepita", "PEPITA control: input perturbed by F (k r), r ~ U[0,1)",
             "Dellaferrera & Kreiman 2022, Appendix D eq. 11", ("rate", "conv"), lr=0.01,
             defaults_source="measured: PEPITA's 0.1 stalls at 22% on MNIST and diverges on Fashion-MNIST"),
    RuleSpec("pepita-hebbian", "pepita", "PEPITA-Hebbian: h h^T - h_err h_err^T",
             "Srinivasan et al. 2023, eqs. 7, 13-14", lr=0.1, defaults_source="PEPITA's, " + _SRI),
    RuleSpec("pepita-time-local", "pepita", "PEPITA-time-local: Hebbian phase, then anti-Hebbian phase",
             "Srinivasan et al. 2023, Algorithm 2",
             lr=0.003, defaults_source="measured: 0.1 stalls near 70% on digits, 0.01 at 53% on MNIST "
             "(10k samples, 1 epoch); the paper gives only CIFAR-10's 1e-4, its Fig. 4"),
    RuleSpec("pepita-afa", "pepita", "adaptive feedback alignment: dW_1 = [(W_1 F e) * h_1'] x^T",
             "Srinivasan et al. 2023, eq. 11", lr=0.1, defaults_source="PEPITA's, " + _SRI),
    RuleSpec("pepita-wm", "pepita", "PEPITA with weight mirroring of a factorized F = F_1...F_L",
             "Srinivasan et al. 2023, Sec. 6.1", lr=0.1, fixed={"modulation_sign": -1.0},
             defaults_source="PEPITA's, " + _SRI + "; x - F e: its Sec. 6.1"),
    RuleSpec("pfa", "pfa", "product feedback alignment: e_l = phi' * R_l (B_l e_{l+1}), B Glorot",
             "Li Ji-An & Benna, eqs. 4-6", ("rate", "conv", "circuit", "lif"),
             lr=0.01, defaults_source=_PFA, lif_lr=0.0005, lif_source=_LIF),
    RuleSpec("pfa-o", "pfa", "PFA with semi-orthogonal B",
             "Li Ji-An & Benna, eqs. 4-6, Sec. 'PFA-o'", ("rate", "conv"), lr=0.01, defaults_source="PFA's, " + _PFA),
]

RULES: dict[str, RuleSpec] = {spec.name: spec for spec in _SPECS}


def rules_with(backend: str) -> list[str]:
    """Names of the rules implemented by ``backend`` ("rate", "conv", "circuit" or "lif")."""
    return [name for name, spec in RULES.items() if backend in spec.backends]


def get_rule(name: str) -> RuleSpec:
    """Return the spec of ``name``; a ValueError lists the known rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose one of: {', '.join(RULES)}") from None
