"""The measurements behind issue 14's LIF fixes, at initialisation on 512 MNIST training samples
(784-1000-10 LIF, 25 steps, rate encoder, no dropout, seed 0):

1. ``phi'`` scale: the mean of snnTorch's fast-sigmoid ``psi(U[t])`` over the active hidden
   neurons against their measured rate slope (extra spikes per step per unit of extra input
   current, from a 5% scaling of ``W_1`` on the same input spikes), the rule's ``rate_slope``
   and the readout gain ``G = mean_t xbar / rate``.
2. Balance: each layer's relative update ``|dW_l| / |W_l|`` per unit learning rate, spiking DFA
   and PEPITA against the rate rules on the rate network of the same weights.
3. PEPITA's noise: the angle between the spiking and the rate rule's ``W_1`` update (rate network
   ``h = relu(W_1 x' / theta)``, logits ``G W_2 h``, same feedback) for the modulation as input
   spike probabilities (independent or shared draws) and as a graded input (the rule's), at
   ``f_scale`` 0.05 and 0.2.

    python benchmarks/lif_mechanisms.py --data-dir DIR [--out benchmarks/results/lif_mechanisms.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from neurosim.config import RunConfig
from neurosim.datasets import load_dataset
from neurosim.metrics import angle_deg
from rate_models.data import to_split
from rate_models.architectures import FCNetwork
from rate_models.rules import build_rule
from rate_models.rules.pepita import modulated_input
from rate_models.spiking import LIFNetwork, build_lif_rule
from rate_models.spiking.updates import pepita_updates, rate_slope, surrogate_derivative


def lif_setup(rule: str, sizes, **kw):
    cfg = RunConfig(rule=rule, neuron="lif", hidden=sizes[1:-1], dropout=0.0, **kw)
    cfg.validate()
    net = LIFNetwork(sizes, cfg, 0)
    r = build_lif_rule(rule, net, cfg, 0)
    net.eval()
    return cfg, net, r


def rate_twin(rule: str, cfg, net, sizes):
    """The rate network of the same weights: ``W_1 / theta``, readout ``G W_2``."""
    G = float(np.mean([(1 - cfg.lif.beta ** t) / (1 - cfg.lif.beta) for t in range(1, cfg.lif.num_steps + 1)]))
    rn = FCNetwork(sizes, dropout=0.0, seed=0)
    with torch.no_grad():
        rn.weights[0].copy_(net.weights[0] / cfg.lif.threshold)
        rn.weights[1].copy_(net.weights[1] * G)
    rcfg = RunConfig(rule=rule, hidden=sizes[1:-1], dropout=0.0, f_scale=cfg.pepita.f_scale)
    rr = build_rule(rule, rn, rcfg, 0)
    rn.eval()
    return rn, rr


@torch.no_grad()
def pepita_spike_modulation(net, r, x, target, shared: bool) -> torch.Tensor:
    """W_1 update of PEPITA with the modulation as input spike probabilities ``x + F e``."""
    net.reset_evaluation_noise()
    state = net.eval_noise.get_state()
    clean = net.simulate(x)
    e = net.error(clean.logits, target)
    if shared:
        net.eval_noise.set_state(state)
    modulated = net.simulate(modulated_input(x, e, r.F, r.sign))
    return pepita_updates(clean, modulated, e)[0]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    d = load_dataset("mnist", data_dir=a.data_dir)
    s = to_split(d.x_train[:512], d.y_train[:512], 10, "cpu")
    sizes = [784, 1000, 10]
    out = {}

    cfg, net, _ = lif_setup("dfa", sizes)
    psis, slopes = [], []
    with torch.no_grad():
        def on_step(step):
            psis.append(surrogate_derivative(step.mems[0], cfg.lif.threshold, cfg.lif.surrogate_slope))
            slopes.append(rate_slope(step.mems[0], cfg.lif.threshold, cfg.lif.surrogate_slope))
        net.reset_evaluation_noise()
        p0 = net.simulate(s.x, on_step=on_step)
        net.weights[0].mul_(1.05)
        net.reset_evaluation_noise()
        p1 = net.simulate(s.x)
        net.weights[0].div_(1.05)
    r0 = p0.rates[1]
    active = (r0 > 0.05) & (r0 < 0.8)
    extra_current = 0.05 * (s.x @ net.weights[0].T).detach()
    out["mean_psi_active"] = float(torch.stack(psis).mean(0)[active].mean())
    out["mean_rate_slope_estimate_active"] = float(torch.stack(slopes).mean(0)[active].mean())
    out["measured_rate_slope_active"] = float((p1.rates[1] - r0)[active].sum() / extra_current[active].sum())
    out["readout_gain_G"] = float(p0.readout_input.sum() / r0.sum())

    for rule in ("dfa", "pepita"):
        cfg, net, r = lif_setup(rule, sizes)
        net.reset_evaluation_noise()
        r.compute_grads(s.x, s.target, [None])
        lif = [float(W.grad.norm() / W.norm()) for W in net.weights]
        rn = FCNetwork(sizes, dropout=0.0, seed=0)
        rr = build_rule(rule, rn, RunConfig(rule=rule, hidden=sizes[1:-1], dropout=0.0), 0)
        rn.eval()
        rr.compute_grads(s.x, s.target, [None])
        rate = [float(W.grad.norm() / W.norm()) for W in rn.weights]
        out[f"{rule}_relative_step"] = {"lif_hidden": lif[0], "lif_readout": lif[1],
                                         "rate_hidden": rate[0], "rate_readout": rate[1]}

    angles = {}
    for f in (0.05, 0.2):
        cfg, net, r = lif_setup("pepita", sizes, f_scale=f)
        rn, rr = rate_twin("pepita", cfg, net, sizes)
        b = cfg.baseline()
        reference = rr.hidden_updates(b + (1 - b) * s.x, s.target)[0].double().numpy()
        net.reset_evaluation_noise()
        graded = r.hidden_updates(s.x, s.target)[0]
        for name, upd in [("spikes_independent_draws", pepita_spike_modulation(net, r, s.x, s.target, False)),
                          ("spikes_shared_draws", pepita_spike_modulation(net, r, s.x, s.target, True)),
                          ("graded_shared_spikes", graded)]:
            angles[f"f{f}_{name}"] = angle_deg(upd.double().numpy(), reference)
    out["pepita_angle_to_rate_rule_deg"] = angles
    print(json.dumps(out, indent=1))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
