"""Noise of the error a spiking circuit sends to its hidden layer: Poisson vs integrate-and-fire somata.

A model of the circuits' error path (``circuits/populations.py``): the output neuron fires at
``rate_max p``, the label neuron at ``rate_max y*``; each ± error neuron filters both trains
(``tau_syn``, Euler steps as Brian2 integrates them) and fires at ``rate_max max(0, ±(p - y*))``
of the filtered difference. The window estimate of ``e = p - y*`` is the difference of the two
error neurons' spike counts over ``rate_max t_window``. With Poisson somata its standard
deviation is largest where learning has succeeded (``p = y* = 1``); with integrate-and-fire
somata (potential drawn from U[0, 1) per phase) it is ten times smaller there.

    python benchmarks/circuit_noise.py          # prints the table, writes results/circuit_noise.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neurosim.circuit_params import CircuitParams
from neurosim.io import atomic_write_json


def spikes(rate: np.ndarray, soma: str, u: np.ndarray, dt: float, rng) -> np.ndarray:
    """One step of spikes at ``rate`` (Hz): Poisson, or integrate-and-fire with potential ``u``."""
    if soma == "poisson":
        return rng.random(len(rate)) < rate * dt
    u += rate * dt
    fired = u > 1
    u -= fired
    return fired


def error_estimate(p: float, y: float, soma: str, params: CircuitParams, n: int, seed: int):
    """Mean and std over ``n`` samples of the window estimate of ``p - y*``."""
    rng = np.random.default_rng(seed)
    dt, tau, rmax = params.dt, params.tau_syn, params.rate_max
    settle, window = params.steps(params.t_settle), params.steps(params.t_window)
    out_u, lab_u, plus_u, minus_u = (rng.random(n) for _ in range(4))
    a, b, plus, minus = (np.zeros(n) for _ in range(4))
    kick = 1.0 / (rmax * tau)
    for k in range(settle + window):
        a += kick * spikes(np.full(n, rmax * p), soma, out_u, dt, rng) - a * dt / tau
        b += kick * spikes(np.full(n, rmax * y), soma, lab_u, dt, rng) - b * dt / tau
        up = spikes(rmax * np.clip(a - b, 0, None), soma, plus_u, dt, rng)
        down = spikes(rmax * np.clip(b - a, 0, None), soma, minus_u, dt, rng)
        if k >= settle:
            plus += up
            minus += down
    e = (plus - minus) / (rmax * params.t_window)
    return float(e.mean()), float(e.std())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "circuit_noise.json"))
    args = ap.parse_args()
    params = CircuitParams.for_mode("spiking")
    rows = []
    for soma in ("poisson", "integrate-and-fire"):
        for p, y in ((1.0, 1.0), (0.9, 1.0), (0.5, 0.0), (0.1, 0.0)):
            mean, std = error_estimate(p, y, soma, params, args.samples, 0)
            rows.append({"soma": soma, "p": p, "y": y, "e_mean": mean, "e_std": std})
            print(f"{soma:<19} p={p:.1f} y*={y:.0f}: e = {mean:+.3f} ± {std:.3f} (true {p - y:+.2f})")
    atomic_write_json(args.out, {"t_window_s": params.t_window, "rate_max_hz": params.rate_max,
                                 "tau_syn_s": params.tau_syn, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
