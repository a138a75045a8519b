"""The configuration of a training run: every hyperparameter, with its meaning.

A run's ``config.json`` is this dataclass resolved (defaults, then a preset, then flags), so a
run folder alone says how to reproduce it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
# network architectures: "fc" (hidden sizes from `hidden`) or a convolutional one
# (rate_models/architectures.py; a test keeps the two lists equal)
ARCHS = ("fc", "pepita-conv", "drtp-conv-mnist", "drtp-conv-cifar10", "resnet20", "resnet18")
NEURONS = ("rate", "lif")
LIF_CONV_ARCHS = ("pepita-conv", "drtp-conv-mnist", "drtp-conv-cifar10")  # plain conv nets, also spiking
ENCODERS = ("rate", "latency", "current")
OUTPUTS = ("softmax", "sigmoid", "tanh", "linear")
# data sets too large to hold on the device: always streamed from a DataLoader (rate_models/imagenet.py)
STREAMED_DATASETS = {
    "imagenet": "ImageNet class folders <data-dir>/{train,val}/<wnid>/*.JPEG, streamed with augmentation",
}


@dataclass
class RunConfig:
    rule: str = "pepita"  # learning rule, see `neurosim train --help`
    dataset: str = "digits"  # data set name (neurosim.datasets.DATASETS)
    data_dir: str | None = None  # folder holding the data set files (None: search defaults)
    arch: str = "fc"  # "fc" (layers from `hidden`) or a conv net: pepita-conv, drtp-conv-*, resnet20/18
    hidden: list[int] = field(default_factory=lambda: [1024])  # hidden layer sizes (arch "fc" only)
    activation: str = "relu"  # hidden nonlinearity phi
    output: str = "softmax"  # output nonlinearity; softmax/sigmoid pair with (binary) cross-entropy
    init: str = "he_uniform"  # forward weight initialization (neurosim.feedback.INITS)
    bias: bool = False  # forward layers have biases
    dropout: float = 0.1  # drop rate after each hidden layer (mask reused in PEPITA's 2nd pass)
    epochs: int = 100  # training epochs
    batch_size: int = 64  # samples per update
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.1  # learning rate eta
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 decay of forward weights (and of R for PFA, B for KP)
    weight_decay_after_first_epoch: float | None = None  # PFA appendix: decay drops after epoch 1
    lr_milestones: list[int] = field(default_factory=lambda: [60, 90])  # epochs where lr *= lr_gamma
    lr_gamma: float = 0.1  # learning-rate decay factor
    seeds: int = 1  # number of seeds (seed, seed+1, ...)
    seed: int = 0  # first seed
    seed_batch: bool = False  # train the seeds at once as one batched model (same results)
    # controls (design.md "Controls"): hidden weights and biases and plastic feedback (PFA's R,
    # KP's B, mirrored B/F) stay at their initial values; only the readout's weight and bias learn
    freeze_hidden: bool = False
    control: bool = False  # also train the frozen-hidden control (same seed, samples, schedule)
    amp: str | None = None  # "bf16": forward passes under bf16 autocast; None: full precision
    stream: bool = False  # stream batches from a DataLoader instead of holding the data set on the device
    workers: int = 4  # DataLoader processes decoding streamed batches; 0: decode in the training process
    image_size: int = 224  # side of the square ImageNet crops (224 as in the papers; smaller for quick runs)
    feedback_init: str = "he_uniform"  # FA/DFA/DRTP feedback initialization
    # PEPITA family
    f_scale: float = 0.05  # F entries: U(±f_scale·sqrt(6/D)) or N(0, (f_scale·sqrt(2/D))²)
    f_distribution: str = "uniform"  # "uniform" (He uniform) or "normal" (He normal)
    modulation_sign: float = 1.0  # +1: x + F e (Dellaferrera 2022); -1: x - F e (Srinivasan 2023)
    random_perturbation_k: float = 0.1  # pepita-random: input + F (k r), r ~ U[0,1)
    normalize_activations: bool = False  # h_l <- h_l / ||h_l|| for hidden layers (Hinton 2022)
    # weight mirroring (weight-mirror, pepita-wm)
    wm_lr: float = 0.1  # mirror-mode learning rate eta_WM
    wm_weight_decay: float | None = None  # mirror decay lambda_WM; None: s^2 for weight-mirror
    # (so B -> W^T), 0 for pepita-wm (its sigma_F normalization bounds F)
    wm_noise_std: float = 1.0  # std of the mirror-mode noise xi
    pre_mirror_epochs: int = 0  # epochs of mirror mode before training (pre-mirroring)
    # PFA
    pfa_expansion: float = 10.0  # expansion ratio 1/lam = Nbar_l / N_{l+1}
    # spiking mode (--neuron lif, rate_models/spiking): snnTorch LIF neurons, potentials in units
    # of the threshold, time in steps of dt
    neuron: str = "rate"  # "rate" (rate networks) or "lif" (leaky integrate-and-fire networks)
    num_steps: int = 25  # T: steps each sample is presented for
    dt: float = 1e-3  # step length in seconds (converts spikes per step to Hz in the statistics)
    beta: float = 0.95  # membrane decay per step, exp(-dt/tau_mem) (tau_mem = 19.5 ms at dt = 1 ms)
    threshold: float = 1.0  # firing threshold theta (reset by subtraction)
    encoder: str = "rate"  # input spikes: "rate" (Bernoulli per step), "latency" or "current"
    surrogate_slope: float = 25.0  # k of the fast-sigmoid surrogate 1/(1 + k|U - theta|)^2
    # input intensity x is shown as b + (1 - b) x; None: 0.1 for pepita (spike probabilities need
    # room below dark pixels for x + F e, as in the circuits), 0 for the other rules
    input_baseline: float | None = None
    # bookkeeping
    device: str = "cpu"  # "cpu" or "cuda"
    probe_batch: int = 256  # training samples used for per-epoch alignment/update-angle figures
    max_loss: float = 1e4  # a training loss above this (or non-finite) stops the run
    preset: str | None = None  # preset applied, if any

    @classmethod
    def for_rule(cls, rule: str, **values) -> "RunConfig":
        """A configuration of ``rule`` with its defaults (``neurosim.rules``: the paper's learning
        rate and fixed nonlinearities; LIF ones with ``neuron="lif"``) and then ``values``, as
        ``neurosim train --rule RULE`` resolves it without a preset."""
        from neurosim.rules import get_rule

        return cls(**{"rule": rule, **get_rule(rule).defaults(values.get("neuron", "rate")), **values})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and the fix."""
        from neurosim.feedback import INITS
        from neurosim.rules import get_rule

        get_rule(self.rule)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"invalid configuration: {f.name} is {value} (--{f.name.replace('_', '-')}); "
                                 "give a finite number")
        checks = [
            (self.arch in ARCHS, f"arch must be one of {ARCHS}"),
            (self.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}"),
            (self.output in OUTPUTS, f"output must be one of {OUTPUTS}"),
            (self.init in INITS and self.feedback_init in INITS, f"init must be one of {INITS}"),
            (all(h > 0 for h in self.hidden), "hidden sizes must be positive integers"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1) (--dropout)"),
            (self.epochs >= 1, "epochs must be >= 1 (--epochs)"),
            (self.batch_size >= 1, "batch size must be >= 1 (--batch-size)"),
            (self.lr > 0, "learning rate must be > 0 (--lr)"),
            (0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), got {self.momentum:g} (--momentum)"),
            (self.weight_decay >= 0 and (self.weight_decay_after_first_epoch or 0.0) >= 0,
             "weight decay must be >= 0 (--weight-decay, --weight-decay-after-first-epoch)"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed} (--seed; seeds are non-negative integers)"),
            (self.max_loss > 0, "max_loss must be > 0"),
            (0 < self.lr_gamma <= 1, "lr_gamma must be in (0, 1] (--lr-gamma)"),
            (self.seeds >= 1, "seeds must be >= 1 (--seeds)"),
            (self.optimizer in ("sgd", "adam"), "optimizer must be 'sgd' or 'adam'"),
            (self.f_distribution in ("uniform", "normal"), "f_distribution must be uniform|normal"),
            (self.pfa_expansion > 0, "pfa_expansion must be > 0"),
            (self.pre_mirror_epochs >= 0, "pre_mirror_epochs must be >= 0"),
            (self.amp in (None, "bf16"), "amp must be 'bf16' or None (--amp bf16)"),
            (self.neuron in NEURONS, f"neuron must be one of {NEURONS} (--neuron)"),
            (self.workers >= 0, "workers must be >= 0"),
            (self.image_size >= 8, "image_size must be >= 8 pixels"),
            (not (self.seed_batch and (self.stream or self.dataset in STREAMED_DATASETS)),
             "--seed-batch needs a resident data set; streamed runs train their seeds one after another"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid configuration: {message}")
        if self.neuron == "lif":
            self._validate_lif()
        if self.arch == "fc" and not self.hidden and self.rule not in ("bp",):
            raise ValueError(f"rule {self.rule!r} needs at least one hidden layer (--arch)")
        self._validate_controls()

    def _validate_controls(self) -> None:
        """--freeze-hidden and --control need hidden layers; --control compares a learning hidden
        layer with a frozen one, so it excludes --freeze-hidden and rules whose hidden layers never
        learn."""
        flag = "--control" if self.control else "--freeze-hidden"
        if (self.control or self.freeze_hidden) and self.arch == "fc" and not self.hidden:
            raise ValueError(f"invalid configuration: {flag} freezes the hidden layers, and this "
                             "network has none; give hidden layers (--arch 1024) or drop the flag")
        if self.control and self.freeze_hidden:
            raise ValueError("invalid configuration: --control trains a frozen-hidden control beside "
                             "a run whose hidden layers learn; with --freeze-hidden there is nothing "
                             "to compare: drop one of the two flags")
        if self.control and self.rule == "pepita-f0":
            raise ValueError("invalid configuration: pepita-f0 (F = 0) is itself PEPITA's frozen-hidden "
                             "control; use --rule pepita --control, or drop --control")

    def baseline(self) -> float:
        """The LIF input baseline b: ``input_baseline``, or its rule default when None."""
        if self.input_baseline is not None:
            return self.input_baseline
        return 0.1 if self.rule == "pepita" else 0.0

    def _validate_lif(self) -> None:
        from neurosim.rules import rules_with

        lif_rules = rules_with("lif")
        checks = [
            (self.rule in lif_rules, f"--neuron lif trains the rules {', '.join(lif_rules)}, not {self.rule!r}"),
            ((self.arch == "fc" and bool(self.hidden)) or self.arch in LIF_CONV_ARCHS,
             "--neuron lif needs a fully connected net with hidden layers (--arch 1000 or 500-500) "
             f"or one of {', '.join(LIF_CONV_ARCHS)}"),
            (not (self.seed_batch and self.arch != "fc"),
             "--seed-batch covers fully connected LIF networks; train conv seeds one after another"),
            (not self.bias, "LIF networks have no biases: drop bias from the configuration"),
            (self.activation == "relu" and not self.normalize_activations,
             "LIF neurons spike: --activation and --normalize are for rate neurons; drop them"),
            (self.output in ("softmax", "sigmoid"),
             "the LIF readout is a softmax or sigmoid of mean potentials: use --output softmax|sigmoid"),
            (self.num_steps >= 1, "num_steps must be >= 1 (--num-steps)"),
            (self.dt > 0, "dt must be > 0 seconds (--dt)"),
            (0.0 < self.beta <= 1.0, "beta must be in (0, 1] (--beta; 1 is a non-leaky integrate-and-fire)"),
            (self.threshold > 0, "threshold must be > 0 (--threshold)"),
            (self.encoder in ENCODERS, f"encoder must be one of {ENCODERS} (--encoder)"),
            (self.surrogate_slope > 0, "surrogate_slope must be > 0 (--surrogate-slope)"),
            (0.0 <= self.baseline() < 1.0, "input_baseline must be in [0, 1) (--input-baseline)"),
            (self.amp is None, "--amp is not available with --neuron lif (spikes need full precision)"),
            (not self.stream and self.dataset not in STREAMED_DATASETS,
             "--neuron lif needs a resident data set (no --stream, no imagenet)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid configuration: {message}")
