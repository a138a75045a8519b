"""The configuration of a training run: every hyperparameter, with its meaning, in sections.

:class:`RunConfig` holds the ``rule``, the ``preset`` and one dataclass per section
(:data:`SECTIONS`): ``cfg.training.lr``, ``cfg.data.dataset``, ``cfg.network.hidden``,
``cfg.pepita.f_scale``, ``cfg.mirror.wm_lr``, ``cfg.pfa.pfa_expansion``, ``cfg.lif.beta``,
``cfg.streaming.workers``. Each field is declared once, with :func:`option`: its default, help
text, choices and command-line parser; ``neurosim train`` generates its flags from these
declarations (``neurosim.cli``), so an option is added in this file alone. Field names are unique
across sections, so ``RunConfig(lr=0.01, beta=0.9)`` routes flat names into their sections.

A run's ``config.json`` is this configuration resolved (defaults, then the rule's, then a preset,
then flags), written with one object per section, so a run folder alone says how to reproduce it;
:meth:`RunConfig.from_dict` also reads the flat layout of older run folders.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import Field, asdict, dataclass, field, fields

from neurosim.datasets import DATASETS
from neurosim.feedback import INITS
from neurosim.presets import PRESETS
from neurosim.rules import RULES, get_rule, rules_with

ACTIVATIONS = ("relu", "clipped-relu", "tanh", "sigmoid", "linear")
# network architectures: "fc" (hidden sizes from `hidden`) or a convolutional one
# (rate_models/architectures.py; a test keeps the two lists equal)
ARCHS = ("fc", "pepita-conv", "drtp-conv-mnist", "drtp-conv-cifar10", "resnet20", "resnet18")
NEURONS = ("rate", "lif")
LIF_CONV_ARCHS = ("pepita-conv", "drtp-conv-mnist", "drtp-conv-cifar10")  # plain conv nets, also spiking
ENCODERS = ("rate", "latency", "current")  # LIF input spikes (rate_models/spiking/lif.py)
OUTPUTS = ("softmax", "sigmoid", "tanh", "linear")
OPTIMIZERS = ("sgd", "adam")
# data sets too large to hold on the device: always streamed from a DataLoader (rate_models/imagenet.py)
STREAMED_DATASETS = {
    "imagenet": "ImageNet class folders <data-dir>/{train,val}/<wnid>/*.JPEG, streamed with augmentation",
}


def parse_arch(text: str) -> list[int] | str:
    """Hidden sizes from ``1024``, ``512-512``, ``2x1024`` or ``fc2x1024``; ``none`` for no hidden
    layer; or the name of a convolutional architecture (``resnet20``, ...), returned as is."""
    t = text.strip().lower()
    if t in ARCHS and t != "fc":
        return t
    if t in ("none", "0", ""):
        return []
    m = re.fullmatch(r"(?:fc)?(\d+)x(\d+)", t)
    if m:
        return [int(m.group(2))] * int(m.group(1))
    try:
        sizes = [int(s) for s in re.split(r"[-,]", t)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--arch {text!r}: give hidden sizes like 1024, 512-512 or 2x1024, or one of "
            f"{', '.join(a for a in ARCHS if a != 'fc')}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--arch {text!r}: sizes must be positive")
    return sizes


def parse_milestones(text: str) -> list[int]:
    """Epochs at which the learning rate is multiplied by --lr-gamma: ``60,90``; ``none`` for a
    constant learning rate."""
    t = text.strip().lower()
    if t in ("none", ""):
        return []
    try:
        epochs = [int(s) for s in t.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--lr-milestones {text!r}: give epochs like 60,90, or none") from None
    if any(e <= 0 for e in epochs) or epochs != sorted(set(epochs)):
        raise argparse.ArgumentTypeError(
            f"--lr-milestones {text!r}: epochs must be positive and increasing")
    return epochs


def _arch_values(value: list[int] | str) -> dict:
    """The fields ``--arch`` sets: a conv net's name, or ``fc`` with its hidden sizes."""
    return {"arch": value} if isinstance(value, str) else {"arch": "fc", "hidden": value}


def option(default, help: str, *, choices=None, parse: Callable | None = None, flag: str | None = None,
           metavar: str | None = None, assign: Callable[[object], dict] | None = None,
           no_flag: str | None = None) -> Field:
    """Declare a configuration field once: its ``default`` (a list is copied per instance), the
    ``help`` text of its flag, its ``choices``, and how ``neurosim train`` parses it.

    ``parse``: argparse type (default: the type of ``default``, str for None; booleans get
    ``--x/--no-x``);
    ``flag``: the flag name when it is not ``--field-name``; ``assign``: the fields a parsed value
    sets, when it sets more than its own; ``no_flag``: why the field has no flag of its own.
    """
    metadata = {"help": help, "choices": choices, "parse": parse, "flag": flag, "metavar": metavar,
                "assign": assign, "no_flag": no_flag}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_of(f: Field) -> str:
    """The command-line flag of field ``f`` (``--f-scale`` for ``f_scale``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@dataclass
class TrainingConfig:
    """Optimization, seeds, controls, precision and bookkeeping."""

    epochs: int = option(100, "training epochs")
    batch_size: int = option(64, "samples per update")
    optimizer: str = option("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float = option(0.1, "learning rate eta (default: the rule's, listed below)")
    hidden_lr_scale: float = option(
        1.0, "every parameter but the readout's learns at lr x this (default 1, or the rule's with "
        "--neuron lif, listed below)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(0.0, "L2 decay of forward weights (and of R for PFA, B for KP)")
    weight_decay_after_first_epoch: float | None = option(
        None, "weight decay from epoch 2 on; --weight-decay is then epoch 1's (PFA paper, App. 1.1)",
        parse=float, metavar="WD")
    lr_milestones: list[int] = option(
        [60, 90], "epochs after which lr is multiplied by --lr-gamma (default 60,90; none: constant)",
        parse=parse_milestones, metavar="E1,E2")
    lr_gamma: float = option(0.1, "learning-rate decay factor at each milestone")
    seeds: int = option(1, "number of seeds (seed, seed+1, ...)")
    seed: int = option(0, "first seed")
    seed_batch: bool = option(
        False, "train the --seeds at once as one batched model (same results as one after another)")
    # controls (design.md "Controls")
    freeze_hidden: bool = option(
        False, "keep hidden weights, biases and plastic feedback (PFA's R, KP's B, mirrored B/F) at "
        "their initial values; only the readout layer learns (the frozen-hidden control on its own)")
    control: bool = option(
        False, "after the run, train its frozen-hidden control (same seed, samples and schedule) into "
        "<out>/control; summary.json gets control_test_accuracy and hidden_gain")
    amp: str | None = option(None, "run the forward passes under bf16 autocast (CUDA or CPU); "
                             "default: full precision", choices=("bf16",))
    device: str = option("cpu", "device", choices=("cpu", "cuda"))
    probe_batch: int = option(256, "training samples used for the per-epoch alignment and "
                              "update-angle figures")
    max_loss: float = option(1e4, "a training loss above this (or non-finite) stops the run")


@dataclass
class DataConfig:
    """The data set."""

    dataset: str = option("digits", "data set (listed below; default digits)",
                          choices=(*DATASETS, *STREAMED_DATASETS), metavar="D")
    data_dir: str | None = option(None, "folder holding the data set files (default: search the "
                                  "usual places)")


@dataclass
class NetworkConfig:
    """Architecture, neurons, nonlinearities and initialization."""

    arch: str = option(
        "fc", "hidden sizes: 1024, 512-512 or 2x1024 (default 1024; 32 with --neuron lif on "
        "digits), or a conv net: "
        f"{', '.join(a for a in ARCHS if a != 'fc')}", parse=parse_arch, assign=_arch_values)
    hidden: list[int] = option([1024], "hidden layer sizes (arch fc only)",
                               no_flag="set through --arch (1024, 512-512, 2x1024)")
    neuron: str = option("rate", "rate neurons or leaky integrate-and-fire neurons (snnTorch; rules "
                         f"{', '.join(rules_with('lif'))}; bp: surrogate-gradient BPTT)",
                         choices=NEURONS)
    activation: str = option("relu", "hidden nonlinearity phi (default relu, or the rule's)",
                             choices=ACTIVATIONS)
    output: str = option("softmax", "output nonlinearity; softmax and sigmoid pair with (binary) "
                         "cross-entropy (default softmax, or the rule's)", choices=OUTPUTS)
    init: str = option("he_uniform", "forward weight initialization", choices=INITS)
    feedback_init: str = option("he_uniform", "FA/DFA/DRTP feedback initialization", choices=INITS)
    bias: bool = option(False, "forward layers have biases")
    dropout: float = option(0.1, "drop rate after each hidden layer (mask reused in PEPITA's 2nd pass)")
    normalize_activations: bool = option(
        False, "normalize hidden activities h_l <- h_l / ||h_l|| (Hinton 2022; Srinivasan 2023)",
        flag="--normalize")


@dataclass
class PepitaConfig:
    """The PEPITA family's feedback matrix F and input modulation."""

    f_scale: float = option(0.05, "F entries U(+-f_scale sqrt(6/D)) or N(0, (f_scale sqrt(2/D))^2); "
                            "0.05 in the papers")
    f_distribution: str = option("uniform", "F entries: uniform (He uniform) or normal (He normal)",
                                 choices=("uniform", "normal"))
    modulation_sign: float | None = option(
        None, "phase-2 input x + s F e: +1 (Dellaferrera 2022), -1 (Srinivasan 2023); default: the "
        "rule's (-1 for pepita-wm, else +1)", parse=float, choices=(1.0, -1.0))
    random_perturbation_k: float = option(0.1, "pepita-random: input + F (k r), r ~ U[0,1)")


@dataclass
class MirrorConfig:
    """Weight mirroring (weight-mirror, pepita-wm)."""

    wm_lr: float = option(0.1, "mirror-mode learning rate eta_WM")
    wm_weight_decay: float | None = option(
        None, "mirror decay lambda_WM; default: s^2 for weight-mirror (so B -> W^T), 0 for pepita-wm "
        "(its sigma_F normalization bounds F)", parse=float)
    wm_noise_std: float = option(1.0, "std s of the mirror-mode noise xi")
    pre_mirror_epochs: int = option(0, "epochs of mirror mode before training (pre-mirroring)")


@dataclass
class PFAConfig:
    """Product feedback alignment (pfa, pfa-o)."""

    pfa_expansion: float = option(10.0, "expansion ratio 1/lambda = Nbar_l / N_{l+1}")


@dataclass
class LIFConfig:
    """Spiking mode (--neuron lif, rate_models/spiking): snnTorch LIF neurons, potentials in units
    of the threshold, time in steps of dt."""

    num_steps: int = option(25, "steps T each sample is presented for")
    dt: float = option(1e-3, "step length in seconds (spikes per step to rates in Hz)")
    beta: float = option(0.95, "membrane decay per step exp(-dt/tau_mem) (tau_mem = 19.5 ms at dt = 1 ms)")
    threshold: float = option(1.0, "firing threshold theta (reset by subtraction)")
    encoder: str = option("rate", "input spikes: Bernoulli per step, one latency spike, or a "
                          "constant current", choices=ENCODERS)
    surrogate_slope: float = option(25.0, "k of the fast-sigmoid surrogate 1/(1 + k|U - theta|)^2")
    input_baseline: float | None = option(
        None, "show intensity x as b + (1-b) x; default 0.1 for pepita (spike probabilities need room "
        "below dark pixels for x + F e, as in the circuits), else 0", parse=float)


@dataclass
class StreamingConfig:
    """Data streamed from a DataLoader (always for imagenet, rate_models/imagenet.py)."""

    stream: bool = option(False, "stream batches from a DataLoader instead of holding the data set "
                          "on the device (always on for imagenet)")
    workers: int = option(4, "DataLoader processes decoding streamed batches (0: decode in the "
                          "training process)")
    image_size: int = option(224, "imagenet: side of the square crops (224 as in the papers; e.g. 64 "
                             "for quick CPU runs)")


# RunConfig attribute -> section class, in the order of config.json and `neurosim train --help`
SECTIONS: dict[str, type] = {
    "data": DataConfig, "network": NetworkConfig, "training": TrainingConfig, "pepita": PepitaConfig,
    "mirror": MirrorConfig, "pfa": PFAConfig, "lif": LIFConfig, "streaming": StreamingConfig,
}
# field name -> the section holding it (names are unique across sections)
FIELD_SECTIONS: dict[str, str] = {f.name: name for name, cls in SECTIONS.items() for f in fields(cls)}


def _section(cls: type, given) -> object:
    """A fresh section of class ``cls`` from a section, a dict of its fields, or None (defaults)."""
    if given is None:
        return cls()
    if isinstance(given, dict):
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**copy.deepcopy(given))
    return copy.deepcopy(given)


# Hidden neurons of the spiking forms (LIF networks, Brian2 circuits) on digits. Digits has 64
# inputs: a readout of 256-1024 random hidden features already reaches 92-97% on it, so that no
# rule's hidden learning can show above its frozen-hidden control; through 32 neurons the control
# reaches 71-88% and learned features clearly more (docs/results.md).
SPIKING_DIGITS_HIDDEN = 32


def data_defaults(neuron: str, dataset: str) -> dict:
    """Defaults that depend on the data set: a LIF network on digits has
    ``SPIKING_DIGITS_HIDDEN`` hidden neurons instead of 1024."""
    return {"hidden": [SPIKING_DIGITS_HIDDEN]} if neuron == "lif" and dataset == "digits" else {}


@dataclass(init=False)
class RunConfig:
    """A training run's configuration: the rule, the preset applied and the sections.

    ``RunConfig(**values)`` takes sections (objects or dicts) and flat field names, routed into
    their sections after them: ``RunConfig(rule="dfa", hidden=[32], neuron="lif")``.
    """

    rule: str = option("pepita", "learning rule (listed below; default pepita)",
                       choices=rules_with("rate"), metavar="R")
    preset: str | None = option(None, "paper hyperparameters (listed below), applied over the rule's "
                                "defaults; flags win over both", choices=tuple(PRESETS), metavar="P")
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pepita: PepitaConfig = field(default_factory=PepitaConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)
    pfa: PFAConfig = field(default_factory=PFAConfig)
    lif: LIFConfig = field(default_factory=LIFConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)

    def __init__(self, **values) -> None:
        for f in run_fields():
            setattr(self, f.name, values.pop(f.name, f.default))
        for name, cls in SECTIONS.items():
            setattr(self, name, _section(cls, values.pop(name, None)))
        self.update(**values)
        if self.pepita.modulation_sign is None:  # the rule's sign (its spec), else x + F e
            spec = RULES.get(self.rule)
            self.pepita.modulation_sign = spec.fixed.get("modulation_sign", 1.0) if spec else 1.0

    def update(self, **values) -> None:
        """Set fields by their flat names (``lr=0.01``), each in its section; a ValueError names
        unknown ones."""
        unknown = [k for k in values if k not in FIELD_SECTIONS and k not in ("rule", "preset")]
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        for name, value in values.items():
            setattr(getattr(self, FIELD_SECTIONS[name]) if name in FIELD_SECTIONS else self, name, value)

    @classmethod
    def for_rule(cls, rule: str, **values) -> "RunConfig":
        """A configuration of ``rule`` with its defaults (``neurosim.rules``: the paper's learning
        rate and fixed nonlinearities; LIF ones with ``neuron="lif"``; :func:`data_defaults`) and
        then ``values``, as ``neurosim train --rule RULE`` resolves it without a preset."""
        neuron = values.get("neuron", "rate")
        return cls(**{"rule": rule, **get_rule(rule).defaults(neuron),
                      **data_defaults(neuron, values.get("dataset", DataConfig().dataset)), **values})

    def to_dict(self) -> dict:
        """The configuration as ``config.json`` holds it: rule, preset, one dict per section."""
        return asdict(self)

    def flat(self) -> dict:
        """Every field by its flat name (the layout of older ``config.json`` files)."""
        return {"rule": self.rule, "preset": self.preset,
                **{f.name: getattr(getattr(self, section), f.name) for section, f in section_fields()}}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Read :meth:`to_dict`'s layout, the flat layout of older run folders, or a mix (flat
        names then override their sections' values)."""
        return cls(**d)

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and the fix."""
        get_rule(self.rule)
        for section, f in section_fields():
            value = getattr(getattr(self, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"invalid configuration: {f.name} is {value} ({flag_of(f)}); "
                                 "give a finite number")
        t, n, s = self.training, self.network, self.streaming
        checks = [
            (n.arch in ARCHS, f"arch must be one of {ARCHS}"),
            (n.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}"),
            (n.output in OUTPUTS, f"output must be one of {OUTPUTS}"),
            (n.init in INITS and n.feedback_init in INITS, f"init must be one of {INITS}"),
            (all(h > 0 for h in n.hidden), "hidden sizes must be positive integers"),
            (0.0 <= n.dropout < 1.0, "dropout must be in [0, 1) (--dropout)"),
            (t.epochs >= 1, "epochs must be >= 1 (--epochs)"),
            (t.batch_size >= 1, "batch size must be >= 1 (--batch-size)"),
            (t.lr > 0, "learning rate must be > 0 (--lr)"),
            (t.hidden_lr_scale > 0, "hidden_lr_scale must be > 0 (--hidden-lr-scale; to keep the "
             "hidden layers fixed use --freeze-hidden)"),
            (0.0 <= t.momentum < 1.0, f"momentum must be in [0, 1), got {t.momentum:g} (--momentum)"),
            (t.weight_decay >= 0 and (t.weight_decay_after_first_epoch or 0.0) >= 0,
             "weight decay must be >= 0 (--weight-decay, --weight-decay-after-first-epoch)"),
            (t.seed >= 0, f"seed must be >= 0, got {t.seed} (--seed; seeds are non-negative integers)"),
            (t.max_loss > 0, "max_loss must be > 0"),
            (0 < t.lr_gamma <= 1, "lr_gamma must be in (0, 1] (--lr-gamma)"),
            (t.seeds >= 1, "seeds must be >= 1 (--seeds)"),
            (t.optimizer in OPTIMIZERS, "optimizer must be 'sgd' or 'adam'"),
            (self.pepita.f_distribution in ("uniform", "normal"), "f_distribution must be uniform|normal"),
            (self.pfa.pfa_expansion > 0, "pfa_expansion must be > 0"),
            (self.mirror.pre_mirror_epochs >= 0, "pre_mirror_epochs must be >= 0"),
            (t.amp in (None, "bf16"), "amp must be 'bf16' or None (--amp bf16)"),
            (n.neuron in NEURONS, f"neuron must be one of {NEURONS} (--neuron)"),
            (s.workers >= 0, "workers must be >= 0"),
            (s.image_size >= 8, "image_size must be >= 8 pixels"),
            (not (t.seed_batch and (s.stream or self.data.dataset in STREAMED_DATASETS)),
             "--seed-batch needs a resident data set; streamed runs train their seeds one after another"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid configuration: {message}")
        if n.neuron == "lif":
            self._validate_lif()
        if n.arch == "fc" and not n.hidden and self.rule not in ("bp",):
            raise ValueError(f"rule {self.rule!r} needs at least one hidden layer (--arch)")
        self._validate_controls()

    def _validate_controls(self) -> None:
        """--freeze-hidden and --control need hidden layers; --control compares a learning hidden
        layer with a frozen one, so it excludes --freeze-hidden and rules whose hidden layers never
        learn."""
        t, n = self.training, self.network
        flag = "--control" if t.control else "--freeze-hidden"
        if (t.control or t.freeze_hidden) and n.arch == "fc" and not n.hidden:
            raise ValueError(f"invalid configuration: {flag} freezes the hidden layers, and this "
                             "network has none; give hidden layers (--arch 1024) or drop the flag")
        if t.control and t.freeze_hidden:
            raise ValueError("invalid configuration: --control trains a frozen-hidden control beside "
                             "a run whose hidden layers learn; with --freeze-hidden there is nothing "
                             "to compare: drop one of the two flags")
        if t.control and self.rule == "pepita-f0":
            raise ValueError("invalid configuration: pepita-f0 (F = 0) is itself PEPITA's frozen-hidden "
                             "control; use --rule pepita --control, or drop --control")

    def baseline(self) -> float:
        """The LIF input baseline b: ``input_baseline``, or its rule default when None."""
        if self.lif.input_baseline is not None:
            return self.lif.input_baseline
        return 0.1 if self.rule == "pepita" else 0.0

    def _validate_lif(self) -> None:
        lif_rules = rules_with("lif")
        n, lif = self.network, self.lif
        checks = [
            (self.rule in lif_rules, f"--neuron lif trains the rules {', '.join(lif_rules)}, not {self.rule!r}"),
            ((n.arch == "fc" and bool(n.hidden)) or n.arch in LIF_CONV_ARCHS,
             "--neuron lif needs a fully connected net with hidden layers (--arch 1000 or 500-500) "
             f"or one of {', '.join(LIF_CONV_ARCHS)}"),
            (not (self.training.seed_batch and n.arch != "fc"),
             "--seed-batch covers fully connected LIF networks; train conv seeds one after another"),
            (not n.bias, "LIF networks have no biases: drop bias from the configuration"),
            (n.activation == "relu" and not n.normalize_activations,
             "LIF neurons spike: --activation and --normalize are for rate neurons; drop them"),
            (n.output in ("softmax", "sigmoid"),
             "the LIF readout is a softmax or sigmoid of mean potentials: use --output softmax|sigmoid"),
            (lif.num_steps >= 1, "num_steps must be >= 1 (--num-steps)"),
            (lif.dt > 0, "dt must be > 0 seconds (--dt)"),
            (0.0 < lif.beta <= 1.0, "beta must be in (0, 1] (--beta; 1 is a non-leaky integrate-and-fire)"),
            (lif.threshold > 0, "threshold must be > 0 (--threshold)"),
            (lif.encoder in ENCODERS, f"encoder must be one of {ENCODERS} (--encoder)"),
            (lif.surrogate_slope > 0, "surrogate_slope must be > 0 (--surrogate-slope)"),
            (0.0 <= self.baseline() < 1.0, "input_baseline must be in [0, 1) (--input-baseline)"),
            (self.training.amp is None, "--amp is not available with --neuron lif (spikes need full precision)"),
            (not self.streaming.stream and self.data.dataset not in STREAMED_DATASETS,
             "--neuron lif needs a resident data set (no --stream, no imagenet)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid configuration: {message}")


def section_fields() -> Iterator[tuple[str, Field]]:
    """(section attribute, field) for every sectioned field, in declaration order."""
    for name, cls in SECTIONS.items():
        for f in fields(cls):
            yield name, f


def run_fields() -> Iterator[Field]:
    """The fields declared on :class:`RunConfig` itself (``rule``, ``preset``)."""
    return (f for f in fields(RunConfig) if f.name not in SECTIONS)
