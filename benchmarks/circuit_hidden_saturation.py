"""Why the error-driven circuits' hidden neurons saturate: the circuits' rate rule with ReLU and
with clipped-ReLU hidden neurons, beside its frozen-hidden control.

The network is the circuit's (``circuits.compare.rate_config``: ``x -> phi(W_1 x) ->
sigmoid(W_2 h)``, no biases, one sample per update, plain SGD with the circuit's ``eta_hidden``
and ``eta_output``) and the update is the rate backend's rule itself, so this is the rate-mode
circuit without Brian2. It reports the test accuracy, the control's (``eta_hidden = 0``, same
samples), and the mean hidden activity on the test set (activity 1 = ``rate_max``, 200 Hz): with
ReLU, DRTP's target projection drives the activity up without bound.

    python benchmarks/circuit_hidden_saturation.py --dataset mnist --data-dir ../shared/data/mnist

Recorded in ``benchmarks/results/circuit_hidden_saturation.json`` (10,000 training / 2,000 test
samples, seed 0). With ``--train-samples 60000 --test-samples 10000 --activations clipped-relu``
it is the rate form of the circuits' one-epoch defaults rows (``circuit_controls.json``), on the
same samples in the same order.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from circuits.compare import rate_config
from circuits.experiment import load_circuit_data
from neurosim.circuit_params import CircuitParams
from rate_models.architectures import FCNetwork
from rate_models.rules import build_rule


def evaluate(net, x_test, y_test) -> tuple[float, float]:
    """Test accuracy (%) and mean hidden activity."""
    with torch.no_grad():
        h = net.phi(0, torch.as_tensor(x_test) @ net.weights[0].T)
        scores = h @ net.weights[1].T
    accuracy = 100.0 * float((scores.argmax(1) == torch.as_tensor(y_test).argmax(1)).double().mean())
    return accuracy, float(h.mean())


def fit(rule, params, sizes, x, y, x_test=None, y_test=None, seed=0, epochs=1, eval_every=0):
    """The circuit's rate rule trained for ``epochs`` passes over ``x`` (a new permutation each):
    the network, and the test accuracies after every ``eval_every`` samples."""
    cfg = rate_config(rule, sizes, params)
    net = FCNetwork(sizes, params.hidden_activation, "sigmoid", 0.0, False, "he_uniform", seed).double()
    rate_rule = build_rule(cfg.rule, net, cfg, seed).double()
    plastic = list(zip(net.weights, [params.eta_hidden, params.eta_output]))
    if rule == "pfa":  # R learns with the hidden weights (frozen in the control)
        plastic.append((rate_rule.Rs[0], params.eta_feedback if params.eta_hidden else 0.0))
    xs, ys = torch.as_tensor(x), torch.as_tensor(y)
    rng, seen, curve = np.random.default_rng(seed), 0, []
    for _ in range(epochs):
        for n in rng.permutation(len(x)):
            for p, _ in plastic:
                p.grad = None
            rate_rule.compute_grads(xs[n:n + 1], ys[n:n + 1], [None])
            with torch.no_grad():
                for p, eta in plastic:
                    p -= eta * p.grad
            seen += 1
            if eval_every and seen % eval_every == 0:
                curve.append(round(evaluate(net, x_test, y_test)[0], 2))
    return net, curve


def train(rule, params, sizes, x, y, x_test, y_test, seed=0, epochs=1, eval_every=0):
    """Accuracy (%) and mean hidden activity on the test set after :func:`fit`, and its curve."""
    net, curve = fit(rule, params, sizes, x, y, x_test, y_test, seed, epochs, eval_every)
    accuracy, activity = evaluate(net, x_test, y_test)
    return accuracy, activity, curve


def task_arguments(ap: argparse.ArgumentParser, train_samples: int) -> None:
    """The options naming the task: data set, sample counts, hidden size, output file."""
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir")
    ap.add_argument("--train-samples", type=int, default=train_samples)
    ap.add_argument("--test-samples", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--out", help="JSON file for the rows")


def load_task(args) -> tuple:
    """``x, y, x_test, y_test, sizes`` of :func:`task_arguments`' task, on one thread."""
    torch.set_num_threads(1)  # batch-1 steps: threads only add overhead
    x, y, x_test, y_test = load_circuit_data(args.dataset, args.data_dir, args.train_samples,
                                             args.test_samples, 0)
    return x, y, x_test, y_test, [x.shape[1], args.hidden, y.shape[1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    task_arguments(ap, 10000)
    ap.add_argument("--rules", default="drtp,dfa,fa,pfa")
    ap.add_argument("--activations", default="relu,clipped-relu", help="hidden neurons to compare")
    args = ap.parse_args()
    x, y, x_test, y_test, sizes = load_task(args)
    rows = []
    for rule in args.rules.split(","):
        for activation in args.activations.split(","):
            params = CircuitParams.for_rule(rule, "rate", hidden_activation=activation)
            acc, activity, _ = train(rule, params, sizes, x, y, x_test, y_test)
            control, control_activity, _ = train(rule, CircuitParams.for_rule(
                rule, "rate", hidden_activation=activation, eta_hidden=0.0), sizes, x, y, x_test, y_test)
            rows.append({"rule": rule, "hidden_activation": activation, "eta_hidden": params.eta_hidden,
                         "test_accuracy": round(acc, 2), "control_test_accuracy": round(control, 2),
                         "hidden_gain": round(acc - control, 2), "mean_hidden_activity": round(activity, 3),
                         "control_mean_hidden_activity": round(control_activity, 3)})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"dataset": args.dataset, "train_samples": len(x), "test_samples": len(x_test),
                       "sizes": sizes, "seed": 0, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
