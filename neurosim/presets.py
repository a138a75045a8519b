"""Paper hyperparameters, so that one flag reproduces a table column.

A preset is a dict of :class:`neurosim.config.RunConfig` overrides, plus ``per_rule`` overrides
(learning rate, nonlinearities) that depend on the chosen rule. Flags given on the command line win
over the preset.
"""

from __future__ import annotations

_DRTP_ACTS = {"activation": "tanh", "output": "sigmoid"}  # PEPITA paper Sec. 4.1 for DRTP
# DRTP paper Sec. 4 (synthetic tasks): forward weights zero-initialized for the FA-based rules
_ZERO_INIT_FOR_FEEDBACK_RULES = {r: {"init": "zeros"} for r in ("fa", "dfa", "sdfa", "drtp")}

PRESETS: dict[str, dict] = {
    # Dellaferrera & Kreiman 2022, Table 2 (fully connected, MNIST column) -> Table 1
    "pepita2022-mnist": {
        "source": "Dellaferrera & Kreiman 2022, Tables 1-2 (FC 1x1024, MNIST)",
        "config": {"dataset": "mnist", "hidden": [1024], "activation": "relu", "output": "softmax",
                   "init": "he_uniform", "bias": False, "dropout": 0.1, "epochs": 100, "batch_size": 64,
                   "optimizer": "sgd", "momentum": 0.9, "lr_milestones": [60], "lr_gamma": 0.1,
                   "f_scale": 0.05, "f_distribution": "uniform", "feedback_init": "he_uniform"},
        "per_rule": {"bp": {"lr": 0.1}, "fa": {"lr": 0.1}, "drtp": {"lr": 0.01, **_DRTP_ACTS},
                     "pepita": {"lr": 0.1}, "pepita-f0": {"lr": 0.1}, "pepita-random": {"lr": 0.1}},
    },
    "pepita2022-cifar10": {
        "source": "Dellaferrera & Kreiman 2022, Tables 1-2 (FC 1x1024, CIFAR-10)",
        "config": {"dataset": "cifar10", "hidden": [1024], "activation": "relu", "output": "softmax",
                   "init": "he_uniform", "dropout": 0.1, "epochs": 100, "batch_size": 64,
                   "momentum": 0.9, "lr_milestones": [60, 90], "lr_gamma": 0.1, "f_scale": 0.05},
        "per_rule": {"bp": {"lr": 0.01}, "fa": {"lr": 0.001}, "drtp": {"lr": 0.001, **_DRTP_ACTS},
                     "pepita": {"lr": 0.01}, "pepita-f0": {"lr": 0.01}, "pepita-random": {"lr": 0.01}},
    },
    "pepita2022-cifar100": {
        "source": "Dellaferrera & Kreiman 2022, Tables 1-2 (FC 1x1024, CIFAR-100)",
        "config": {"dataset": "cifar100", "hidden": [1024], "activation": "relu", "output": "softmax",
                   "init": "he_uniform", "dropout": 0.1, "epochs": 100, "batch_size": 64,
                   "momentum": 0.9, "lr_milestones": [60, 90], "lr_gamma": 0.1, "f_scale": 0.05},
        "per_rule": {"bp": {"lr": 0.01}, "fa": {"lr": 0.001}, "drtp": {"lr": 0.001, **_DRTP_ACTS},
                     "pepita": {"lr": 0.01}},
    },
    # Srinivasan et al. 2023, Table 4 (1 hidden layer) and Table 5 (2, 3 hidden layers)
    "srinivasan2023-mnist": {
        "source": "Srinivasan et al. 2023, Table 4 (FC 1x1024, MNIST, He normal)",
        "config": {"dataset": "mnist", "hidden": [1024], "init": "he_normal", "f_distribution": "normal",
                   "dropout": 0.1, "epochs": 100, "batch_size": 64, "momentum": 0.9,
                   "lr_milestones": [60, 90], "lr_gamma": 0.1, "f_scale": 0.05,
                   "wm_lr": 0.1, "wm_weight_decay": 0.0},
        "per_rule": {"bp": {"lr": 0.1}, "fa": {"lr": 0.1}, "drtp": {"lr": 0.01, **_DRTP_ACTS},
                     "pepita": {"lr": 0.1}, "pepita-hebbian": {"lr": 0.1}, "pepita-afa": {"lr": 0.1},
                     "pepita-wm": {"lr": 0.1, "modulation_sign": -1.0}},
    },
    "srinivasan2023-mnist-wd": {
        "source": "Srinivasan et al. 2023, Table 4 (PEPITA + weight decay 1e-5, MNIST)",
        "config": {"dataset": "mnist", "hidden": [1024], "init": "he_normal", "f_distribution": "normal",
                   "dropout": 0.1, "epochs": 100, "batch_size": 64, "momentum": 0.9,
                   "lr_milestones": [60, 90], "lr_gamma": 0.1, "weight_decay": 1e-5},
        "per_rule": {"pepita": {"lr": 0.1}, "pepita-wm": {"lr": 0.1, "modulation_sign": -1.0}},
    },
    "srinivasan2023-mnist-norm": {
        "source": "Srinivasan et al. 2023, Table 4 (PEPITA + activation normalization, MNIST)",
        "config": {"dataset": "mnist", "hidden": [1024], "init": "he_normal", "f_distribution": "normal",
                   "dropout": 0.1, "epochs": 100, "batch_size": 64, "momentum": 0.9,
                   "normalize_activations": True, "lr_milestones": [60, 90], "lr_gamma": 0.5,
                   "wm_lr": 0.001, "wm_weight_decay": 0.1},
        "per_rule": {"pepita": {"lr": 100.0}, "pepita-wm": {"lr": 100.0, "modulation_sign": -1.0}},
    },
    "srinivasan2023-mnist-2x1024": {
        "source": "Srinivasan et al. 2023, Table 5 (FC 2x1024, MNIST)",
        "config": {"dataset": "mnist", "hidden": [1024, 1024], "init": "he_normal",
                   "f_distribution": "normal", "dropout": 0.1, "epochs": 100, "batch_size": 64,
                   "momentum": 0.9, "lr_milestones": [60, 90], "lr_gamma": 0.1,
                   "wm_lr": 1e-5, "wm_weight_decay": 0.0},
        "per_rule": {"bp": {"lr": 0.1}, "fa": {"lr": 0.1}, "drtp": {"lr": 0.001, **_DRTP_ACTS},
                     "pepita": {"lr": 0.1}, "pepita-wm": {"lr": 0.1, "modulation_sign": -1.0}},
    },
    # Frenkel et al. 2021 (DRTP): MNIST FC1-1000 tanh, sigmoid output, BCE, Adam, batch 60
    "drtp2021-mnist": {
        "source": "Frenkel et al. 2021, Table 1 (FC1-1000 tanh, sigmoid output, Adam, 100 epochs)",
        "config": {"dataset": "mnist", "hidden": [1000], "activation": "tanh", "output": "sigmoid",
                   "init": "he_uniform", "feedback_init": "he_uniform", "bias": True, "dropout": 0.0,
                   "epochs": 100, "batch_size": 60, "optimizer": "adam", "lr_milestones": []},
        # Table 3 (FC1, MNIST) as far as the text copy of the table can be read: BP 1.5e-4,
        # DFA 1.5e-4, sDFA 5e-4, DRTP 5e-4; FA's cell is unreadable there (1.5e-4 assumed).
        "per_rule": {"bp": {"lr": 1.5e-4}, "fa": {"lr": 1.5e-4}, "dfa": {"lr": 1.5e-4},
                     "sdfa": {"lr": 5e-4}, "drtp": {"lr": 5e-4}},
    },
    "drtp2021-classification": {
        "source": "Frenkel et al. 2021, Sec. 4 (make_classification, 256-500-500-10, BCE, lr 5e-4)",
        "config": {"dataset": "drtp-classification", "hidden": [500, 500], "activation": "tanh",
                   "output": "sigmoid", "bias": True, "dropout": 0.0, "epochs": 500, "batch_size": 50,
                   "optimizer": "sgd", "momentum": 0.0, "lr": 5e-4, "lr_milestones": []},
        "per_rule": _ZERO_INIT_FOR_FEEDBACK_RULES,
    },
    "drtp2021-regression": {
        "source": "Frenkel et al. 2021, Sec. 4 (10 cosines, 256-100-100-10 tanh, MSE, lr 5e-4)",
        "config": {"dataset": "cosine-regression", "hidden": [100, 100], "activation": "tanh",
                   "output": "tanh", "bias": True, "dropout": 0.0, "epochs": 500, "batch_size": 50,
                   "optimizer": "sgd", "momentum": 0.0, "lr": 5e-4, "lr_milestones": []},
        "per_rule": _ZERO_INIT_FOR_FEEDBACK_RULES,
    },
    # Li Ji-An & Benna, Appendix 1.1.1 (MNIST 784-512-512-10 ReLU)
    "pfa-mnist": {
        "source": "Li Ji-An & Benna, Appendix 1.1.1 (784-512-512-10, 40 epochs, 5 seeds)",
        "config": {"dataset": "mnist", "hidden": [512, 512], "activation": "relu", "output": "softmax",
                   "init": "glorot_uniform", "feedback_init": "glorot_uniform", "bias": True,
                   "dropout": 0.0, "epochs": 40, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9,
                   "lr": 0.01, "lr_milestones": [20, 30], "lr_gamma": 0.5, "weight_decay": 1e-4,
                   "pfa_expansion": 10.0, "seeds": 5},
        "per_rule": {"pfa": {"weight_decay": 0.03, "weight_decay_after_first_epoch": 1e-4},
                     "pfa-o": {"weight_decay": 0.03, "weight_decay_after_first_epoch": 1e-4}},
    },
    # Li Ji-An & Benna, Appendix 1.1.2 (ResNet-20 on CIFAR-10)
    "pfa-resnet20-cifar10": {
        "source": "Li Ji-An & Benna, Appendix 1.1.2 (ResNet-20, CIFAR-10, 200 epochs, 5 seeds)",
        "config": {"dataset": "cifar10", "arch": "resnet20", "init": "glorot_uniform",
                   "feedback_init": "glorot_uniform", "epochs": 200, "batch_size": 128,
                   "optimizer": "sgd", "momentum": 0.9, "lr": 0.1, "lr_milestones": [100, 150, 200],
                   "lr_gamma": 0.1, "weight_decay": 1e-4, "pfa_expansion": 10.0, "seeds": 5},
        "per_rule": {"dfa": {"lr": 1e-4},
                     "pfa": {"weight_decay": 0.005, "weight_decay_after_first_epoch": 1e-4},
                     "pfa-o": {"weight_decay": 0.005, "weight_decay_after_first_epoch": 1e-4}},
    },
}


def apply_preset(name: str, rule: str) -> dict:
    """The overrides of preset ``name`` for ``rule`` (config values then per-rule values)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return {**preset["config"], **preset["per_rule"].get(rule, {}), "preset": name}
