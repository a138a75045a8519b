"""Time one training epoch on MNIST for each learning rule (training loop only, no evaluation).

Settings are PEPITA's Table 2 (Dellaferrera & Kreiman 2022, FC 1x1024 on MNIST): He uniform
initialization, no biases, dropout 0.1, SGD with momentum 0.9, batch 64. Each rule uses its
learning rate from the ``pepita2022-mnist`` preset where the preset gives one, else 0.01 (the
rate does not change the time). The loop timed is the one of ``rate_models.loop.train_seeds``:
``epoch_batches`` then ``rule.train_step`` per batch; evaluation, alignment figures and
checkpoints are left out. A few warm-up batches run first. BP is always measured too, so every
ratio is to a BP epoch timed in the same process. On a shared machine other work inflates single
timings: ``--repeats R`` times every rule in R round-robin rounds and reports each rule's fastest
epoch (the JSON keeps every epoch's time and the load averages).

``--with-loop`` adds a per-sample reference for PEPITA: the same arithmetic done one sample at a
time in a Python loop with NumPy (as the official NumPy code of the paper does), accumulating the
batch's update and applying it with the same optimizer. Before timing, the loop's summed update on
a small batch is checked against the batched update (same weights, same dropout masks). It is
timed on ``--loop-samples`` samples and extrapolated to the epoch; it always runs on the CPU.

Examples::

    python benchmarks/cpu_epoch_times.py                      # all rules, 1 epoch each
    python benchmarks/cpu_epoch_times.py --threads 2 --repeats 2 --with-loop
    python benchmarks/cpu_epoch_times.py --rules bp,pepita --with-loop --threads 2
    python benchmarks/cpu_epoch_times.py --rules bp,pepita --subset 6400 --out /tmp/t.json
    python benchmarks/cpu_epoch_times.py --device cuda --out benchmarks/results/cuda_epoch_times.json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from neurosim.config import parse_arch  # noqa: E402
from neurosim.config import RunConfig  # noqa: E402
from neurosim.datasets import load_dataset  # noqa: E402
from neurosim.io import atomic_write_json  # noqa: E402
from neurosim.presets import PRESETS  # noqa: E402
from neurosim.rules import RULES  # noqa: E402
from rate_models.data import epoch_batches, to_split  # noqa: E402
from rate_models.rules.pepita import pepita_updates  # noqa: E402
from rate_models.train import build  # noqa: E402

PRESET = "pepita2022-mnist"
DEFAULT_LR = 0.01
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "cpu_epoch_times.json"


# -- configuration ------------------------------------------------------------------------------
def rule_config(rule: str, args) -> RunConfig:
    """PEPITA Table-2 settings with the rule's preset lr (else DEFAULT_LR) and the benchmark's
    architecture, batch size and device."""
    preset = PRESETS[PRESET]
    values = RunConfig().to_dict()
    values.update(preset["config"])
    values["lr"] = DEFAULT_LR
    values.update(preset["per_rule"].get(rule, {}))  # lr, and DRTP's tanh / sigmoid
    values.update(rule=rule, hidden=list(args.arch), batch_size=args.batch_size, device=args.device,
                  data_dir=str(args.data_dir), epochs=args.epochs_timed, lr_milestones=[], preset=PRESET)
    if rule == "pepita-wm":
        values["modulation_sign"] = -1.0  # as `neurosim train` does: Srinivasan et al. 2023 use x - F e
    cfg = RunConfig.from_dict(values)
    cfg.validate()
    return cfg


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_average() -> list[float] | None:
    """1-, 5- and 15-minute load averages: other work on the machine slows every timing."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the batched training loop ------------------------------------------------------------------
class RuleTimer:
    """One rule's network, rule and optimizer, warmed up; ``epoch()`` times one training epoch."""

    def __init__(self, rule: str, args, train, sizes, device):
        self.cfg = cfg = rule_config(rule, args)
        self.rule, self.train, self.device = rule, train, device
        self.net, self.rule_obj, self.opt, _ = build(cfg, sizes, args.seed, device)
        self.net.train()
        self.gen = torch.Generator().manual_seed(args.seed)
        self.seconds, self.loss = [], float("nan")
        for idx in epoch_batches(len(train.x), cfg.training.batch_size, self.gen, device)[:args.warmup_batches]:
            self.rule_obj.train_step(train.x[idx], train.target[idx], self.opt)
        sync(device)

    def epoch(self) -> float:
        """The loop of ``rate_models.loop.train_seeds`` without evaluation; its seconds."""
        x, target, n = self.train.x, self.train.target, len(self.train.x)
        sync(self.device)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        for idx in epoch_batches(n, self.cfg.training.batch_size, self.gen, self.device):
            loss_sum += self.rule_obj.train_step(x[idx], target[idx], self.opt).detach() * len(idx)
        sync(self.device)
        seconds = time.perf_counter() - t0
        self.seconds.append(seconds)
        self.loss = float(loss_sum) / n
        return seconds

    def result(self) -> dict:
        best = min(self.seconds)
        return {"rule": self.rule, "lr": self.cfg.training.lr, "activation": self.cfg.network.activation, "output": self.cfg.network.output,
                "seconds_per_epoch": best, "seconds_per_epoch_mean": float(np.mean(self.seconds)),
                "seconds_per_epoch_all": self.seconds, "samples_per_second": len(self.train.x) / best,
                "train_loss_last_epoch": self.loss}


# -- the per-sample PEPITA reference ------------------------------------------------------------
_NP_HIDDEN = {"relu": lambda a: np.maximum(a, 0.0), "tanh": np.tanh,
              "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)), "linear": lambda a: a}


def _np_softmax(a):
    z = np.exp(a - a.max())
    return z / z.sum()


_NP_OUTPUT = {"softmax": _np_softmax, "sigmoid": _NP_HIDDEN["sigmoid"], "tanh": np.tanh,
              "linear": lambda a: a}


class PepitaSampleLoop:
    """PEPITA (D&K Algorithm 1) one sample at a time with NumPy on the CPU: two forward passes
    per sample, the per-sample update added to a batch accumulator, then the batch mean is applied
    with the training optimizer. The arithmetic of ``rate_models.rules.pepita.pepita_updates``."""

    def __init__(self, net, rule, opt):
        if net.normalize:
            raise ValueError("the per-sample reference does not implement activation normalization")
        self.net, self.opt = net, opt
        self.W = [w.detach().numpy() for w in net.weights]  # views: the optimizer updates them in place
        self.b = None if net.biases is None else [b.detach().numpy() for b in net.biases]
        self.F = rule.projection().detach().cpu().numpy()
        self.sign = float(rule.sign)
        L = net.n_layers
        self.phis = [_NP_HIDDEN[net.activation]] * (L - 1) + [_NP_OUTPUT[net.output]]

    def forward(self, x, masks):
        hs = [x]
        for l, (W, phi) in enumerate(zip(self.W, self.phis)):
            a = W @ hs[-1]
            if self.b is not None:
                a = a + self.b[l]
            h = phi(a)
            if l < len(self.W) - 1 and masks[l] is not None:
                h = h * masks[l]
            hs.append(h)
        return hs

    def batch_updates(self, x, target, masks):
        """Summed per-sample updates ``[(dW_l, db_l)]`` of a batch (NumPy arrays)."""
        dW = [np.zeros_like(W) for W in self.W]
        db = [np.zeros(W.shape[0], dtype=W.dtype) for W in self.W]
        L = len(self.W)
        for i in range(len(x)):
            m = [None if mk is None else mk[i] for mk in masks]
            hs = self.forward(x[i], m)
            e = hs[-1] - target[i]
            hs_err = self.forward(x[i] + self.sign * (self.F @ e), m)
            for l in range(L - 1):
                post = hs[l + 1] - hs_err[l + 1]
                dW[l] += np.outer(post, hs_err[l])
                db[l] += post
            dW[L - 1] += np.outer(e, hs_err[L - 1])
            db[L - 1] += e
        return list(zip(dW, db))

    def train_step(self, x, target) -> None:
        masks = self.net.dropout_masks(len(x), torch.device("cpu"))
        masks = [None if mk is None else mk.numpy() for mk in masks]
        updates = self.batch_updates(x, target, masks)
        self.opt.zero_grad(set_to_none=True)
        for l, (dW, db) in enumerate(updates):
            self.net.weights[l].grad = torch.from_numpy(dW / len(x))
            if self.net.biases is not None:
                self.net.biases[l].grad = torch.from_numpy(db / len(x))
        self.opt.step()


def check_loop_matches_batched(rule, x: torch.Tensor, target: torch.Tensor) -> float:
    """Assert that the per-sample loop's summed update equals the batched update times the batch
    size, on a float64 copy of the network (same weights and dropout masks), so that rounding of
    the small differences ``h - h_err`` cannot hide or fake a mismatch. Return the largest
    relative difference."""
    rule64 = copy.deepcopy(rule).double()
    net64 = rule64.net
    net64.train()
    x, target = x.double(), target.double()
    masks = [None if mk is None else mk.double() for mk in net64.dropout_masks(len(x), torch.device("cpu"))]
    with torch.no_grad():
        batched, _ = pepita_updates(rule64.forward_fn(masks), x, target, rule64.projection(), rule64.sign)
    loop = PepitaSampleLoop(net64, rule64, None)
    summed = loop.batch_updates(x.numpy(), target.numpy(), [None if mk is None else mk.numpy() for mk in masks])
    worst = 0.0
    for l, ((dW, db), (sW, sb)) in enumerate(zip(batched, summed)):
        for name, ref, got in (("dW", dW, sW), ("db", db, sb)):
            ref = ref.numpy() * len(x)
            scale = max(float(np.abs(ref).max()), 1e-300)
            diff = float(np.abs(ref - got).max()) / scale
            worst = max(worst, diff)
            assert diff < 1e-9, f"per-sample loop and batched PEPITA differ in {name}_{l + 1}: {diff:.2e}"
    return worst


def time_pepita_loop(args, train_cpu, sizes, batched_seconds: float | None) -> dict:
    from threadpoolctl import threadpool_limits

    cfg = rule_config("pepita", args)
    cfg.training.device = "cpu"
    net, rule, opt, _ = build(cfg, sizes, args.seed, torch.device("cpu"))
    net.train()
    loop = PepitaSampleLoop(net, rule, opt)
    n = len(train_cpu.x)
    gen = torch.Generator().manual_seed(args.seed)
    order = epoch_batches(n, cfg.training.batch_size, gen, torch.device("cpu"))
    check = order[0][:16]
    with threadpool_limits(limits=args.threads):
        max_rel_diff = check_loop_matches_batched(rule, train_cpu.x[check], train_cpu.target[check])
        x_np, t_np = train_cpu.x.numpy(), train_cpu.target.numpy()
        loop.train_step(x_np[order[0].numpy()], t_np[order[0].numpy()])  # warm-up batch
        n_batches = max(1, -(-min(args.loop_samples, n) // cfg.training.batch_size))
        batches = order[1:1 + n_batches]
        t0 = time.perf_counter()
        for idx in batches:
            i = idx.numpy()
            loop.train_step(x_np[i], t_np[i])
        seconds = time.perf_counter() - t0
    samples = int(sum(len(b) for b in batches))
    per_epoch = seconds * n / samples
    return {"samples_timed": samples, "seconds_timed": seconds, "seconds_per_epoch_extrapolated": per_epoch,
            "samples_per_second": samples / seconds, "device": "cpu (NumPy, one sample at a time)",
            "check_max_relative_difference": max_rel_diff,
            "speedup_of_batched": None if batched_seconds is None else per_epoch / batched_seconds}


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--rules", default=",".join(RULES),
                   help="comma-separated rules (default: every rule of neurosim.rules.RULES); bp is always added")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                   help="folder with the MNIST IDX files (default: <repo>/../shared/data/mnist)")
    p.add_argument("--epochs-timed", type=int, default=1, help="epochs timed per rule and round (default 1)")
    p.add_argument("--repeats", type=int, default=1,
                   help="round-robin rounds over the rules; each rule's fastest epoch is reported "
                        "(the least disturbed by other load; the mean is kept too). Default 1")
    p.add_argument("--arch", type=parse_arch, default=[1024], help="hidden sizes, e.g. 1024 or 2x1024")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch (and BLAS) threads (default: torch's)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--warmup-batches", type=int, default=5, help="untimed batches before timing")
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training samples (quick check; times are then for N)")
    p.add_argument("--with-loop", action="store_true", help="also time a per-sample NumPy PEPITA loop")
    p.add_argument("--loop-samples", type=int, default=2000, help="samples timed for --with-loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        p.error(f"unknown rule(s) {unknown}; choose from {', '.join(RULES)}")
    args.rules = (["bp"] if "bp" not in rules else []) + rules
    if args.epochs_timed < 1 or args.repeats < 1:
        p.error("--epochs-timed and --repeats must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    return args


def format_table(results: list[dict], loop: dict | None) -> str:
    lines = [f"| {'rule':<19} | {'s/epoch':>9} | {'x BP':>6} | {'samples/s':>10} |",
             f"|:{'-' * 20}|{'-' * 10}:|{'-' * 7}:|{'-' * 11}:|"]
    for r in results:
        lines.append(f"| {r['rule']:<19} | {r['seconds_per_epoch']:>9.2f} | {r['ratio_to_bp']:>6.2f} | "
                     f"{r['samples_per_second']:>10.0f} |")
    if loop:
        bp = next(r for r in results if r["rule"] == "bp")["seconds_per_epoch"]
        lines.append(f"| {'pepita (per-sample)':<19} | {loop['seconds_per_epoch_extrapolated']:>9.2f} | "
                     f"{loop['seconds_per_epoch_extrapolated'] / bp:>6.2f} | {loop['samples_per_second']:>10.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    load_at_start = load_average()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    args.threads = threads
    device = torch.device(args.device)

    data = load_dataset("mnist", data_dir=args.data_dir, download=False)
    x, y = data.x_train, data.y_train
    if args.subset:
        x, y = x[:args.subset], y[:args.subset]
    train = to_split(x, y, data.n_classes, device)
    sizes = [train.x.shape[1], *args.arch, train.target.shape[1]]
    print(f"MNIST: {len(train.x)} training samples, arch {'-'.join(map(str, sizes))}, batch {args.batch_size}, "
          f"{threads} thread(s), device {args.device}", flush=True)

    timers = {}
    for round_ in range(args.repeats):
        for rule in args.rules:
            if rule not in timers:
                timers[rule] = RuleTimer(rule, args, train, sizes, device)
            t = timers[rule]
            for _ in range(args.epochs_timed):
                t.epoch()
            print(f"  {'' if args.repeats == 1 else f'[{round_ + 1}/{args.repeats}] '}{rule:<18} "
                  f"{t.seconds[-1]:8.2f} s/epoch  {len(train.x) / t.seconds[-1]:8.0f} samples/s "
                  f"(loss {t.loss:.3f})", flush=True)
    results = [timers[rule].result() for rule in args.rules]
    del timers
    bp = next(r for r in results if r["rule"] == "bp")["seconds_per_epoch"]
    for r in results:
        r["ratio_to_bp"] = r["seconds_per_epoch"] / bp

    loop = None
    if args.with_loop:
        train_cpu = train if device.type == "cpu" else to_split(x, y, data.n_classes, "cpu")
        pep = next((r for r in results if r["rule"] == "pepita"), None)
        loop = time_pepita_loop(args, train_cpu, sizes, pep["seconds_per_epoch"] if pep else None)
        speedup = loop["speedup_of_batched"]
        print(f"  pepita per-sample loop: {loop['seconds_per_epoch_extrapolated']:.1f} s/epoch "
              f"(extrapolated from {loop['samples_timed']} samples; update check max rel. diff "
              f"{loop['check_max_relative_difference']:.1e})"
              + (f"; batched is {speedup:.1f}x faster" if speedup else ""), flush=True)

    table = format_table(results, loop)
    print()
    print(table)
    record = {
        "benchmark": "one training epoch on MNIST per rule (training loop only)",
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(["cpu_epoch_times.py", *argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "threads": threads, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "load_average_1_5_15_at_start": load_at_start, "load_average_1_5_15_at_end": load_average(),
        "dataset": "mnist", "train_samples": len(train.x), "subset": args.subset,
        "arch": "-".join(map(str, sizes)), "batch_size": args.batch_size,
        "epochs_timed": args.epochs_timed, "repeats": args.repeats, "warmup_batches": args.warmup_batches,
        "seconds_per_epoch_is": "the fastest timed epoch of the rule" if args.repeats * args.epochs_timed > 1
                                else "the one timed epoch",
        "settings": f"{PRESET} (He uniform, no bias, dropout 0.1, SGD momentum 0.9); "
                    f"lr from the preset, else {DEFAULT_LR}",
        "results": results, "pepita_per_sample_loop": loop, "table_markdown": table,
    }
    atomic_write_json(args.out, record)
    print(f"\nsaved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
