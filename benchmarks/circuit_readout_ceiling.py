"""Spiking readout ceiling of a circuit: how well the spiking circuit classifies with weights that
learned in rate mode.

The circuit is trained in rate mode (deterministic, equal to the rate rule), then its forward
weights are loaded into the spiking circuit with every learning rate 0 and the digits test set is
presented once. The gap to the rate-mode accuracy is what Poisson input, integrate-and-fire
hidden somata and spike-count readout cost with the given parameters, before any learning noise:
a spiking circuit that learns cannot be expected to exceed it.

    python benchmarks/circuit_readout_ceiling.py --rule dfa --epochs 6 [--t-window 100 --tau-syn 2]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from circuits import build_circuit
from circuits.experiment import load_circuit_data
from circuits.training import (Schedule, add_readout, make_schedule, read_samples, run_schedule,
                               stimulus_namespace)
from neurosim.circuit_params import CircuitParams

MS = 1e-3


def accuracy(rule, sizes, params, x, y, schedule, weights=None):
    """Percent correct of every presented sample (output window means) and the circuit."""
    circuit = build_circuit(rule, sizes, 0, params=params)
    for name, W in (weights or {}).items():
        syn = circuit.synapses[circuit.plastic[name]]
        syn.w[:] = W[syn.j[:], syn.i[:]]
    readout = add_readout(circuit)
    run_schedule(circuit, stimulus_namespace(circuit, x, y, schedule), len(schedule))
    vbar = read_samples(readout["output"], "vbar")
    return 100.0 * (vbar.argmax(1) == y[schedule.rows].argmax(1)), circuit


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rule", default="dfa")
    p.add_argument("--epochs", type=int, default=6, help="rate-mode training epochs on digits")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--t-window", type=float, help="spiking measurement window (ms)")
    p.add_argument("--tau-syn", type=float, help="spiking compartment filter (ms)")
    p.add_argument("--rate-max", type=float, help="spiking rate of activity 1 (Hz)")
    a = p.parse_args(argv)
    x_train, y_train, x_test, y_test = load_circuit_data("digits", None, None, None, 0)
    x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    sizes = [x.shape[1], a.hidden, y.shape[1]]
    rate = CircuitParams.for_rule(a.rule, "rate")
    b = rate.input_baseline
    x = b + (1 - b) * x  # the input population's activity, as the circuit trainer presents it
    train = make_schedule(len(x_train), len(x_test), a.epochs, len(x_train) * a.epochs, 0)
    acc, circuit = accuracy(a.rule, sizes, rate, x, y, train)
    rate_acc = float(acc[~train.train].mean())
    weights = {m: circuit.matrix(m) for m in circuit.plastic if m != "R"}
    overrides = {k: v for k, v in {"t_window": a.t_window and a.t_window * MS,
                                   "tau_syn": a.tau_syn and a.tau_syn * MS,
                                   "rate_max": a.rate_max}.items() if v is not None}
    spiking = replace(CircuitParams.for_rule(a.rule, "spiking"), eta_hidden=0.0, eta_output=0.0,
                      eta_feedback=0.0, **overrides)
    n = len(x_test)
    test = Schedule(len(x_train) + np.arange(n), np.zeros(n, bool), np.zeros(n, int), np.zeros(n, int), [0])
    acc, _ = accuracy(a.rule, sizes, spiking, x, y, test, weights)
    print(json.dumps({"rule": a.rule, "rate_mode_test_accuracy": rate_acc,
                      "spiking_test_accuracy_with_rate_weights": float(acc.mean()),
                      "spiking_params": {k: getattr(spiking, k) for k in ("t_window", "tau_syn", "rate_max")}}))


if __name__ == "__main__":
    main()
