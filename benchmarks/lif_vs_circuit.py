"""Cross-check of the spiking mode against the Brian2 circuits: the same 64-256-10 network on
digits, the same rule, initial weights and feedback matrices (both draw them from
``neurosim.feedback`` with one seed; the script copies the circuit's into the LIF network to be
sure), the same sigmoid output with binary cross-entropy and the same input ``b + (1 - b) x``.

1. Update angle: the circuit's per-sample updates at its initial weights on the first ``--probe``
   training samples (``circuits.experiment.probe_updates``, learning off) against the LIF rule's
   updates of the same samples one at a time; the angle of the updates summed over the probe and
   the mean per-sample angle.
2. Accuracy: the LIF network trained with ``neurosim train --neuron lif`` on digits for
   ``--epochs``; the circuit's accuracy, with ``--train-circuits``, from
   ``circuits.experiment.run_experiment`` (one sample at a time, C++ standalone).

The models differ where they are meant to: the circuit's hidden neurons are two-compartment
integrate-and-fire neurons with 2 ms synaptic filters, Poisson inputs of at most 200 Hz, a 10 ms
settling interval and 40 ms windows at 0.5 ms steps; the LIF network has snnTorch ``Leaky``
neurons, Bernoulli inputs of probability ``b + (1 - b) x`` per 1 ms step and ``--num-steps`` steps.

    python benchmarks/lif_vs_circuit.py --rules dfa,drtp,pepita,pfa [--train-circuits]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from circuits.compare import rate_config
from circuits.experiment import load_circuit_data, probe_updates, run_experiment
from neurosim.circuit_params import CircuitParams
from neurosim.io import atomic_write_json
from neurosim.metrics import angle_deg
from rate_models.spiking import LIFNetwork, build_lif_rule
from rate_models.train import train_run

MATRICES = {"W1": ("weights", 0), "W2": ("weights", 1), "R": ("Rs", 0)}


def lif_config(rule: str, params: CircuitParams, args, **kw):
    cfg = rate_config(rule, [64, args.hidden, 10], params)
    cfg.network.neuron, cfg.lif.num_steps, cfg.data.dataset = "lif", args.num_steps, "digits"
    cfg.lif.input_baseline = params.input_baseline  # the circuit's b: intensity x shown as b + (1-b) x
    for k, v in kw.items():
        cfg.update(**{k: v})
    cfg.validate()
    return cfg


def _tensor(rule_obj, name: str) -> torch.Tensor:
    where, index = MATRICES[name]
    return (rule_obj.net.weights if where == "weights" else rule_obj.Rs)[index]


def lif_probe_updates(rule: str, circuit, params: CircuitParams, x, y, args) -> dict:
    """The LIF rule's per-sample ``-dW`` at the circuit's initial weights (same feedback)."""
    cfg = lif_config(rule, params, args, dropout=0.0)
    net = LIFNetwork([64, args.hidden, 10], cfg, seed=0).double()
    lif_rule = build_lif_rule(rule, net, cfg, 0).double()
    with torch.no_grad():
        for name, value in circuit.initial.items():
            _tensor(lif_rule, name).copy_(torch.as_tensor(value))
    xs = torch.as_tensor(x)  # the LIF encoder applies the baseline
    ys = torch.as_tensor(y, dtype=torch.float64)
    out = {name: [] for name in circuit.initial}
    for n in range(len(xs)):
        lif_rule.compute_grads(xs[n:n + 1], ys[n:n + 1], [None])
        for name in out:
            out[name].append(-_tensor(lif_rule, name).grad.numpy().copy())
    return {name: np.stack(v) for name, v in out.items()}


def angles(a: np.ndarray, b: np.ndarray) -> dict:
    per_sample = [angle_deg(a[k], b[k]) for k in range(len(a))
                  if np.linalg.norm(a[k]) > 0 and np.linalg.norm(b[k]) > 0]
    return {"summed_deg": angle_deg(a.sum(0), b.sum(0)),
            "per_sample_mean_deg": float(np.mean(per_sample)) if per_sample else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", default="dfa,drtp,pepita,pfa")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--probe", type=int, default=50, help="samples for the update angles")
    p.add_argument("--num-steps", type=int, default=40, help="LIF steps per sample (1 ms each)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.01, help="LIF training learning rate")
    p.add_argument("--batch-size", type=int, default=32, help="LIF training batch")
    p.add_argument("--train-circuits", action="store_true", help="also train the circuits (minutes)")
    p.add_argument("--out", default="benchmarks/results/lif_vs_circuit.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    x_tr, y_tr, _, _ = load_circuit_data("digits", None, None, None, 0)
    x, y = x_tr[:args.probe], y_tr[:args.probe]
    rows = []
    for rule in args.rules.split(","):
        params = CircuitParams.for_rule(rule, "spiking")
        circuit_updates, circuit = probe_updates(rule, x, y, args.hidden, params)
        lif_updates = lif_probe_updates(rule, circuit, params, x, y, args)
        row = {"rule": rule, "update_angles": {m: angles(circuit_updates[m], lif_updates[m])
                                               for m in circuit_updates}}
        with tempfile.TemporaryDirectory() as tmp:
            cfg = lif_config(rule, params, args, epochs=args.epochs, lr=args.lr, momentum=0.9,
                             batch_size=args.batch_size, dropout=0.0, lr_milestones=[])
            row["lif_test_accuracy"] = train_run(cfg, Path(tmp) / "lif", progress=False)["test_accuracy"]
        if args.train_circuits:
            summary = run_experiment(rule, "digits", hidden=args.hidden, epochs=args.epochs,
                                     device="cpp_standalone", progress=False,
                                     out=Path(tempfile.mkdtemp()) / "circuit")
            row["circuit_test_accuracy"] = summary["test_accuracy"]
        rows.append(row)
        atomic_write_json(Path(args.out), {"sizes": [64, args.hidden, 10], "probe_samples": args.probe,
                                           "lif_num_steps": args.num_steps, "epochs": args.epochs,
                                           "lif_lr": args.lr, "lif_batch_size": args.batch_size,
                                           "rows": rows})  # after every rule: a crash keeps the rest
        w1 = row["update_angles"]["W1"]
        print(f"{rule:>7}: W1 angle summed {w1['summed_deg']:.1f}°, per sample {w1['per_sample_mean_deg']:.1f}°; "
              f"LIF {row['lif_test_accuracy']:.1f}%"
              + (f", circuit {row['circuit_test_accuracy']:.1f}%" if "circuit_test_accuracy" in row else ""))


if __name__ == "__main__":
    main()
