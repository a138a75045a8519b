"""``neurosim theory afa``: the AFA teacher–student ODEs beside simulations of AFA and PEPITA
(Srinivasan et al. 2023, Sec. 4.2, App. E, Fig. 2b–c); torch is imported only when it runs."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from neurosim.theory.setting import INITS


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _finite_float(zero_allowed: bool):
    """A parser of finite floats above 0 (or at least 0 with ``zero_allowed``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
            kind = "non-negative" if zero_allowed else "positive"
            raise argparse.ArgumentTypeError(f"must be {kind} and finite, got {text}")
        return value
    return parse


_positive_float = _finite_float(zero_allowed=False)
_non_negative_float = _finite_float(zero_allowed=True)


def _rules(text: str) -> list[str]:
    rules = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rules if r not in ("afa", "pepita")]
    if not rules or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: give afa, pepita or afa,pepita")
    return list(dict.fromkeys(rules))


def add_theory_parser(sub) -> None:
    """Register ``neurosim theory`` (with its ``afa`` subcommand) on the CLI's subparsers."""
    theory = sub.add_parser("theory", help="theory of learning rules beside simulation (AFA ODEs)",
                            description="Theory of learning rules beside simulation.")
    tsub = theory.add_subparsers(dest="theory_command", required=True)
    p = tsub.add_parser(
        "afa", help="AFA teacher-student ODEs vs online simulations of AFA and PEPITA (Fig. 2b-c)",
        description="Integrate the ODEs of adaptive feedback alignment in the online "
                    "teacher-student task (Srinivasan et al. 2023, App. E, eqs. 15-26), simulate "
                    "AFA (eq. 17) and PEPITA from the same initial weights over several seeds, and "
                    "write a run folder: summary.json, metrics.csv, learning_curves.png, "
                    "alignment.png. Times are t = steps/D.")
    a = p.add_argument
    a("--D", type=_int_at_least(2), default=500, help="input dimension (default 500)")
    a("--K", type=_int_at_least(1), default=2, help="student hidden units (default 2)")
    a("--M", type=_int_at_least(1), default=2, help="teacher hidden units (default 2)")
    a("--eta", "--lr", dest="eta", type=_positive_float, default=0.05,
      help="learning rate η (η1 = η, η2 = η/D; default 0.05)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--t-max", type=_positive_float, help="last time t = steps/D (default 3000)")
    length.add_argument("--steps", type=_int_at_least(1), help="SGD steps (instead of --t-max)")
    a("--seeds", type=_int_at_least(1), default=5, help="sample streams simulated (default 5)")
    a("--seed", type=_int_at_least(0), default=0, help="first sample-stream seed (default 0)")
    a("--rules", type=_rules, default=["afa", "pepita"], help="simulated rules: afa,pepita (default both)")
    a("--init", choices=INITS, default="random",
      help="initial condition: random (i.i.d. Gaussian weights) or orthogonal (App. E.1: W2 = 0, "
           "R = 0, T = I, Q = q0 I)")
    a("--init-seed", type=_int_at_least(0), default=0, help="seed of the initial condition (default 0)")
    a("--init-dim", type=_int_at_least(2),
      help="draw the initial condition at this dimension and realise it at --D (default --D), so "
           "that runs at several D share one theory curve")
    a("--init-file", help="JSON of initial order parameters (a run's config.json "
                          "initial_order_parameters); replaces --init")
    a("--q0", type=_positive_float, default=1.0, help="initial |W1^k|^2/D (default 1)")
    a("--w2-std", type=_non_negative_float, default=1.0, help="std of the initial W2, random init (default 1)")
    a("--f-scale", type=_positive_float, default=1.0, help="std of F's entries, q_f ≈ f_scale^2 (default 1)")
    a("--points", type=_int_at_least(2), default=60, help="log-spaced recorded times (default 60)")
    a("--plateau-after", type=_non_negative_float,
      help="end of the initial transient: plateau search and deviation window start here (default 5/η)")
    a("--out", help="run folder, must not exist (default runs/theory-afa-<time>)")
    a("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_theory_afa)


def cmd_theory_afa(args) -> int:
    from neurosim.theory.afa import TheoryError
    from neurosim.theory.experiment import AFAConfig, run_afa

    if args.D < args.K + args.M + 1:
        print(f"error: --D {args.D}: the input dimension must be at least K + M + 1 = "
              f"{args.K + args.M + 1}", file=sys.stderr)
        return 2
    t_max = args.steps / args.D if args.steps else (args.t_max or 3000.0)
    if args.init_dim is not None and args.init_dim < args.K + args.M + 1:
        print(f"error: --init-dim {args.init_dim}: must be at least K + M + 1 = {args.K + args.M + 1}",
              file=sys.stderr)
        return 2
    cfg = AFAConfig(D=args.D, K=args.K, M=args.M, eta=args.eta, t_max=t_max, seeds=args.seeds,
                    seed=args.seed, init=args.init, init_seed=args.init_seed, init_dim=args.init_dim,
                    init_file=args.init_file, q0=args.q0, w2_std=args.w2_std, f_scale=args.f_scale,
                    rules=args.rules, points=args.points, plateau_after=args.plateau_after)
    out = Path(args.out) if args.out else Path("runs") / f"theory-afa-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists():
        print(f"error: --out {out} already exists; choose a new run folder", file=sys.stderr)
        return 2
    try:
        summary = run_afa(cfg, out, progress=not args.quiet)
    except TheoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    th = summary["theory"]["plateau"]
    print(f"theory: plateau ε_g {_fmt(th['height'])} at t {_fmt(th['time'])}, escape at t "
          f"{_fmt(th['escape_time'])}, final ε_g {_fmt(summary['theory']['final_eps_g'])}")
    for rule, s in summary["simulations"].items():
        dev = s["deviation_from_theory"]
        print(f"{rule} ({cfg.seeds} seeds): plateau ε_g {_fmt(s['plateau']['height'])}, escape at t "
              f"{_fmt(s['plateau']['escape_time'])}, final ε_g {_fmt(s['final_eps_g_mean'])}; deviation "
              f"from theory after t = {_fmt(summary['transient'])}: max {_fmt(dev['max_after_transient'])}, "
              f"median {_fmt(dev['median_after_transient'])}")
    print(f"run folder: {out}")
    return 0


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"
