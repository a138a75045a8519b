"""The rate backend's update for a circuit's weights: the oracle a circuit is checked against.

The circuit's network is the rate network ``x -> phi(W_1 x) -> sigmoid(W_2 h_1)`` without
biases (``phi`` the circuit's ``hidden_activation``), trained with binary cross-entropy (so
``dJ/da_2 = p - y* = e``), one sample per update, plain SGD: ``W <- W - eta dW``.
:func:`rate_updates` returns ``-eta dW`` of the rate rule for each sample at fixed weights, in float64.
"""

from __future__ import annotations

import numpy as np

from circuits import CIRCUITS
from neurosim.circuit_params import CircuitParams
from neurosim.config import RunConfig

ETA_FIELDS = {"W1": "eta_hidden", "W2": "eta_output", "R": "eta_feedback"}


def rate_config(rule: str, sizes: list[int], params: CircuitParams) -> RunConfig:
    """The rate-backend configuration with the circuit's architecture and feedback settings."""
    return RunConfig(rule=CIRCUITS[rule].rate_rule, hidden=[sizes[1]], activation=params.hidden_activation,
                     output="sigmoid", bias=False, init="he_uniform", dropout=0.0, batch_size=1,
                     momentum=0.0, f_scale=params.f_scale, modulation_sign=params.modulation_sign,
                     pfa_expansion=params.pfa_expansion, feedback_init=params.feedback_init)


def rate_updates(rule: str, sizes: list[int], params: CircuitParams, seed: int,
                 weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample updates ``-eta dW`` of the rate rule at ``weights`` ("W1", "W2", optionally
    "R"), shape ``(n_samples, *matrix.shape)``."""
    import torch

    from rate_models.architectures import FCNetwork
    from rate_models.rules import build_rule

    cfg = rate_config(rule, sizes, params)
    net = FCNetwork(sizes, params.hidden_activation, "sigmoid", 0.0, False, "he_uniform", seed).double()
    rate_rule = build_rule(cfg.rule, net, cfg, seed).double()
    plastic = {"W1": net.weights[0], "W2": net.weights[1]}
    if "R" in weights:
        plastic["R"] = rate_rule.Rs[0]
    with torch.no_grad():
        for name, p in plastic.items():
            p.copy_(torch.as_tensor(weights[name]))
    out = {name: [] for name in plastic}
    xs, ys = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    for n in range(len(xs)):
        for p in plastic.values():
            p.grad = None
        rate_rule.compute_grads(xs[n:n + 1], ys[n:n + 1], [None])
        for name, p in plastic.items():
            out[name].append(-getattr(params, ETA_FIELDS[name]) * p.grad.numpy().copy())
    return {name: np.stack(v) for name, v in out.items()}
