"""``neurosim circuit``: train and test a Brian2 circuit (brian2 is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from neurosim.config import SPIKING_DIGITS_HIDDEN
from neurosim.circuit_params import HIDDEN_ACTIVATIONS, RULE_DEFAULTS, SPIKING_RULE_DEFAULTS, CircuitParams
from neurosim.rules import RULES, rules_with

DEFAULT_EPOCHS = {"digits": 10}
DEFAULT_HIDDEN = {"digits": SPIKING_DIGITS_HIDDEN}
# flag -> CircuitParams field; times are given in milliseconds on the command line
_PARAM_FLAGS = {"eta_hidden": 1.0, "eta_output": 1.0, "eta_feedback": 1.0, "eta_decay": 1.0,
                "rate_max": 1.0, "f_scale": 1.0, "pfa_expansion": 1.0, "input_baseline": 1.0,
                "dt": 1e-3, "t_settle": 1e-3, "t_window": 1e-3, "tau_syn": 1e-3}
_PARAM_HELP = {"eta_decay": "each epoch's learning rates are this times the last epoch's: epoch k "
                            "(from 0) learns at eta * eta_decay**k (default 1: constant)"}


def add_circuit_parser(sub) -> None:
    rules = "\n".join(
        f"  {n:<20} {RULES[n].summary}\n  {'':<20} defaults: " + ", ".join(
            f"{k.replace('_', '-')} {v if isinstance(v, str) else format(v, 'g')}"
            for k, v in RULE_DEFAULTS.get(n, {}).items())
        + "".join(f"; spiking: {k.replace('_', '-')} {v / _PARAM_FLAGS[k]:g} ms"
                  for k, v in SPIKING_RULE_DEFAULTS.get(n, {}).items())
        for n in rules_with("circuit"))
    p = sub.add_parser(
        "circuit", help="train a Brian2 circuit of two-compartment neurons, sample by sample",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the rule's circuit, train it sample by sample, test it, compare its "
                    "updates with the rate rule's, and write a run folder (summary.json, plots).",
        epilog=f"rules:\n{rules}")
    a = p.add_argument
    a("--rule", required=True, choices=rules_with("circuit"), metavar="R", help="listed below")
    a("--dataset", default="digits", choices=["digits", "mnist", "fashion-mnist"])
    a("--data-dir", help="folder holding the data set files")
    a("--hidden", type=int, help="hidden neurons (default: 32 on digits, where a readout of 256 "
      "random hidden features already reaches 92-95%%; 256 otherwise)")
    a("--train-samples", type=int, help="training samples (default: the whole training set)")
    a("--test-samples", type=int, help="test samples (default: the whole test set)")
    a("--epochs", type=int, help="passes over the training samples (default: 10 on digits, "
      "whose 1,437 samples are too few for hidden learning to show in one pass; 1 otherwise)")
    a("--eval-every", type=int, help="test after every N training samples (default: each epoch)")
    a("--mode", default="spiking", choices=["spiking", "rate"])
    a("--input-code", choices=["regular", "poisson"],
      help="spiking input neurons: regular (integrate-and-fire, the default) or poisson")
    a("--hidden-activation", choices=HIDDEN_ACTIVATIONS,
      help="hidden rate phi(v_b): relu, or clipped-relu (at most rate-max; the default of dfa, "
           "drtp, pfa and fa)")
    a("--device", default="cpp_standalone", choices=["runtime", "cpp_standalone"],
      help="Brian2 device (default cpp_standalone: the whole experiment compiled to C++, with "
           "OpenMP; runtime: Python loop, for debugging)")
    a("--threads", type=int, help="OpenMP threads of cpp_standalone (default 1: no OpenMP)")
    a("--control", action="store_true",
      help="also run the frozen-hidden control (same seed, samples and schedule, only the "
           "readout learns): control_test_accuracy and hidden_gain in summary.json")
    a("--freeze-hidden", action="store_true",
      help="hidden weights (and PFA's R) stay fixed, only the readout learns: the control alone")
    a("--overwrite", action="store_true", help="replace a run already in --out")
    a("--seed", type=int, default=0)
    a("--probe", type=int, default=50, help="samples for the circuit-vs-rate update angle")
    a("--out", help="run folder (default runs/circuit-<rule>-<mode>-<time>)")
    a("--quiet", action="store_true", help="no progress bar")
    for flag, scale in _PARAM_FLAGS.items():
        unit = " (ms)" if scale != 1.0 else ""
        a(f"--{flag.replace('_', '-')}", type=float,
          help=_PARAM_HELP.get(flag, f"circuit parameter {flag}{unit}"))
    p.set_defaults(func=cmd_circuit)


def circuit_params(args) -> CircuitParams:
    """The mode's and rule's defaults with the flags given; times converted from ms to s."""
    changes = {f: getattr(args, f) * scale for f, scale in _PARAM_FLAGS.items()
               if getattr(args, f) is not None}
    for flag in ("input_code", "hidden_activation"):
        if getattr(args, flag):
            changes[flag] = getattr(args, flag)
    params = CircuitParams.for_rule(args.rule, args.mode, **changes)
    params.validate()
    return params


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, or that holds a run, unless ``--overwrite``."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if (out / "summary.json").exists() and not overwrite:
        raise ValueError(f"--out {out} holds a finished run; give another --out, or --overwrite "
                         "to replace it")


def cmd_circuit(args) -> int:
    params = circuit_params(args)
    for flag in ("hidden", "epochs", "probe", "train_samples", "test_samples", "eval_every"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    from circuits.experiment import check_control, run_experiment

    check_control(args.control, args.freeze_hidden, params)
    out = Path(args.out) if args.out else Path("runs") / (
        f"circuit-{args.rule}-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_out(out, args.overwrite)
    epochs = args.epochs or DEFAULT_EPOCHS.get(args.dataset, 1)
    hidden = args.hidden or DEFAULT_HIDDEN.get(args.dataset, 256)
    summary = run_experiment(args.rule, args.dataset, args.data_dir, hidden,
                             args.train_samples, args.test_samples, epochs, params,
                             args.device, args.seed, out, args.eval_every, args.probe,
                             progress=not args.quiet, control=args.control,
                             freeze_hidden=args.freeze_hidden, threads=args.threads)
    print(f"test accuracy: {summary['test_accuracy']:.2f}% ({args.rule} circuit, {args.mode}, "
          f"{summary['sizes']}, {summary['samples_per_second']:.1f} presentations/s on "
          f"{args.device})")
    if args.control:
        print(f"frozen-hidden control: {summary['control_test_accuracy']:.2f}%, hidden gain "
              f"{summary['hidden_gain']:+.2f} points")
    angle = summary["update_angle_deg"]
    print(f"update angle circuit vs rate rule (W1, summed over {summary['probe_samples']} "
          "samples): " + ("undefined, W1 does not learn" if angle is None else f"{angle:.1f} deg"))
    print(f"run folder: {out}", file=sys.stdout)
    return 0
