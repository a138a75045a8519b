"""Spiking readout ceiling of a circuit: how well the spiking circuit classifies with weights that
learned in rate mode.

The circuit's rate rule (``benchmarks/circuit_hidden_saturation.py``: equal to the rate-mode
circuit, batch 1, SGD) trains the forward weights; they are loaded into the spiking circuit with
every learning rate 0, compiled on ``cpp_standalone``, and the test set is presented once. The gap
to the rate rule's accuracy with the same weights is what spiking inputs, integrate-and-fire
somata and a window's readout cost, before any learning noise: a spiking circuit that learns
cannot be expected to exceed it.

    python benchmarks/circuit_readout_ceiling.py --rule fa --dataset mnist --data-dir DIR \\
        --train-samples 60000 --test-samples 10000 --t-window 40 80
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from brian2 import get_device

from circuit_hidden_saturation import evaluate, fit, load_task, task_arguments
from circuits import build_circuit
from circuits.experiment import brian_device
from circuits.training import Schedule, add_readout, read_samples, run_schedule, stimulus_namespace
from neurosim.circuit_params import CircuitParams

MS = 1e-3


def spiking_accuracy(rule, sizes, params, weights, x, y) -> float:
    """Percent correct of the spiking circuit with the forward ``weights`` on ``x``, learning off."""
    with tempfile.TemporaryDirectory() as workdir, brian_device("cpp_standalone", Path(workdir)):
        circuit = build_circuit(rule, sizes, 0, params=params)
        for name, W in weights.items():
            syn = circuit.synapses[circuit.plastic[name]]
            if len(syn) != W.size:
                raise ValueError(f"{name}: the circuit connects {len(syn)} of {W.size} pairs")
            syn.w = W.T.ravel()  # synapses are created presynaptic-major (circuits.wiring.connect)
        readout = add_readout(circuit)
        n = len(x)
        test = Schedule(np.arange(n), np.zeros(n, bool), np.zeros(n, int), [0])
        run_schedule(circuit, stimulus_namespace(circuit, x, y, test), n)
        get_device().build(directory=workdir, compile=True, run=True)
        vbar = read_samples(readout["output"], "vbar")
    return 100.0 * float((vbar.argmax(1) == y.argmax(1)).mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    task_arguments(p, 10000)
    p.add_argument("--rule", default="dfa")
    p.add_argument("--epochs", type=int, default=1, help="rate-rule training epochs")
    p.add_argument("--t-window", type=float, nargs="+", default=[40.0],
                   help="spiking measurement windows to test (ms)")
    a = p.parse_args(argv)
    x, y, x_test, y_test, sizes = load_task(a)
    rate = CircuitParams.for_rule(a.rule, "rate")
    b = rate.input_baseline  # the input population's activity, as the circuit trainer presents it
    x, x_test = b + (1 - b) * x, b + (1 - b) * x_test
    net, _ = fit(a.rule, rate, sizes, x, y, epochs=a.epochs)
    weights = {"W1": net.weights[0].detach().numpy(), "W2": net.weights[1].detach().numpy()}
    rows = {"rule": a.rule, "dataset": a.dataset, "sizes": sizes, "train_samples": len(x),
            "test_samples": len(x_test), "epochs": a.epochs, "seed": 0,
            "rate_rule_test_accuracy": round(evaluate(net, x_test, y_test)[0], 2), "spiking": []}
    for window in a.t_window:
        spiking = CircuitParams.for_rule(a.rule, "spiking", eta_hidden=0.0, eta_output=0.0,
                                         eta_feedback=0.0, t_window=window * MS)
        acc = spiking_accuracy(a.rule, sizes, spiking, weights, x_test, y_test)
        rows["spiking"].append({"t_window_ms": window, "test_accuracy": round(acc, 2)})
        print(json.dumps(rows), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
