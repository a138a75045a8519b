"""PEPITA circuit settings over several epochs: the circuit's rate rule, beside its frozen-hidden
control, for each ``f_scale`` and ``eta_hidden``.

PEPITA's first-layer update is ``dW_1 = (h_1 - h_1^err)(x + F e)^T`` with
``h_1 - h_1^err ~ -phi' * (W_1 F e)`` (Dellaferrera & Kreiman 2022, eq. 3). Its product with the
modulated input's own ``F e`` gives ``W_1 F`` a growth term ``eta (phi' * W_1 F e)(e^T F^T F)``,
of order ``eta f_scale^2`` per sample and positive whatever the error's sign (``F^T F ~ 2
f_scale^2 I``). A large ``F`` (which the spiking circuit needs, to lift the mismatch above its
spike noise) together with a large rate therefore learns and then collapses; this benchmark
measures where. The network and update are ``benchmarks/circuit_hidden_saturation.py``'s: the
rate-mode circuit without Brian2 (batch 1, plain SGD, no input baseline).

    python benchmarks/circuit_pepita_stability.py --dataset mnist --data-dir ../shared/data/mnist \\
        --epochs 3 --settings 0.5:1e-3 0.2:3e-3 --out benchmarks/results/circuit_pepita_stability.json

Each setting is ``f_scale:eta_hidden``; the curve holds the test accuracy after every
``--eval-every`` samples. Seed 0, one thread.
"""

from __future__ import annotations

import argparse
import json

from circuit_hidden_saturation import load_task, task_arguments, train
from neurosim.circuit_params import CircuitParams
from neurosim.io import atomic_write_json


def setting(text: str) -> tuple[float, float]:
    try:
        f_scale, eta = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a setting as f_scale:eta_hidden, e.g. 0.2:3e-3")
    return f_scale, eta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    task_arguments(ap, 60000)
    ap.add_argument("--settings", nargs="+", type=setting, default=[(0.5, 1e-3), (0.2, 3e-3)])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--eval-every", type=int, default=10000)
    ap.add_argument("--hidden-activation", default="clipped-relu")
    args = ap.parse_args()
    x, y, x_test, y_test, sizes = load_task(args)
    rows = []
    for f_scale, eta in args.settings:
        def run(eta_hidden):
            params = CircuitParams.for_rule("pepita", "rate", hidden_activation=args.hidden_activation,
                                            f_scale=f_scale, eta_hidden=eta_hidden)
            return train("pepita", params, sizes, x, y, x_test, y_test, epochs=args.epochs,
                         eval_every=args.eval_every)
        acc, activity, curve = run(eta)
        control, _, control_curve = run(0.0)  # the readout still learns from the modulated pass
        rows.append({"f_scale": f_scale, "eta_hidden": eta, "test_accuracy": round(acc, 2),
                     "control_test_accuracy": round(control, 2), "hidden_gain": round(acc - control, 2),
                     "mean_hidden_activity": round(activity, 3), "curve": curve,
                     "control_curve": control_curve})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        atomic_write_json(args.out, {"dataset": args.dataset, "train_samples": len(x),
                                     "test_samples": len(x_test), "sizes": sizes, "epochs": args.epochs,
                                     "eval_every": args.eval_every,
                                     "hidden_activation": args.hidden_activation, "seed": 0,
                                     "rows": rows})


if __name__ == "__main__":
    main()
