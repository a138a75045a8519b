"""Training throughput and peak memory of a LIF network per rule, beside surrogate-gradient BPTT.

One process times every rule on the same network, batch and device, so the ratios are
comparable: samples per second of ``train_step`` (a presentation of ``--num-steps`` steps and the
update) and the peak memory of one step (``torch.cuda.max_memory_allocated`` on CUDA, the live
tensor bytes of ``rate_models.spiking.memory`` on the CPU; both exclude weights and data made
before the step). Inputs are MNIST training images when ``--data-dir`` is given, otherwise
uniform random intensities of MNIST's shape.

    python benchmarks/lif_throughput.py --device cuda --data-dir data/mnist
    python benchmarks/lif_throughput.py --threads 2 --batches 5    # CPU
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from neurosim.config import RunConfig
from neurosim.io import atomic_write_json
from rate_models.network import StepNoise
from rate_models.spiking import LIFNetwork, build_lif_rule
from rate_models.spiking.memory import LiveTensorBytes

RULES = ("bp", "dfa", "sdfa", "drtp", "pepita", "pfa")


def data(args, device) -> tuple[torch.Tensor, torch.Tensor]:
    n = args.batch_size
    if args.data_dir:
        from neurosim.datasets import load_dataset

        d = load_dataset("mnist", data_dir=args.data_dir)
        x = torch.as_tensor(d.x_train[:n].reshape(n, -1), dtype=torch.float32)
        y = torch.nn.functional.one_hot(torch.as_tensor(d.y_train[:n]).long(), 10).float()
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 784, generator=g)
        y = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()
    return x.to(device), y.to(device)


def measure(rule: str, args, x, y, device) -> dict:
    cfg = RunConfig(rule=rule, neuron="lif", hidden=[args.hidden], num_steps=args.num_steps,
                    batch_size=args.batch_size, lr=0.01, dropout=0.0)
    cfg.validate()
    net = LIFNetwork([784, args.hidden, 10], cfg, seed=0)
    r = build_lif_rule(rule, net, cfg, 0).to(device)
    net.noise = StepNoise([0], device)
    opt = torch.optim.SGD(list(net.parameters()) + r.feedback_parameters(), lr=0.01, momentum=0.9)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    r.train_step(x, y, opt)  # warm-up: momentum buffers, kernels
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        r.train_step(x, y, opt)
        sync()
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        with LiveTensorBytes() as mem:
            r.train_step(x, y, opt)
        peak = mem.peak
    t0 = time.perf_counter()
    for _ in range(args.batches):
        r.train_step(x, y, opt)
    sync()
    seconds = time.perf_counter() - t0
    return {"rule": rule, "samples_per_second": args.batches * args.batch_size / seconds,
            "peak_step_memory_mib": peak / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--hidden", type=int, default=1000)
    p.add_argument("--num-steps", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=10, help="timed training steps per rule")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--data-dir", help="MNIST folder; random intensities without it")
    p.add_argument("--out", default="benchmarks/results/lif_throughput.json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    x, y = data(args, device)
    rows = [measure(rule, args, x, y, device) for rule in args.rules.split(",")]
    bp = next((r for r in rows if r["rule"] == "bp"), None)
    for r in rows:
        if bp:
            r["speed_vs_bptt"] = r["samples_per_second"] / bp["samples_per_second"]
            r["memory_vs_bptt"] = r["peak_step_memory_mib"] / bp["peak_step_memory_mib"]
        print(f"{r['rule']:>7}: {r['samples_per_second']:9.1f} samples/s, peak step memory "
              f"{r['peak_step_memory_mib']:8.2f} MiB" +
              (f"  ({r['speed_vs_bptt']:.2f}x BPTT speed, {r['memory_vs_bptt']:.3f}x its memory)" if bp else ""))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    atomic_write_json(Path(args.out), {"device": device_name, "threads": torch.get_num_threads(),
                                       "sizes": [784, args.hidden, 10], "num_steps": args.num_steps,
                                       "batch_size": args.batch_size, "batches": args.batches,
                                       "inputs": "mnist" if args.data_dir else "random", "rows": rows})


if __name__ == "__main__":
    main()
