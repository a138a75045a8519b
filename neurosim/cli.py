"""The ``neurosim`` command line: ``neurosim train`` and ``neurosim report``.

Configuration is resolved in three layers: :class:`neurosim.config.RunConfig` defaults, then a
``--preset`` (paper hyperparameters), then the flags given explicitly.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from neurosim.config import ARCHS, STREAMED_DATASETS, RunConfig
from neurosim.datasets import DATASETS
from neurosim.presets import PRESETS, apply_preset
from neurosim.circuit_cli import add_circuit_parser
from neurosim.connectivity.cli import add_parser as add_connectivity_parser
from neurosim.nir_cli import add_nir_parsers
from neurosim.theory_cli import add_theory_parser
from neurosim.rules import RULES, rules_with


def parse_arch(text: str) -> list[int] | str:
    """Hidden sizes from ``1024``, ``512-512``, ``2x1024`` or ``fc2x1024``; ``none`` for no hidden
    layer; or the name of a convolutional architecture (``resnet20``, ...), returned as is."""
    t = text.strip().lower()
    if t in ARCHS and t != "fc":
        return t
    if t in ("none", "0", ""):
        return []
    m = re.fullmatch(r"(?:fc)?(\d+)x(\d+)", t)
    if m:
        return [int(m.group(2))] * int(m.group(1))
    try:
        sizes = [int(s) for s in re.split(r"[-,]", t)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--arch {text!r}: give hidden sizes like 1024, 512-512 or 2x1024, or one of "
            f"{', '.join(a for a in ARCHS if a != 'fc')}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--arch {text!r}: sizes must be positive")
    return sizes


def parse_milestones(text: str) -> list[int]:
    """Epochs at which the learning rate is multiplied by --lr-gamma: ``60,90``; ``none`` for a
    constant learning rate."""
    t = text.strip().lower()
    if t in ("none", ""):
        return []
    try:
        epochs = [int(s) for s in t.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--lr-milestones {text!r}: give epochs like 60,90, or none") from None
    if any(e <= 0 for e in epochs) or epochs != sorted(set(epochs)):
        raise argparse.ArgumentTypeError(
            f"--lr-milestones {text!r}: epochs must be positive and increasing")
    return epochs


# flag name -> RunConfig field, for flags that map one to one
_FLAG_FIELDS = {
    "rule": "rule", "dataset": "dataset", "data_dir": "data_dir",
    "epochs": "epochs", "seeds": "seeds", "seed": "seed", "device": "device", "lr": "lr",
    "batch_size": "batch_size", "dropout": "dropout", "weight_decay": "weight_decay",
    "momentum": "momentum", "optimizer": "optimizer", "activation": "activation",
    "output": "output", "init": "init", "f_scale": "f_scale", "pre_mirror_epochs": "pre_mirror_epochs",
    "pfa_expansion": "pfa_expansion", "wm_lr": "wm_lr", "modulation_sign": "modulation_sign",
    "amp": "amp", "workers": "workers", "lr_milestones": "lr_milestones", "lr_gamma": "lr_gamma",
    "weight_decay_after_first_epoch": "weight_decay_after_first_epoch", "image_size": "image_size",
    "neuron": "neuron", "num_steps": "num_steps", "dt": "dt", "beta": "beta", "threshold": "threshold",
    "encoder": "encoder", "surrogate_slope": "surrogate_slope", "input_baseline": "input_baseline",
}


def _train_parser(sub) -> None:
    rules = "\n".join(f"  {n:<18} {RULES[n].summary}\n  {'':<18} {RULES[n].describe_defaults()}"
                      for n in rules_with("rate"))
    datasets = "\n".join(f"  {n:<20} {d}" for n, d in {**DATASETS, **STREAMED_DATASETS}.items())
    presets = "\n".join(f"  {n:<28} {p['source']}" for n, p in PRESETS.items())
    p = sub.add_parser(
        "train", help="train a rate network with a learning rule",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a fully connected rate network with one learning rule; write a run folder.",
        epilog=f"rules (defaults apply unless a --preset or a flag sets the value):\n{rules}\n\ndatasets:\n{datasets}\n\npresets:\n{presets}")
    a = p.add_argument
    a("--rule", choices=rules_with("rate"), metavar="R", help="learning rule (listed below; default pepita)")
    a("--dataset", choices=[*DATASETS, *STREAMED_DATASETS], metavar="D",
      help="data set (listed below; default digits)")
    a("--data-dir", help="folder holding the data set files")
    a("--arch", type=parse_arch, help="hidden sizes: 1024, 512-512 or 2x1024 (default 1024), or a conv "
      f"net: {', '.join(a for a in ARCHS if a != 'fc')}")
    a("--epochs", type=int)
    a("--seeds", type=int, help="number of seeds (seed, seed+1, ...)")
    a("--seed", type=int, help="first seed (default 0)")
    a("--seed-batch", action="store_true",
      help="train the --seeds at once as one batched model (same results as one after another)")
    a("--freeze-hidden", action="store_true",
      help="keep hidden weights, biases and plastic feedback (PFA's R, KP's B) at their initial "
           "values; only the readout layer learns (the frozen-hidden control on its own)")
    a("--control", action="store_true",
      help="after the run, train its frozen-hidden control (same seed, samples and schedule) into "
           "<out>/control; summary.json gets control_test_accuracy and hidden_gain")
    a("--amp", choices=["bf16"], help="run the forward passes under bf16 autocast (CUDA or CPU)")
    a("--device", choices=["cpu", "cuda"])
    a("--stream", action="store_true",
      help="stream batches from a DataLoader instead of holding the data set on the device "
           "(always on for imagenet)")
    a("--workers", type=int, help="DataLoader processes decoding streamed batches (default 4; 0: none)")
    a("--image-size", type=int,
      help="imagenet: side of the square crops (default 224; e.g. 64 for quick CPU runs)")
    a("--preset", choices=list(PRESETS), metavar="P", help="paper hyperparameters (listed below)")
    a("--out", help="run folder (default runs/<rule>-<dataset>-<time>)")
    a("--resume", action="store_true",
      help="continue the run in --out (same flags; a larger --epochs extends a finished run)")
    a("--overwrite", action="store_true", help="replace the run already in --out (its files are deleted)")
    a("--lr", type=float, help="learning rate (default: the rule's, listed below)")
    a("--lr-milestones", type=parse_milestones, metavar="E1,E2",
      help="epochs after which lr is multiplied by --lr-gamma (default 60,90; none: constant)")
    a("--lr-gamma", type=float, help="learning-rate decay factor at each milestone (default 0.1)")
    a("--batch-size", type=int)
    a("--dropout", type=float)
    a("--weight-decay", type=float)
    a("--weight-decay-after-first-epoch", type=float, metavar="WD",
      help="weight decay from epoch 2 on; --weight-decay is then epoch 1's (PFA paper, App. 1.1)")
    a("--momentum", type=float)
    a("--optimizer", choices=["sgd", "adam"])
    a("--activation", choices=["relu", "tanh", "sigmoid", "linear"])
    a("--output", choices=["softmax", "sigmoid", "tanh", "linear"])
    a("--init", choices=["he_uniform", "he_normal", "glorot_uniform", "glorot_normal"])
    a("--f-scale", type=float, help="PEPITA: F scale (0.05 in the papers)")
    a("--modulation-sign", type=float, choices=[1.0, -1.0], help="PEPITA: x + s F e")
    a("--normalize", action="store_true", help="PEPITA: normalize hidden activities (Srinivasan 2023)")
    a("--pre-mirror-epochs", type=int, help="weight mirroring before training (epochs)")
    a("--wm-lr", type=float, help="weight-mirror learning rate")
    a("--pfa-expansion", type=float, help="PFA expansion ratio 1/lambda (default 10)")
    lif = p.add_argument_group(
        "spiking mode", f"LIF networks (snnTorch) trained by {', '.join(rules_with('lif'))} "
        "(bp: surrogate-gradient BPTT)")
    lif.add_argument("--neuron", choices=["rate", "lif"], help="rate neurons (default) or LIF neurons")
    lif.add_argument("--num-steps", type=int, help="steps each sample is presented for (default 25)")
    lif.add_argument("--dt", type=float, help="step length in seconds, for rates in Hz (default 1e-3)")
    lif.add_argument("--beta", type=float, help="membrane decay per step exp(-dt/tau) (default 0.95)")
    lif.add_argument("--threshold", type=float, help="firing threshold (default 1)")
    lif.add_argument("--encoder", choices=["rate", "latency", "current"],
                     help="input spikes: Bernoulli per step, one latency spike, or a constant current")
    lif.add_argument("--surrogate-slope", type=float, help="fast-sigmoid surrogate slope k (default 25)")
    lif.add_argument("--input-baseline", type=float,
                     help="show intensity x as b + (1-b) x (default 0.1 for pepita, else 0)")
    a("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults, then the rule's defaults (its paper's learning rate and fixed
    nonlinearities, ``neurosim.rules``), then the preset, then explicit flags."""
    values = RunConfig().to_dict()
    rule = args.rule or values["rule"]
    preset = apply_preset(args.preset, rule) if args.preset else {}
    neuron = args.neuron or preset.get("neuron", values["neuron"])
    values.update(RULES[rule].defaults(neuron))
    values.update(preset)
    for flag, field in _FLAG_FIELDS.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[field] = v
    if isinstance(args.arch, str):
        values["arch"] = args.arch
    elif args.arch is not None:
        values.update(arch="fc", hidden=args.arch)
    if args.normalize:
        values["normalize_activations"] = True
    if args.seed_batch:
        values["seed_batch"] = True
    if args.stream:
        values["stream"] = True
    if args.freeze_hidden:
        values["freeze_hidden"] = True
    if args.control:
        values["control"] = True
    cfg = RunConfig.from_dict(values)
    cfg.validate()
    return cfg


def cmd_train(args) -> int:
    from rate_models.train import TrainingDiverged, train_run

    cfg = resolve_config(args)
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.rule}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = train_run(cfg, out, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun process 0 reports the run
    if summary["test_accuracy"] is not None:
        print(f"test accuracy: {summary['test_accuracy']:.2f}% ± {summary['test_accuracy_std']:.2f} "
              f"({summary['seeds']} seed(s), {cfg.rule} on {cfg.dataset}, {summary['arch']})")
    else:
        print(f"test loss: {summary['test_loss']:.5g} ({cfg.rule} on {cfg.dataset})")
    if summary.get("control_test_accuracy") is not None:
        print(f"frozen-hidden control: {summary['control_test_accuracy']:.2f}% "
              f"± {summary['control_test_accuracy_std']:.2f}; hidden gain {summary['hidden_gain']:+.2f} points")
    print(f"run folder: {out}")
    return 0


def cmd_report(args) -> int:
    from neurosim.report import collect_runs, markdown_table

    skipped: list[str] = []
    runs = collect_runs(args.runs, skipped)
    for note in skipped:
        print(f"note: skipped {note}", file=sys.stderr)
    if not runs:
        raise ValueError("none of the given folders holds a finished run (see the notes above)")
    print(markdown_table(runs))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    r = sub.add_parser("report", help="aggregate run folders into a markdown table (mean ± std)")
    r.add_argument("runs", nargs="+", help="run folders (or folders holding run folders)")
    r.set_defaults(func=cmd_report)
    add_circuit_parser(sub)
    add_connectivity_parser(sub)
    add_theory_parser(sub)
    add_nir_parsers(sub)
    return parser


def _os_error(err: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and a way out."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    hints = {PermissionError: "choose a path you may write (e.g. --out in your home folder)",
             IsADirectoryError: "give a file, not a folder", NotADirectoryError: "a part of the path is a file",
             FileExistsError: "choose another path",
             FileNotFoundError: "check that the path exists and that its folder can be written"}
    hint = next((h for cls, h in hints.items() if isinstance(err, cls)), "check the path and free disk space")
    return f"{reason}:{where}; {hint}"


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into an exit that unwinds the stack, so atomic writes remove their
    temporary files (a SIGKILL cannot be caught: the next run in the folder removes them)."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a notebook worker)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one command; an anticipated failure prints one ``error:`` line and returns 2 (3 for a
    diverged run, 130 when interrupted), never a traceback."""
    _stop_on_sigterm()
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help or a usage error: argparse ignores a closed stdout, we do not
            sys.stdout.flush()
            raise
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here at the latest, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader of our output went away (``neurosim report ... | head``): stop quietly, and
        # point stdout at /dev/null so the interpreter's final flush does not fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; a training run continues with the same flags and --resume",
              file=sys.stderr)
        return 130
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:  # our own messages carry no errno; the operating system's do
        print(f"error: {err if err.errno is None else _os_error(err)}", file=sys.stderr)
    except MemoryError:
        print("error: not enough memory for this input or configuration; use smaller sizes "
              "(--arch, --batch-size) or a smaller input", file=sys.stderr)
    except RuntimeError as err:
        if type(err).__name__ != "OutOfMemoryError":  # torch's CUDA/CPU allocation failure
            raise
        print(f"error: out of device memory ({str(err).splitlines()[0]}); use a smaller "
              "--batch-size or --arch", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
