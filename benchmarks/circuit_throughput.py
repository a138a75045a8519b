"""Samples per second of the 784-500-10 circuits, runtime vs cpp_standalone, and where the time goes.

Each rule's spiking circuit trains on ``--samples`` MNIST-shaped samples (real MNIST when
``--data-dir`` holds it, else uniform random pixels of the same shape) on both devices. The
table gives samples per second of simulation (runtime: after a first sample that compiles the
code objects; standalone: the compiled binary's run, without compilation), synaptic events per
sample (presynaptic spikes times fan-out, counted by spike
monitors), and the three code objects that take the most time (Brian2's profiler).

    python benchmarks/circuit_throughput.py --rules pepita dfa --samples 200

Writes ``benchmarks/results/circuit_throughput.json``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from brian2 import SpikeMonitor, get_device, profiling_summary, second, set_device

from circuits import build_circuit
from circuits.training import make_schedule, stimulus_namespace
from neurosim.circuit_params import CircuitParams
from neurosim.io import atomic_write_json

SIZES = [784, 500, 10]


def mnist_like(n: int, data_dir: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST training samples in [0, 1] (with the circuit's input baseline applied later),
    or random pixels of the same shape when MNIST is not found."""
    try:
        from neurosim.datasets import load_dataset

        d = load_dataset("mnist", data_dir, download=False)
        return d.x_train[:n].reshape(n, -1).astype(float), np.eye(10)[d.y_train[:n]]
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 1, (n, 784)), np.eye(10)[rng.integers(0, 10, n)]


def measure(rule: str, device: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Train ``len(x)`` samples on ``device``; time, events and profile."""
    params = CircuitParams.for_mode("spiking")
    b = params.input_baseline
    x = b + (1 - b) * x
    workdir = Path(tempfile.mkdtemp(prefix=f"circuit-bench-{rule}-"))
    if device == "cpp_standalone":
        set_device("cpp_standalone", directory=str(workdir), build_on_run=False)
    try:
        circuit = build_circuit(rule, SIZES, 0, params=params)
        monitors = [SpikeMonitor(g, record=False, name=f"count_{n}") for n, g in circuit.groups.items()]
        circuit.network.add(*monitors)
        schedule = make_schedule(len(x), 1, 1, len(x), 0)
        ns = stimulus_namespace(circuit, np.concatenate([x, x[:1]]), np.concatenate([y, y[:1]]),
                                schedule)
        sample = circuit.steps_per_sample * params.dt * second
        circuit.network.run(sample, namespace=ns, profile=True)  # runtime: compiles, untimed
        t0 = time.perf_counter()
        circuit.network.run((len(schedule) - 1) * sample + params.dt * second, namespace=ns,
                            profile=True)
        timed = len(schedule) - 1
        if device == "cpp_standalone":
            get_device().build(directory=str(workdir), compile=True, run=False)
            t0 = time.perf_counter()
            get_device().run(directory=str(workdir), with_output=False)
            timed = len(schedule)  # the binary runs every sample
        elapsed = time.perf_counter() - t0
        fan_out = {}
        for syn in circuit.synapses.values():
            fan_out[syn.source.name] = fan_out.get(syn.source.name, 0) + len(syn) / len(syn.source)
        events = sum(int(m.num_spikes) * fan_out.get(m.source.name, 0) for m in monitors)
        profile = profiling_summary(circuit.network, show=3)
        top = [(name.strip(), float(t / second)) for name, t in zip(profile.names, profile.times)]
    finally:
        if device == "cpp_standalone":
            get_device().reinit()
            set_device("runtime")
    return {"rule": rule, "device": device, "samples_timed": timed, "seconds": elapsed,
            "samples_per_second": timed / elapsed,
            "synaptic_events_per_sample": events / len(schedule),
            "top_code_objects_s": top}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["pepita", "dfa", "drtp", "pfa"])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--data-dir")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "circuit_throughput.json"))
    args = ap.parse_args()
    x, y = mnist_like(args.samples, args.data_dir, 0)
    rows = []
    for rule in args.rules:
        for device in ("runtime", "cpp_standalone"):
            row = measure(rule, device, x, y)
            rows.append(row)
            top = ", ".join(f"{n} {t:.2f}s" for n, t in row["top_code_objects_s"])
            print(f"{rule:<20} {device:<15} {row['samples_per_second']:8.1f} samples/s  "
                  f"{row['synaptic_events_per_sample']:10.0f} events/sample  top: {top}", flush=True)
    atomic_write_json(args.out, {"machine": platform.processor() or platform.machine(),
                                 "sizes": SIZES, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
