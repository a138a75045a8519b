"""The mean of a PEPITA circuit's mismatch ``delta`` (the postsynaptic factor of
``dW_1 = delta xbar^T``), spiking beside rate mode, on the same samples at the initial weights.

A per-sample update whose mean ``delta`` is off by ``b`` moves every input weight of a hidden
neuron by ``-eta_hidden b xbar`` at every sample, whatever the error: a drift that adds up over an
epoch where the noise averages out. Rate mode is the rate rule, so the spiking circuit's bias is
its mean ``delta`` minus rate mode's. Each row gives the mean of ``delta`` over hidden neurons and
samples, its mean magnitude, and the mean first- and second-pass rates ``r1``, ``r2``; a spiking
row also gives its noise: the root mean square of its ``delta`` minus rate mode's, per neuron and
sample, and the correlation of the two.

The input's share of the bias: PEPITA's phase-2 input is ``x + F e``, negative on a dark pixel
(``x`` = the baseline) whenever ``F e`` is below ``-x``. The rate rule keeps the sign; a spiking
encoder cannot fire below zero, so on dark pixels its second pass carries more spikes than the
rate rule's input. Each row gives the mean phase-2 change of the dark pixels' activity
(``dark_modulation``): in rate mode ``xbar - x``, in spiking mode the window-2 spike count minus
the window-1 count, over ``rate_max t_window``.

    python benchmarks/circuit_mismatch_bias.py --samples 200 --out benchmarks/results/circuit_mismatch_bias.json

Digits, 64-256-10 (``--hidden``), seed 0, the rules' defaults (``--f-scale``,
``--hidden-activation``, ``--input-baseline`` override them). Prints one JSON row per rule and
mode; ``benchmarks/results/circuit_mismatch_bias.json`` holds the defaults' rows.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from brian2 import SpikeMonitor, StateMonitor, second
from brian2 import seed as brian_seed

from circuits import build_circuit
from circuits.training import Schedule, read_samples, run_schedule, stimulus_namespace
from neurosim.circuit_params import CircuitParams
from neurosim.datasets import load_dataset
from neurosim.io import atomic_write_json


def window_counts(spikes: SpikeMonitor, n: int, n_in: int, params: CircuitParams,
                  sample_duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Each input's spike count in window 1 and window 2 of samples ``0..n-1``, over
    ``rate_max t_window`` (activity units), shape ``(n, n_in)`` each."""
    t = np.asarray(spikes.t / second)
    slot = (t // sample_duration).astype(int)
    phase_t = t - slot * sample_duration
    counts = []
    for start in (params.t_settle, 2 * params.t_settle + params.t_window):
        inside = (phase_t >= start) & (phase_t < start + params.t_window) & (slot < n)
        c = np.zeros((n, n_in))
        np.add.at(c, (slot[inside], np.asarray(spikes.i)[inside]), 1)
        counts.append(c / (params.rate_max * params.t_window))
    return counts[0], counts[1]


def mismatch(rule: str, mode: str, n: int, hidden: int, **changes) -> tuple[dict, np.ndarray]:
    """Mean statistics of ``delta``, ``r1`` and ``r2`` over ``n`` digits samples (no learning),
    the dark pixels' phase-2 change, and ``delta`` itself (samples, hidden neurons)."""
    params = CircuitParams.for_rule(rule, mode, **changes)
    digits = load_dataset("digits")
    b = params.input_baseline
    x = b + (1 - b) * digits.x_train[:n + 1].reshape(n + 1, -1)
    y = np.eye(10)[digits.y_train[:n + 1]]
    brian_seed(0)  # initial soma potentials: the same spikes on every run
    circuit = build_circuit(rule, [64, hidden, 10], seed=0, params=params)
    # read at the start of each sample, before the reset: the previous sample's window means
    # (one extra slot reads the last sample's)
    monitor = StateMonitor(circuit.groups["hidden"], ["delta", "r1", "r2"], record=True,
                           dt=circuit.sample_duration * second, when="start", order=-10)
    # the dark pixels' phase-2 change: input spike counts (spiking) or the modulated rate (rate)
    inputs = (SpikeMonitor(circuit.groups["input"]) if mode == "spiking" else
              StateMonitor(circuit.groups["input"], "xbar", record=True,
                           dt=circuit.sample_duration * second, when="start", order=-10))
    circuit.network.add(monitor, inputs)
    schedule = Schedule(np.arange(n + 1), np.zeros(n + 1, bool), np.zeros(n + 1, int), [0])
    run_schedule(circuit, stimulus_namespace(circuit, x, y, schedule), n + 1)
    delta, r1, r2 = (read_samples(monitor, v)[:n] for v in ("delta", "r1", "r2"))  # slots 0..n-1
    if mode == "spiking":
        count1, count2 = window_counts(inputs, n, x.shape[1], params, circuit.sample_duration)
        change = count2 - count1
    else:
        change = read_samples(inputs, "xbar")[:n] - x[:n]
    dark = x[:n] <= b
    return {"rule": rule, "mode": mode, "samples": n, "hidden": hidden, **changes,
            "f_scale": params.f_scale, "hidden_activation": params.hidden_activation,
            "input_baseline": b, "dark_modulation": round(float(change[dark].mean()), 4),
            "mean_delta": round(float(delta.mean()), 5), "mean_abs_delta": round(float(np.abs(delta).mean()), 5),
            "mean_r1": round(float(r1.mean()), 4), "mean_r2": round(float(r2.mean()), 4)}, delta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["pepita", "pepita-interneuron"])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--f-scale", type=float)
    ap.add_argument("--hidden-activation")
    ap.add_argument("--input-baseline", type=float)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--out", help="JSON file for the rows")
    args = ap.parse_args()
    changes = {k: v for k, v in (("f_scale", args.f_scale), ("hidden_activation", args.hidden_activation),
                                 ("input_baseline", args.input_baseline)) if v is not None}
    rows = []
    for rule in args.rules:
        rate_row, rate_delta = mismatch(rule, "rate", args.samples, args.hidden, **changes)
        row, delta = mismatch(rule, "spiking", args.samples, args.hidden, **changes)
        row["rms_delta_minus_rate"] = round(float(np.sqrt(((delta - rate_delta) ** 2).mean())), 4)
        row["corr_with_rate"] = round(float(np.corrcoef(delta.ravel(), rate_delta.ravel())[0, 1]), 3)
        for r in (rate_row, row):
            rows.append(r)
            print(json.dumps(r), flush=True)
    if args.out:
        atomic_write_json(args.out, {"dataset": "digits", "sizes": [64, args.hidden, 10], "seed": 0, "rows": rows})


if __name__ == "__main__":
    main()
