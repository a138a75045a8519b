"""The ``neurosim`` command line: ``neurosim train`` and ``neurosim report``.

Configuration is resolved in layers: :class:`neurosim.config.RunConfig` defaults, then the rule's
defaults (``neurosim.rules``), then a ``--preset`` (paper hyperparameters), then the flags given
explicitly. ``neurosim train``'s configuration flags are generated from the field declarations in
``neurosim.config``, one flag per field.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import MISSING, Field, fields
from pathlib import Path

from neurosim.config import (SECTIONS, STREAMED_DATASETS, DataConfig, RunConfig, data_defaults, flag_of,
                             run_fields, section_fields)
from neurosim.datasets import DATASETS
from neurosim.presets import PRESETS, apply_preset
from neurosim.circuit_cli import add_circuit_parser
from neurosim.connectivity.cli import add_parser as add_connectivity_parser
from neurosim.nir_cli import add_nir_parsers
from neurosim.theory_cli import add_theory_parser
from neurosim.rules import RULES, rules_with


def _add_option(group, f: Field) -> None:
    """The flag of configuration field ``f``, from its declaration (``neurosim.config.option``):
    ``--field-name`` (or the declared flag), parsed by the declared parser or the default's type,
    booleans as ``--x/--no-x``. Flags default to None: only given flags override a value."""
    m = f.metadata
    help_text = m["help"]
    shown = f.default_factory() if f.default_factory is not MISSING else f.default
    if "default" not in help_text and shown is not None and shown is not False:
        help_text += f" (default {shown})"
    if isinstance(shown, bool):
        group.add_argument(flag_of(f), dest=f.name, action=argparse.BooleanOptionalAction, help=help_text)
        return
    group.add_argument(flag_of(f), dest=f.name, type=m["parse"] or (str if shown is None else type(shown)), choices=m["choices"],
                       metavar=m["metavar"], help=help_text)


def config_flags(args: argparse.Namespace) -> dict:
    """The configuration fields set by the flags given, by flat name."""
    values = {}
    for f in [*run_fields(), *(f for _, f in section_fields())]:
        v = getattr(args, f.name, None)
        if v is not None:
            values.update(f.metadata["assign"](v) if f.metadata["assign"] else {f.name: v})
    return values


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
    a("--out", help="run folder (default runs/<rule>-<dataset>-<time>)")
    a("--resume", action="store_true",
      help="continue the run in --out (same flags; a larger --epochs extends a finished run)")
    a("--overwrite", action="store_true", help="replace the run already in --out (its files are deleted)")
    a("--quiet", action="store_true", help="no progress bar")
    for f in run_fields():
        _add_option(p, f)
    for name, cls in SECTIONS.items():
        group = p.add_argument_group(f"{name} options", cls.__doc__.split("\n\n")[0])
        for f in fields(cls):
            if not f.metadata["no_flag"]:
                _add_option(group, f)
    p.set_defaults(func=cmd_train)


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults, then the rule's defaults (its paper's learning rate and fixed
    nonlinearities, ``neurosim.rules``) and the data set's (``data_defaults``), then the preset,
    then explicit flags."""
    flags = config_flags(args)
    rule = flags.get("rule", RunConfig().rule)
    preset = apply_preset(args.preset, rule) if args.preset else {}
    neuron = flags.get("neuron", preset.get("neuron", RunConfig().network.neuron))
    dataset = flags.get("dataset", preset.get("dataset", DataConfig().dataset))
    cfg = RunConfig(**{"rule": rule, **RULES[rule].defaults(neuron), **data_defaults(neuron, dataset),
                       **preset, **flags})
    cfg.validate()
    return cfg


def cmd_train(args) -> int:
    from rate_models.divergence import TrainingDiverged
    from rate_models.train import train_run

    cfg = resolve_config(args)
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.rule}-{cfg.data.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = train_run(cfg, out, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun process 0 reports the run
    if summary["test_accuracy"] is not None:
        print(f"test accuracy: {summary['test_accuracy']:.2f}% ± {summary['test_accuracy_std']:.2f} "
              f"({summary['seeds']} seed(s), {cfg.rule} on {cfg.data.dataset}, {summary['arch']})")
    else:
        print(f"test loss: {summary['test_loss']:.5g} ({cfg.rule} on {cfg.data.dataset})")
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
