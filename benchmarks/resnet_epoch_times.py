"""Seconds per training epoch of every convolutional rule on ResNet-20 (CIFAR-10 shapes), and
ResNet-18 training throughput for BP and PFA.

ResNet-20 (``rate_models.architectures``) on random CIFAR-shaped data (3×32×32 in [0, 1), 10
classes, 50 000 samples per epoch), batch 128, SGD with momentum 0.9, PFA expansion 10 (the PFA
paper's ResNet-20 settings, Appendix 1.1). ``--samples N`` times N samples and extrapolates to
the 50 000-sample epoch; every rule's ratio is to BP timed in the same process. The loop timed
is ``rule.train_step`` per batch, as in ``rate_models.loop``; evaluation and figures are left
out; a few warm-up batches run first. PEPITA has no residual form and is not timed.

``--resnet18`` times images/s of ResNet-18 training (224×224, 1000 classes, batch 256 unless
``--batch-size``) for BP and PFA; meant for a GPU.

Examples::

    python benchmarks/resnet_epoch_times.py --samples 512 --out benchmarks/results/resnet20_cpu_epoch_times.json
    python benchmarks/resnet_epoch_times.py --device cuda --samples 10000 --resnet18
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from neurosim.config import RunConfig  # noqa: E402
from neurosim.io import atomic_write_json  # noqa: E402
from neurosim.rules import RULES  # noqa: E402
from rate_models.rules import CONV_RULES  # noqa: E402
from rate_models.train import build  # noqa: E402

EPOCH = 50_000  # CIFAR-10 training samples
RESNET20_RULES = [r for r in CONV_RULES if RULES[r].family != "pepita"]  # PEPITA: plain nets only


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def config(rule: str, arch: str, dataset: str, args) -> RunConfig:
    cfg = RunConfig(rule=rule, arch=arch, dataset=dataset, dropout=0.0, lr=0.01, momentum=0.9,
                    batch_size=args.batch_size, device=args.device, pfa_expansion=args.pfa_expansion,
                    lr_milestones=[])
    cfg.validate()
    return cfg


def time_rule(rule: str, arch: str, shape: tuple, n_out: int, n_samples: int, args, dataset: str) -> dict:
    """Seconds to train ``n_samples`` random samples of ``shape`` (after warm-up batches)."""
    device = torch.device(args.device)
    cfg = config(rule, arch, dataset, args)
    dim = math.prod(shape)
    _, r, opt, _ = build(cfg, [dim, n_out], args.seed, device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    bs = cfg.training.batch_size
    x = torch.rand(bs, dim, generator=g, device=device)
    target = torch.nn.functional.one_hot(torch.randint(0, n_out, (bs,), generator=g, device=device), n_out).float()
    for _ in range(args.warmup_batches):
        r.train_step(x, target, opt)
    n_batches = max(1, math.ceil(n_samples / bs))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        loss = r.train_step(x, target, opt)
    sync(device)
    seconds = time.perf_counter() - t0
    if not torch.isfinite(loss).all():
        raise RuntimeError(f"{rule} on {arch}: the loss is not finite during timing")
    return {"rule": rule, "samples_timed": n_batches * bs, "seconds_timed": seconds,
            "samples_per_second": n_batches * bs / seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=EPOCH, help="samples timed per rule (extrapolated to 50000)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--rules", default=",".join(RESNET20_RULES), help="comma-separated ResNet-20 rules")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pfa-expansion", type=float, default=10.0)
    p.add_argument("--warmup-batches", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resnet18", action="store_true", help="also time ResNet-18 (224×224) for BP and PFA")
    p.add_argument("--resnet18-samples", type=int, default=2048)
    p.add_argument("--out", help="JSON file for the results (written atomically)")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    unknown = [r for r in rules if r not in RESNET20_RULES]
    if unknown:
        p.error(f"--rules: {unknown} do not run on resnet20; choose from {', '.join(RESNET20_RULES)}")
    if "bp" not in rules:
        rules.insert(0, "bp")

    results = []
    for rule in rules:
        res = time_rule(rule, "resnet20", (3, 32, 32), 10, args.samples, args, "cifar10")
        res["seconds_per_epoch"] = EPOCH / res["samples_per_second"]
        results.append(res)
        print(f"  {rule}: {res['seconds_per_epoch']:.1f} s/epoch", file=sys.stderr, flush=True)
    bp = next(r for r in results if r["rule"] == "bp")["seconds_per_epoch"]
    for r in results:
        r["ratio_to_bp"] = r["seconds_per_epoch"] / bp

    print(f"\nResNet-20, CIFAR-10 shapes, batch {args.batch_size}, {args.device}, "
          f"{args.samples} samples timed, extrapolated to {EPOCH}:")
    print(f"{'rule':<16}{'s/epoch':>10}{'samples/s':>12}{'× BP':>8}")
    for r in results:
        print(f"{r['rule']:<16}{r['seconds_per_epoch']:>10.1f}{r['samples_per_second']:>12.1f}{r['ratio_to_bp']:>8.2f}")

    resnet18 = []
    if args.resnet18:
        print("\nResNet-18, 224×224, 1000 classes:")
        for rule in ("bp", "pfa"):
            res = time_rule(rule, "resnet18", (3, 224, 224), 1000, args.resnet18_samples, args, "imagenet")
            resnet18.append(res)
            print(f"{rule:<16}{res['samples_per_second']:>12.1f} images/s")

    if args.out:
        atomic_write_json(args.out, {
            "benchmark": "resnet_epoch_times", "command": " ".join(sys.argv),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "device": args.device, "cpu": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "batch_size": args.batch_size, "pfa_expansion": args.pfa_expansion,
            "samples_timed": args.samples, "epoch_samples": EPOCH,
            "resnet20": results, "resnet18": resnet18})
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
